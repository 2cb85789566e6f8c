/**
 * RewardsManager's epochs, and the one clock that names the current epoch for the node and the oracle.
 *
 * The clock is the later of the wall clock and the chain head's time: on a devnet the chain runs ahead of the
 * wall clock (blocks faster than one a second, or time moved forward), and a report or heartbeat must name the
 * epoch the oracle is collecting. Closing an epoch goes by the chain alone (the oracle), so every instance closes
 * it at the same block.
 */
import type { PublicClient } from "viem";

import { rewardsManagerAbi } from "./generated/abis";

/** Epoch numbering of the deployment's RewardsManager: epoch n covers [genesis + n*duration, +duration). */
export interface Epochs {
  genesis: bigint;
  duration: bigint;
}

export function epochAt(epochs: Epochs, timestampSeconds: bigint): bigint {
  return timestampSeconds < epochs.genesis ? 0n : (timestampSeconds - epochs.genesis) / epochs.duration;
}

export function epochWindow(epochs: Epochs, epoch: bigint): { start: bigint; end: bigint } {
  const start = epochs.genesis + epoch * epochs.duration;
  return { start, end: start + epochs.duration };
}

/** Reads RewardsManager's genesis and epoch duration. */
export async function readEpochs(client: Pick<PublicClient, "readContract">, rewards: `0x${string}`): Promise<Epochs> {
  const [genesis, duration] = await Promise.all([
    client.readContract({ address: rewards, abi: rewardsManagerAbi, functionName: "genesis" }),
    client.readContract({ address: rewards, abi: rewardsManagerAbi, functionName: "epochDuration" }),
  ]);
  return { genesis, duration };
}

/** Now for epochs, in unix seconds: the later of the wall clock and the latest chain head time it was told. */
export class EpochClock {
  private headTime = 0n;

  constructor(
    readonly epochs: Epochs,
    private readonly wallMs: () => number = Date.now,
  ) {}

  /** Records a head's timestamp (seconds); the clock never goes back (the node: a slow RPC answer is ignored). */
  observeHead(timestampSeconds: bigint): void {
    if (timestampSeconds > this.headTime) this.headTime = timestampSeconds;
  }

  /**
   * Sets the head's timestamp as read now, earlier or not (the oracle, which closes epochs by the head: a reorg to
   * an earlier time or a bogus timestamp from the RPC must not stick until a restart).
   */
  setHead(timestampSeconds: bigint): void {
    this.headTime = timestampSeconds;
  }

  /** The latest head time observed (0 before any). */
  get head(): bigint {
    return this.headTime;
  }

  nowSeconds(): bigint {
    const wall = BigInt(Math.floor(this.wallMs() / 1000));
    return wall > this.headTime ? wall : this.headTime;
  }

  currentEpoch(): bigint {
    return epochAt(this.epochs, this.nowSeconds());
  }

  epochAt(timestampSeconds: bigint): bigint {
    return epochAt(this.epochs, timestampSeconds);
  }

  window(epoch: bigint): { start: bigint; end: bigint } {
    return epochWindow(this.epochs, epoch);
  }
}
