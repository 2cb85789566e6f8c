/**
 * Ingestion: a gateway's signed job report or a stargate's signed heartbeat is checked (epoch open, the claimed
 * sender admitted in the confirmed chain view, then shape and signature: the cheap checks first, F7), stored once
 * (only a report's latest sequence is kept, F4) and queued for relay to peer instances. A refused message stores
 * nothing. Takes its dependencies as arguments; no HTTP here.
 */
import type { Hex } from "viem";

import type { ChainView } from "../common/chainView";
import type { EpochClock } from "../common/epochs";
import {
  type HeartbeatBody,
  type JobReportBody,
  canonicalDecimal,
  verifyHeartbeat,
  verifyJobReport,
} from "../common/protocol";
import { senderStanding, stakeKindName } from "../common/service/admittedSender";
import { StakeType } from "../common/stakeMap";
import { oracleError } from "./errors";
import type { OracleStore } from "./store";
import { TallyVerifier } from "./tallies";

/** Clock tolerance for heartbeat timestamps. */
const CLOCK_SKEW_SECONDS = 300n;

export interface IngestDeps {
  store: OracleStore;
  /** The confirmed chain view: who is admitted now. */
  view: ChainView;
  clock: EpochClock;
  chainId: number;
  /** Peer instances every accepted message is relayed to. */
  peers: string[];
  /** Verified host tallies (made on first use when not given). */
  tallies?: TallyVerifier;
  now: () => number;
}

export type IngestOutcome = "accepted" | "duplicate";

/** The sender must be bound to a stake of its kind that is admitted now. */
function requireAdmitted(view: ChainView, device: string, kind: StakeType): void {
  const standing = senderStanding(view, device, kind);
  if (standing === "not_staked")
    throw oracleError("ORACLE_SENDER_NOT_STAKED", `${device} holds no ${stakeKindName(kind)} stake`);
  if (standing === "not_admitted")
    throw oracleError("ORACLE_SENDER_NOT_ADMITTED", `${device}'s ${stakeKindName(kind)} stake is not admitted`);
}

/** An epoch takes messages from its start until it is closed (never before the instance's first epoch). */
export function requireEpochOpen(deps: Pick<IngestDeps, "store" | "clock">, epoch: bigint): void {
  const current = deps.clock.currentEpoch();
  if (epoch > current)
    throw oracleError("ORACLE_EPOCH_IN_FUTURE", `epoch ${epoch} has not started (current ${current})`);
  const first = BigInt(deps.store.getMeta("firstEpoch") ?? "0");
  if (epoch < first || deps.store.epoch(Number(epoch))) {
    throw oracleError("ORACLE_EPOCH_CLOSED", `epoch ${epoch} is closed: it no longer takes reports`);
  }
}

export async function ingestReport(deps: IngestDeps, body: JobReportBody): Promise<IngestOutcome> {
  const epoch = BigInt(body.epoch);
  requireEpochOpen(deps, epoch);
  // F7: the claimed sender is checked first, before any hashing or signature recovery (a map lookup).
  requireAdmitted(deps.view, body.gateway, StakeType.Gateway);
  const hosts = new Set<string>();
  // Stored and published canonical: lowercase hosts, job counts without leading zeros.
  const entries = body.entries.map((entry) => {
    const host = entry.host.toLowerCase();
    if (hosts.has(host)) throw oracleError("ORACLE_DUPLICATE_HOST", `host ${entry.host} appears twice`);
    hosts.add(host);
    if (entry.attested === undefined && entry.tallySeq === undefined && entry.tallySig === undefined)
      return { host, jobs: canonicalDecimal(entry.jobs) };
    return {
      host,
      jobs: canonicalDecimal(entry.jobs),
      attested: entry.attested === undefined ? undefined : canonicalDecimal(entry.attested),
      tallySeq: entry.tallySeq === undefined ? undefined : canonicalDecimal(entry.tallySeq),
      tallySig: entry.tallySig,
    };
  });
  let verified: { signed: boolean; entriesHash: Hex };
  try {
    verified = await verifyJobReport(deps.chainId, { ...body, entries });
  } catch (error) {
    if (error instanceof RangeError) throw oracleError("ORACLE_JOBS_OUT_OF_RANGE", error.message);
    throw error;
  }
  if (!verified.signed) throw oracleError("ORACLE_BAD_SIGNATURE", "the report is not signed by its gateway");
  // F11: each host's tally, after the gateway's own signature (a forged report costs one recovery, no more).
  (deps.tallies ??= new TallyVerifier(deps.chainId)).check(body.gateway.toLowerCase(), Number(epoch), entries);
  const outcome = deps.store.insertReport(
    {
      gateway: body.gateway.toLowerCase(),
      epoch: Number(epoch),
      sequence: Number(body.sequence),
      entries,
      entriesHash: verified.entriesHash,
      signature: body.signature,
      receivedAt: deps.now(),
    },
    { peers: deps.peers, body },
  );
  if (outcome === "conflict") {
    throw oracleError("ORACLE_REPORT_CONFLICT", "another report with this gateway, epoch and sequence was accepted");
  }
  return outcome === "inserted" ? "accepted" : "duplicate";
}

export async function ingestHeartbeat(deps: IngestDeps, body: HeartbeatBody): Promise<IngestOutcome> {
  const epoch = BigInt(body.epoch);
  const timestamp = BigInt(body.timestamp);
  requireEpochOpen(deps, epoch);
  const { start, end } = deps.clock.window(epoch);
  if (timestamp < start || timestamp >= end)
    throw oracleError("ORACLE_EPOCH_MISMATCH", `timestamp ${timestamp} is not in epoch ${epoch}`);
  const now = deps.clock.nowSeconds();
  const duration = deps.clock.epochs.duration;
  if (timestamp > now + CLOCK_SKEW_SECONDS || timestamp < now - duration - CLOCK_SKEW_SECONDS) {
    throw oracleError("ORACLE_TIMESTAMP_OUT_OF_RANGE", "the heartbeat's timestamp is too far from now");
  }
  requireAdmitted(deps.view, body.stargate, StakeType.Stargate);
  if (!(await verifyHeartbeat(deps.chainId, body)))
    throw oracleError("ORACLE_BAD_SIGNATURE", "the heartbeat is not signed by its stargate");
  const outcome = deps.store.insertHeartbeat(
    {
      stargate: body.stargate.toLowerCase(),
      epoch: Number(epoch),
      timestamp: Number(timestamp),
      signature: body.signature,
    },
    { peers: deps.peers, body },
  );
  return outcome === "inserted" ? "accepted" : "duplicate";
}
