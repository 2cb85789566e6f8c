/**
 * The chain view: StakeManager's device -> stake -> admitted map, rebuilt from logs and kept current.
 *
 * - Cold sync: paged eth_getLogs from the deployment block, several pages in flight at once, each sized from
 *   the density of logs seen so far (about `targetLogsPerPage`, growing at most fourfold per page, halved when a
 *   provider refuses a response as too large), with progress callbacks.
 * - Following: each poll reads the head, checks that the block at its cursor still has the hash it recorded
 *   (a reorg otherwise), and reads logs up to `head - confirmations`. It keeps its own cursor (block number and
 *   hash); no node-side filters, so any node, restarted or load-balanced, serves it.
 * - Reorgs: the view keeps the events of its last `keepCheckpoints` pages as segments on top of a base map.
 *   When a recorded hash no longer matches, it drops the segments past the newest checkpoint that still
 *   matches, rebuilds the map from the base and reads forward again; a reorg deeper than that resyncs.
 * - Outages: RPC errors retry with exponential backoff; the map stays as it was (a node never flaps because
 *   its RPC is down), and `status()` reports the head, the lag and how stale the view is.
 */
import type { Address, Hex, PublicClient } from "viem";

import { type RawLog, STAKE_EVENT_TOPICS, decodeStakeLog } from "./stakeEvents";
import { StakeMap } from "./stakeMap";
import { errorClass } from "./errors";
import { DEFAULT_PAGING, isTooLargeError, nextPageSize, shrunkPageSize } from "./logPages";
import { redactUrls } from "./redact";

export interface Checkpoint {
  number: bigint;
  hash: Hex;
}

/** The subset of pino's logger the view uses. */
export interface ViewLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface SyncProgress {
  fromBlock: bigint;
  toBlock: bigint;
  target: bigint;
  logs: number;
  pageSize: number;
}

export interface ChainViewOptions {
  client: Pick<PublicClient, "request">;
  stakeManager: Address;
  /** The block StakeManager was deployed in (from the address book). */
  fromBlock: bigint;
  /** Blocks to stay behind the head (0: follow the head itself). */
  confirmations?: number;
  pollIntervalMs?: number;
  initialPageSize?: number;
  maxPageSize?: number;
  /** Pages are sized to bring about this many logs (fewer, smaller responses beat one huge one). */
  targetLogsPerPage?: number;
  /** Pages requested at once while catching up. */
  concurrency?: number;
  /** How many applied pages to keep for reorg repair. */
  keepCheckpoints?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  logger?: ViewLogger;
  onProgress?: (progress: SyncProgress) => void;
  now?: () => number;
}

export interface ChainViewStatus {
  head: bigint | null;
  cursor: Checkpoint | null;
  /** head - cursor, in blocks. */
  lag: bigint | null;
  /** Milliseconds since the view last confirmed it had every log up to its target (null: never). */
  stalenessMs: number | null;
  synced: boolean;
  consecutiveErrors: number;
  lastError: string | null;
  reorgs: number;
}

interface Segment {
  to: Checkpoint;
  events: ReturnType<typeof decodeStakeLog>[];
}

const SILENT: ViewLogger = { info: () => undefined, warn: () => undefined, debug: () => undefined };

export { isTooLargeError } from "./logPages";

export const ReorgDuringSyncError = errorClass("ReorgDuringSyncError", "CHAIN_VIEW_REORG_DURING_SYNC", 503);
export type ReorgDuringSyncError = InstanceType<typeof ReorgDuringSyncError>;

