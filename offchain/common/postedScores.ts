/**
 * The scores RewardsManager was given, read back from the chain alone. The contract keeps no per-stake score: each
 * `ScoresPosted` log names its epoch, and the score of each stake is in the calldata of the `postScores`
 * transaction that emitted it (entries packed as scoreBatch.ts packs them).
 *
 * - `refresh()` reads the ScoresPosted logs of blocks not scanned yet, in pages like the chain view's (a wallet's
 *   provider refuses one getLogs over a long history), and then only new blocks; concurrent callers share one scan.
 * - `scoresOf(epoch)` decodes the epoch's posting transactions once each (later batches of the same epoch are
 *   decoded when they appear). A stake's score is its first entry of the epoch at most MAX_SCORE, the one the
 *   contract accrues (a later one is AlreadyScored, one over MAX_SCORE skipped without marking the stake). A transaction that is not a direct `postScores` call (a multisig's) is skipped: its
 *   scores stay unknown. RPC failures are thrown.
 *
 * The Console's page (per stake, through the wallet's provider) and its server (the map of regions, through its
 * RPC URL) both read scores this way. Browser-safe: no Node built-ins.
 */
import { type Address, type Hash, type PublicClient, decodeFunctionData } from "viem";

import { rewardsManagerAbi } from "./generated/abis";
import { getLogsPaged } from "./logPages";
import { unpackEntries } from "./scoreBatch";
import { MAX_SCORE } from "./yield";

export type ScoresClient = Pick<PublicClient, "getBlockNumber" | "getContractEvents" | "getTransaction">;

/** Decoded epochs kept (the oldest decoded is dropped first); the map and the page ask for a few at most. */
const KEEP_DECODED = 16;

interface DecodedEpoch {
  /** Posting transactions decoded so far (in order of their logs). */
  done: Set<Hash>;
  scores: Map<bigint, bigint>;
  running: Promise<void> | null;
}

export class PostedScores {
  private scannedTo: bigint;
  /** epoch -> the transactions that posted its batches, in log order, each once. */
  private readonly byEpoch = new Map<string, Hash[]>();
  private readonly decoded = new Map<string, DecodedEpoch>();
  private running: Promise<void> | null = null;
  private latest: bigint | null = null;

  constructor(
    private readonly client: ScoresClient,
    private readonly rewards: Address,
    /** The block RewardsManager was deployed in (from the address book). */
    fromBlock: bigint,
  ) {
    this.scannedTo = fromBlock - 1n;
  }

  /** The last block scanned. */
  get scannedBlock(): bigint {
    return this.scannedTo;
  }

  /** The highest epoch with a posted batch, among the blocks scanned (null: none). */
  latestEpoch(): bigint | null {
    return this.latest;
  }

  /** Scans ScoresPosted logs up to the head (one scan at a time: a caller during a scan waits for it, then scans). */
  async refresh(): Promise<void> {
    while (this.running) await this.running;
    const head = await this.client.getBlockNumber();
    if (head <= this.scannedTo) return;
    this.running = this.scan(head).finally(() => (this.running = null));
    await this.running;
  }

  /** Stake id -> score for `epoch`, from the batches seen by the last `refresh()`. */
  async scoresOf(epoch: bigint): Promise<ReadonlyMap<bigint, bigint>> {
    const key = epoch.toString();
    let entry = this.decoded.get(key);
    if (!entry) {
      entry = { done: new Set(), scores: new Map(), running: null };
      this.decoded.set(key, entry);
      if (this.decoded.size > KEEP_DECODED) this.decoded.delete(this.decoded.keys().next().value!);
    }
    const state = entry;
    while (state.running) await state.running;
    const pending = (this.byEpoch.get(key) ?? []).filter((hash) => !state.done.has(hash));
    if (pending.length > 0) {
      state.running = this.decode(pending, state).finally(() => (state.running = null));
      await state.running;
    }
    return state.scores;
  }

  /** One stake's score in `epoch` (refreshing first), or null when unknown. */
  async scoreOf(epoch: bigint, stakeId: bigint): Promise<bigint | null> {
    await this.refresh();
    return (await this.scoresOf(epoch)).get(stakeId) ?? null;
  }

  private async scan(head: bigint): Promise<void> {
    const logs = await getLogsPaged(
      (fromBlock, toBlock) =>
        this.client.getContractEvents({
          address: this.rewards,
          abi: rewardsManagerAbi,
          eventName: "ScoresPosted",
          fromBlock,
          toBlock,
        }),
      this.scannedTo + 1n,
      head,
    );
    for (const log of logs) {
      const epoch = log.args.epoch as bigint;
      const key = epoch.toString();
      const hashes = this.byEpoch.get(key) ?? [];
      if (!hashes.includes(log.transactionHash)) hashes.push(log.transactionHash);
      this.byEpoch.set(key, hashes);
      if (this.latest === null || epoch > this.latest) this.latest = epoch;
    }
    this.scannedTo = head;
  }

  private async decode(hashes: Hash[], state: DecodedEpoch): Promise<void> {
    for (const hash of hashes) {
      const tx = await this.client.getTransaction({ hash });
      try {
        const call = decodeFunctionData({ abi: rewardsManagerAbi, data: tx.input });
        if (call.functionName === "postScores")
          for (const entry of unpackEntries(call.args[2])) {
            // As the contract accrues (R20-2): an entry over MAX_SCORE is skipped without marking the stake, and a
            // stake's later entry in the same epoch is skipped (AlreadyScored): its first valid one counts.
            const score = BigInt(entry.score);
            if (score <= MAX_SCORE && !state.scores.has(entry.stakeId)) state.scores.set(entry.stakeId, score);
          }
      } catch {
        // Not a direct postScores call (a multisig's): its scores stay unknown.
      }
      state.done.add(hash);
    }
  }
}
