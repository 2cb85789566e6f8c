/**
 * Admission: whether this device may serve, decided from the node's chain view alone, and the transitions that
 * follow. One reconcile step (`reconcile`, run on every view change and on a short interval) compares the
 * chain's answer with the node's current state and acts on a change:
 * - admitted -> the role serves (a host registers, a stargate sends a heartbeat);
 * - evicted -> no new work (`serving()` turns false at once), in-flight work finishes, the role leaves;
 *   `edge_node_eviction_delay_seconds` records how long after the deciding block that took.
 * After each transition the view is cross-checked against the contract's own `deviceStatus` at the same block
 * (`edge_node_view_mismatches_total`). An RPC outage changes nothing (the view keeps its last state, so the
 * decision holds) but is logged loudly once the view is older than the staleness bound.
 */
import type { FastifyBaseLogger } from "fastify";
import type { Address, PublicClient } from "viem";

import type { ChainView } from "../offchain/common/chainView";
import { stakeManagerAbi } from "../offchain/common/generated/abis";
import { stakeKindName } from "../offchain/common/service/admittedSender";
import { type StakeMap, StakeType } from "../offchain/common/stakeMap";
import type { Role } from "./config";
import type { NodeMetrics } from "./metrics";

export const ROLE_STAKE_TYPE: Record<Role, StakeType> = {
  host: StakeType.Host,
  gateway: StakeType.Gateway,
  stargate: StakeType.Stargate,
};

export interface AdmissionDecision {
  admitted: boolean;
  /** Why, for /status and /ready. */
  reason: string;
}

export interface AdmissionState extends AdmissionDecision {
  /** Unix milliseconds of the last transition (null before the first decision). */
  changedAt: number | null;
}

/** Whether the chain (as `map` holds it) admits `device` to serve as `role`, and why. */
export function decideAdmission(map: StakeMap, device: Address, role: Role): AdmissionDecision {
  const stake = map.stakeOfDevice(device);
  if (!stake) return { admitted: false, reason: "no stake is bound to this device" };
  if (stake.stakeType !== ROLE_STAKE_TYPE[role]) {
    return {
      admitted: false,
      reason: `stake ${stake.stakeId} backs a ${stakeKindName(stake.stakeType)}, this node runs as ${role}`,
    };
  }
  if (stake.phase === "unlocking")
    return { admitted: false, reason: `stake ${stake.stakeId} is unbonding (unstake requested)` };
  if (stake.phase === "released") return { admitted: false, reason: `stake ${stake.stakeId} was released` };
  const minimum = map.minimum(stake.stakeType);
  if (minimum === undefined) {
    // The constructor's MinimumStakeSet events precede the address book's block: the book is wrong.
    return {
      admitted: false,
      reason: `no ${role} minimum in the chain view: check StakeManager's blockNumber in the address book`,
    };
  }
  if (!map.isAdmitted(device)) {
    return {
      admitted: false,
      reason: `stake ${stake.stakeId} holds ${stake.amount}, below the ${role} minimum of ${minimum}`,
    };
  }
  return { admitted: true, reason: `admitted by stake ${stake.stakeId}` };
}

export interface AdmissionDeps {
  device: Address;
  role: Role;
  view: Pick<ChainView, "map" | "cursor" | "status">;
  client: Pick<PublicClient, "getBlock" | "readContract">;
  stakeManager: Address;
  metrics: Pick<NodeMetrics, "admissionChanges" | "evictionDelay" | "viewMismatches">;
  log: FastifyBaseLogger;
  /** The chain view is older than the staleness bound. */
  stale(): boolean;
  /** Acts on a transition (the role's onAdmission); `admitted` is false while the node drains. */
  act(admitted: boolean): Promise<void>;
  draining(): boolean;
}

export class Admission {
  private current: AdmissionState = {
    admitted: false,
    reason: "starting: the chain view has not synced yet",
    changedAt: null,
  };
  private decided = false;
  private wasStale = false;
  /** Transitions are acted on one after the other, in order. */
  private transitions: Promise<void> = Promise.resolve();

  constructor(private readonly deps: AdmissionDeps) {}

  get state(): Readonly<AdmissionState> {
    return this.current;
  }

  /** Compares the view with the node's state and acts on a change. */
  reconcile(): void {
    this.reportStaleness();
    const { view, log } = this.deps;
    if (!view.status().synced) return;
    const next = decideAdmission(view.map, this.deps.device, this.deps.role);
    if (this.decided && next.admitted === this.current.admitted) {
      this.current.reason = next.reason;
      return;
    }
    const wasAdmitted = this.current.admitted;
    this.decided = true;
    this.current = { ...next, changedAt: Date.now() };
    this.deps.metrics.admissionChanges.inc({ to: next.admitted ? "admitted" : "evicted" });
    if (next.admitted) log.info({ reason: next.reason }, "admitted: serving");
    else log.warn({ reason: next.reason }, "not admitted: evicting (no new work, finishing in-flight work, leaving)");
    const cursor = view.cursor;
    this.transitions = this.transitions.then(async () => {
      await this.deps.act(next.admitted && !this.deps.draining());
      if (wasAdmitted && !next.admitted && cursor) await this.recordEvictionDelay(cursor.number);
      if (cursor) await this.crossCheck(cursor.number);
    });
  }

  /** Logs once when the view turns stale (loudly) and once when it is fresh again. */
  private reportStaleness(): void {
    const stale = this.deps.stale();
    if (stale === this.wasStale) return;
    this.wasStale = stale;
    const status = this.deps.view.status();
    if (stale) {
      this.deps.log.error(
        { stalenessMs: status.stalenessMs, lastError: status.lastError },
        "chain view is STALE: admission frozen at its last state; gateways admit no new hosts until it is fresh",
      );
    } else this.deps.log.info({}, "chain view is fresh again");
  }

  /** From the deciding block's timestamp to now: how long the eviction took. */
  private async recordEvictionDelay(blockNumber: bigint): Promise<void> {
    try {
      const block = await this.deps.client.getBlock({ blockNumber });
      const delay = Date.now() / 1000 - Number(block.timestamp);
      this.deps.metrics.evictionDelay.observe(Math.max(0, delay));
    } catch (error) {
      this.deps.log.debug({ err: (error as Error).message }, "could not read the eviction block");
    }
  }

  /** Cheap cross-check of the view against the contract's own answer at the same block. */
  private async crossCheck(blockNumber: bigint): Promise<void> {
    const { device, role } = this.deps;
    try {
      const status = await this.deps.client.readContract({
        address: this.deps.stakeManager,
        abi: stakeManagerAbi,
        functionName: "deviceStatus",
        args: [device],
        blockNumber,
      });
      const onChain = status.admitted && Number(status.stakeType) === ROLE_STAKE_TYPE[role];
      const inView = decideAdmission(this.deps.view.map, device, role).admitted;
      if (onChain !== inView) {
        this.deps.metrics.viewMismatches.inc();
        this.deps.log.error(
          { block: blockNumber.toString(), onChain, inView },
          "chain view disagrees with deviceStatus",
        );
      }
    } catch (error) {
      this.deps.log.debug({ err: (error as Error).message }, "deviceStatus cross-check skipped");
    }
  }
}
