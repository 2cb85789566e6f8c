/**
 * Keeps the node's EpochClock at the chain head: a work loop reads the latest block's timestamp and tells the
 * clock. Reports and heartbeats then name the epoch the oracle is collecting, even on a devnet whose chain
 * time runs ahead of the wall clock. An RPC failure is ignored: the chain view reports RPC trouble, and the
 * clock falls back on the wall clock meanwhile.
 */
import type { PublicClient } from "viem";

import type { EpochClock } from "../offchain/common/epochs";
import { WorkLoop } from "../offchain/common/workLoop";

export class HeadTimeFollower {
  private readonly loop: WorkLoop;
  private firstPassDone!: () => void;
  private readonly firstPass = new Promise<void>((resolve) => (this.firstPassDone = resolve));

  constructor(client: Pick<PublicClient, "getBlock">, clock: EpochClock, intervalMs: number) {
    this.loop = new WorkLoop(
      async () => {
        try {
          clock.observeHead((await client.getBlock({ blockTag: "latest" })).timestamp);
        } finally {
          this.firstPassDone();
        }
      },
      intervalMs,
      () => undefined,
    );
  }

  /** Starts following; resolves once the first read is done (or failed), so the clock starts at the head. */
  start(): Promise<void> {
    this.loop.start();
    return this.firstPass;
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }
}
