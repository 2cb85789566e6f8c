/** What every role gets from the daemon, and what a role gives back. */
import type { FastifyBaseLogger } from "fastify";
import type { Address, PublicClient } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";

import type { AddressBook } from "../offchain/common/addressBook";
import type { TypedApp } from "../offchain/common/http";
import type { ChainView } from "../offchain/common/chainView";
import type { NodeConfig } from "./config";
import type { NodeMetrics } from "./metrics";
import type { Outbox, OutboxItem } from "./outbox";

/** Epoch numbering of the deployment's RewardsManager. */
export interface Epochs {
  genesis: bigint;
  duration: bigint;
}

export function epochAt(epochs: Epochs, timestampSeconds: bigint): bigint {
  return timestampSeconds < epochs.genesis ? 0n : (timestampSeconds - epochs.genesis) / epochs.duration;
}

/** Counts work in flight so draining and shutdown can wait for it. */
export class WorkTracker {
  private count = 0;
  private waiters: Array<() => void> = [];

  get inFlight(): number {
    return this.count;
  }

  begin(): () => void {
    this.count += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.count -= 1;
      if (this.count === 0) for (const wake of this.waiters.splice(0)) wake();
    };
  }

  waitIdle(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

export interface NodeContext {
  config: NodeConfig;
  device: Address;
  account: PrivateKeyAccount;
  chainId: number;
  client: PublicClient;
  view: ChainView;
  book: AddressBook;
  log: FastifyBaseLogger;
  outbox: Outbox;
  metrics: NodeMetrics;
  work: WorkTracker;
  epochs: Epochs | null;
  /** Admitted, synced and not draining: the node takes new work. */
  serving(): boolean;
  /** The chain view is older than the staleness bound. */
  stale(): boolean;
  /** Sends an outbox item to its receiver's configured URL (kept for later when none is configured). */
  deliver(item: OutboxItem): Promise<"sent" | "retry" | "rejected">;
  /** Now for epochs, in unix seconds: the later of the wall clock and the chain head time, as the oracle counts. */
  epochClockSeconds(): bigint;
}

export interface RoleModule {
  register(app: TypedApp): void;
  start(): void;
  /** Leaves the network gracefully (after in-flight work finished). */
  stop(): Promise<void>;
  onAdmission(admitted: boolean): Promise<void>;
  onViewChange(): void;
  status(): Record<string, unknown>;
  routableHosts(): number;
}