export class ChainView {
  private readonly client: Pick<PublicClient, "request">;
  private readonly options: Required<
    Omit<ChainViewOptions, "client" | "logger" | "onProgress" | "now" | "stakeManager" | "fromBlock">
  >;
  private readonly log: ViewLogger;
  private readonly now: () => number;
  private base = new StakeMap();
  private baseBlock: Checkpoint | null = null;
  private current = new StakeMap();
  private segments: Segment[] = [];
  private pageSize: number;
  private head: bigint | null = null;
  private lastSyncedAt: number | null = null;
  private consecutiveErrors = 0;
  private lastError: string | null = null;
  private reorgs = 0;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly config: ChainViewOptions) {
    this.client = config.client;
    this.options = {
      confirmations: config.confirmations ?? 0,
      pollIntervalMs: config.pollIntervalMs ?? 1000,
      // Small first: the density of logs is unknown, and an oversized page costs a refused response.
      initialPageSize: config.initialPageSize ?? DEFAULT_PAGING.initialPageSize,
      maxPageSize: config.maxPageSize ?? DEFAULT_PAGING.maxPageSize,
      targetLogsPerPage: config.targetLogsPerPage ?? DEFAULT_PAGING.targetLogsPerPage,
      concurrency: config.concurrency ?? 4,
      keepCheckpoints: config.keepCheckpoints ?? 128,
      backoffInitialMs: config.backoffInitialMs ?? 250,
      backoffMaxMs: config.backoffMaxMs ?? 10_000,
    };
    this.pageSize = this.options.initialPageSize;
    this.log = config.logger ?? SILENT;
    this.now = config.now ?? Date.now;
  }

  /** The current map (read it, do not change it). */
  get map(): StakeMap {
    return this.current;
  }

  get cursor(): Checkpoint | null {
    return this.segments.at(-1)?.to ?? this.baseBlock;
  }

  status(): ChainViewStatus {
    const cursor = this.cursor;
    return {
      head: this.head,
      cursor,
      lag: this.head === null ? null : this.head - (cursor?.number ?? this.config.fromBlock - 1n),
      stalenessMs: this.lastSyncedAt === null ? null : this.now() - this.lastSyncedAt,
      synced: this.lastSyncedAt !== null,
      consecutiveErrors: this.consecutiveErrors,
      lastError: this.lastError,
      reorgs: this.reorgs,
    };
  }

  /** Calls `listener` after every sync step that changed the map. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * One reconcile step: read the head, repair a reorg, read every new log up to the target (`head -
   * confirmations`, or `upTo` if lower: the oracle keeps a view that stops at an epoch's last block).
   */
  async syncOnce(upTo?: bigint): Promise<void> {
    const head = BigInt(await this.client.request({ method: "eth_blockNumber" }));
    this.head = head;
    const confirmed = head - BigInt(this.options.confirmations);
    const target = upTo !== undefined && upTo < confirmed ? upTo : confirmed;
    let changed = false;
    const cursor = this.cursor;
    if (cursor && cursor.number <= head) {
      const block = await this.block(cursor.number);
      if (block.hash !== cursor.hash) changed = (await this.repair(cursor)) || changed;
    } else if (cursor && cursor.number > head) {
      // The chain is shorter than what we applied: a reorg to a shorter chain, or a reset node.
      changed = (await this.repair(cursor)) || changed;
    }
    let from = (this.cursor?.number ?? this.config.fromBlock - 1n) + 1n;
    while (from <= target) {
      // Up to `concurrency` consecutive pages in flight at once (a node answers them in parallel), applied in
      // order; the first failure ends the round.
      const pages: Array<[bigint, bigint]> = [];
      for (let start = from; start <= target && pages.length < this.options.concurrency;) {
        const end = start + BigInt(this.pageSize) - 1n < target ? start + BigInt(this.pageSize) - 1n : target;
        pages.push([start, end]);
        start = end + 1n;
      }
      const results = await Promise.allSettled(pages.map(([start, end]) => this.fetchPage(start, end)));
      for (const [i, result] of results.entries()) {
        const [start, end] = pages[i];
        if (result.status === "rejected") {
          if (isTooLargeError(result.reason) && this.pageSize > 1) {
            this.pageSize = shrunkPageSize(start, end);
            this.log.debug({ pageSize: this.pageSize }, "getLogs page too large, shrinking");
            break;
          }
          throw result.reason;
        }
        const { header, logs } = result.value;
        await this.checkLogBlocks(logs, header);
        const events = logs.filter((l) => !l.removed).map(decodeStakeLog);
        for (const event of events) if (event) this.current.apply(event);
        this.segments.push({ to: header, events });
        changed ||= events.length > 0;
        this.fold();
        this.config.onProgress?.({
          fromBlock: start,
          toBlock: end,
          target,
          logs: logs.length,
          pageSize: this.pageSize,
        });
        this.pageSize = nextPageSize(this.options, this.pageSize, Number(end - start) + 1, logs.length);
        from = end + 1n;
      }
    }
    this.lastSyncedAt = this.now();
    if (changed) for (const listener of this.listeners) listener();
  }

  /**
   * Follows the chain until stopped: one sync step per poll interval, never two at once; after an error, waits
   * with exponential backoff. Returns the stop function (which waits for the step in progress).
   */
  start(): () => Promise<void> {
    let stopped = false;
    let wake: (() => void) | undefined;
    const loop = (async () => {
      let backoff = this.options.backoffInitialMs;
      while (!stopped) {
        let wait = this.options.pollIntervalMs;
        try {
          await this.syncOnce();
          if (this.consecutiveErrors > 0) this.log.info({ after: this.consecutiveErrors }, "chain view recovered");
          this.consecutiveErrors = 0;
          this.lastError = null;
          backoff = this.options.backoffInitialMs;
        } catch (error) {
          this.consecutiveErrors += 1;
          this.lastError = redactUrls((error as Error).message?.split("\n")[0] ?? String(error));
          wait = backoff;
          backoff = Math.min(this.options.backoffMaxMs, backoff * 2);
          this.log.warn(
            { err: this.lastError, retryInMs: wait, errors: this.consecutiveErrors },
            "chain view sync failed",
          );
        }
        if (stopped) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    })();
    return async () => {
      stopped = true;
      wake?.();
      await loop;
    };
  }

  /** The last header of a page and the page's logs, in parallel: one round trip. */
  private async fetchPage(from: bigint, to: bigint): Promise<{ header: Checkpoint; logs: RawLog[] }> {
    const [header, logs] = await Promise.all([
      this.block(to),
      this.client.request({
        method: "eth_getLogs",
        params: [
          {
            address: this.config.stakeManager,
            topics: [STAKE_EVENT_TOPICS],
            fromBlock: `0x${from.toString(16)}`,
            toBlock: `0x${to.toString(16)}`,
          },
        ],
      } as never) as Promise<RawLog[]>,
    ]);
    return { header, logs };
  }

  /**
   * Every log of a page must come from the chain the view follows (F12): a load-balanced RPC can answer
   * eth_getLogs from a backend still on a replaced fork. The page's last block is checked against the header read
   * with it; every other block that holds a log is read and compared too (a few at a time), so a log from a fork is
   * never applied. Checkpoints keep only each page's last block, which later reorgs of any block in the page change,
   * so what is applied stays repairable.
   */
  private async checkLogBlocks(logs: RawLog[], header: Checkpoint): Promise<void> {
    const claimed = new Map<bigint, Hex>();
    for (const log of logs) {
      const number = BigInt(log.blockNumber);
      const seen = claimed.get(number);
      if (seen !== undefined && seen !== log.blockHash) {
        throw new ReorgDuringSyncError(`block ${number}: logs from two different blocks in one page`);
      }
      claimed.set(number, log.blockHash);
    }
    const headerHash = claimed.get(header.number);
    if (headerHash !== undefined && headerHash !== header.hash) {
      throw new ReorgDuringSyncError(`block ${header.number} changed while its logs were read`);
    }
    claimed.delete(header.number);
    const numbers = [...claimed.keys()];
    for (let i = 0; i < numbers.length; i += this.options.concurrency) {
      const chunk = numbers.slice(i, i + this.options.concurrency);
      const blocks = await Promise.all(chunk.map((number) => this.block(number)));
      for (const block of blocks) {
        if (block.hash !== claimed.get(block.number)) {
          throw new ReorgDuringSyncError(`a log of block ${block.number} is from a block no longer on the chain`);
        }
      }
    }
  }

  private async block(number: bigint): Promise<Checkpoint> {
    const block = await this.client.request({
      method: "eth_getBlockByNumber",
      params: [`0x${number.toString(16)}`, false],
    } as never);
    if (!block) throw new Error(`block ${number} is not available`);
    const { hash } = block as { hash: Hex };
    return { number, hash };
  }

  /** Rolls the map back to the newest checkpoint still on the chain. Returns whether the map changed. */
  private async repair(stale: Checkpoint): Promise<boolean> {
    this.reorgs += 1;
    const head = this.head ?? 0n;
    let keep = -1;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const checkpoint = this.segments[i].to;
      if (checkpoint.number <= head && (await this.block(checkpoint.number)).hash === checkpoint.hash) {
        keep = i;
        break;
      }
    }
    let resync = false;
    if (keep < 0 && this.baseBlock) {
      const baseOk =
        this.baseBlock.number <= head && (await this.block(this.baseBlock.number)).hash === this.baseBlock.hash;
      if (!baseOk) resync = true;
    }
    const dropped = this.segments.length - 1 - keep;
    if (resync) {
      this.base = new StakeMap();
      this.baseBlock = null;
      this.segments = [];
    } else {
      this.segments = this.segments.slice(0, keep + 1);
    }
    this.current = this.base.clone();
    for (const segment of this.segments) for (const event of segment.events) if (event) this.current.apply(event);
    this.log.warn(
      {
        staleBlock: stale.number.toString(),
        droppedPages: dropped,
        resync,
        cursor: this.cursor?.number.toString() ?? null,
      },
      "chain reorganisation: rolled the view back",
    );
    return true;
  }

  /** Moves pages older than the reorg window into the base map. */
  private fold(): void {
    while (this.segments.length > this.options.keepCheckpoints) {
      const segment = this.segments.shift()!;
      for (const event of segment.events) if (event) this.base.apply(event);
      this.baseBlock = segment.to;
    }
  }
}
