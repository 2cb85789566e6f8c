/**
 * Closing: once an epoch has ended plus the grace period (by the chain's head time, so every instance closes it
 * at the same block), a chain view that only ever advances to the last block before an epoch's end gives the
 * admitted set at that end; the epoch is scored (./scoring) and cut into batches of (stake id, score), all
 * saved in one transaction.
 */
import type { FastifyBaseLogger } from "fastify";
import type { PublicClient } from "viem";

import { toBatches } from "../common/batches";
import { lastBlockBefore } from "../common/blocks";
import type { ChainView } from "../common/chainView";
import type { EpochClock } from "../common/epochs";
import { entriesHash as packedEntriesHash, packEntries } from "../common/scoreBatch";
import { StakeType } from "../common/stakeMap";
import { type AdmittedInput, scoreEpoch } from "./scoring";
import type { OracleStore } from "./store";

export interface CloseDeps {
  store: OracleStore;
  client: Pick<PublicClient, "getBlock" | "getBlockNumber">;
  /** Advanced only to epoch ends; needs no confirmations of its own (closing waits for them). */
  epochView: ChainView;
  clock: EpochClock;
  confirmations: number;
  graceSeconds: number;
  batchSize: number;
  now: () => number;
  log: FastifyBaseLogger;
}

export class EpochCloser {
  /** The last epoch end block found: the next search starts there (times only move forward). */
  private lastEndBlock = 0n;

  constructor(private readonly deps: CloseDeps) {}

  /** Closes every epoch whose end plus the grace period the chain's head time has passed, oldest first. */
  async closeDue(): Promise<void> {
    const { store, clock, client } = this.deps;
    const first = BigInt(store.getMeta("firstEpoch") ?? "0");
    const last = store.lastClosedEpoch();
    let epoch = last === undefined ? first : BigInt(last) + 1n;
    clock.setHead((await client.getBlock({ blockTag: "latest" })).timestamp);
    while (clock.window(epoch).end + BigInt(this.deps.graceSeconds) <= clock.head) {
      if (!(await this.close(epoch))) return;
      epoch += 1n;
    }
  }

  /** Scores one ended epoch and saves it with its batches. False when the chain is not far enough yet. */
  async close(epoch: bigint): Promise<boolean> {
    const { store, client, epochView } = this.deps;
    const { end } = this.deps.clock.window(epoch);
    const endBlock = await lastBlockBefore(client, end, this.lastEndBlock);
    const head = await client.getBlockNumber();
    // The epoch's last block is final once a later block exists (so no more can join the epoch) and is buried
    // under `confirmations` more.
    if (endBlock < 0n || head < endBlock + 1n + BigInt(this.deps.confirmations)) return false;
    await epochView.syncOnce(endBlock);
    if (epochView.cursor?.number !== endBlock) return false;
    this.lastEndBlock = endBlock;
    const admitted = admittedAt(epochView);
    const e = Number(epoch);
    const scores = scoreEpoch(epoch, store.reports(e), admitted, store.heartbeats(e));
    const stakes: Record<string, string> = {};
    const entries = scores
      .map((s) => {
        const stakeId = epochView.map.stakeOfDevice(s.device)!.stakeId;
        stakes[s.device] = stakeId.toString();
        return { stakeId, score: BigInt(s.score) };
      })
      .sort((a, b) => (a.stakeId < b.stakeId ? -1 : 1));
    const batches = toBatches(entries, this.deps.batchSize).map((batch) => {
      const packed = packEntries(batch);
      return { entries: packed, entriesHash: packedEntriesHash(packed) };
    });
    const now = this.deps.now();
    store.saveClosedEpoch(
      {
        epoch: e,
        status: "closed",
        endBlock: Number(endBlock),
        admitted,
        scores,
        stakes,
        closedAt: now,
        postedAt: null,
      },
      batches,
    );
    if (batches.length === 0) store.markEpochPosted(e, now);
    this.deps.log.info(
      { epoch: e, endBlock: Number(endBlock), scores: scores.length, batches: batches.length },
      "epoch closed",
    );
    return true;
  }
}

/** The admitted devices of each kind in a view, sorted. */
function admittedAt(view: ChainView): AdmittedInput {
  const admitted: AdmittedInput = { hosts: [], gateways: [], stargates: [] };
  const lists: Record<number, string[]> = {
    [StakeType.Host]: admitted.hosts,
    [StakeType.Gateway]: admitted.gateways,
    [StakeType.Stargate]: admitted.stargates,
  };
  for (const device of view.map.devices()) if (device.admitted) lists[device.stakeType].push(device.device);
  for (const list of Object.values(admitted)) list.sort();
  return admitted;
}
