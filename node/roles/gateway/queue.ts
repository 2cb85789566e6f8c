/**
 * The gateway's job queue (D44): jobs wait here in arrival order until a host has a free slot, and a host takes
 * the next job the moment one of its jobs ends. Each host's link says how many jobs it runs at once (its
 * capacity, the HTTP/2 concurrent-stream limit it announced); the queue never gives a host more. While hosts
 * have free slots a new job goes to the least loaded (jobs in flight over capacity; the one that started a job
 * least recently on a tie, so idle hosts take turns); once none has, jobs wait and each host pulls the next one
 * the moment one of its jobs ends. So at saturation a host that returns jobs faster (more capacity, less
 * latency) is given more of them, which is what its score then counts.
 *
 * Bounds: at most `maxLength` jobs wait (then 503 EDGE_NODE_QUEUE_FULL at once) and none longer than
 * `maxWaitMs` (then 503 EDGE_NODE_QUEUE_TIMEOUT). A retried job names the host to avoid (the one that failed it).
 * A site's placement (D69) makes a job `eligible` for some hosts only: it never starts anywhere else, it waits for
 * one of them (a host freeing a slot takes the first waiting job it may run), and fails at once (503
 * EDGE_NODE_NO_ELIGIBLE_HOST) when no linked host may run it at all.
 * Slots of a host that left, was evicted or banned, or lowered its capacity are dropped when they come up.
 */
import { nodeError } from "../../errors";

/** What the queue needs of a host's link. */
export interface Slot {
  readonly host: string;
  /** Jobs running on the link now (the queue counts them). */
  inflight: number;
  /** Jobs the host runs at once. */
  readonly capacity: number;
  /** When the queue last started a job on it (the queue sets it). */
  lastStart?: number;
  /** Jobs failed in a row by this host (the queue's breaker), and until when it takes none. */
  failures?: number;
  pausedUntil?: number;
}

export interface QueuedJob<L extends Slot> {
  /** A host this job must not go to (the one a retry comes from). */
  readonly avoid?: string;
  /** Whether `link`'s host may run this job (its site's placement, D69); absent: any host. Never bypassed. */
  readonly eligible?: (link: L) => boolean;
  /** Among free hosts, lower first (a dynamic site's own region before others, D69); absent: all equal. */
  readonly rank?: (link: L) => number;
  /** Starts the job on `link` (already counted in flight); the job calls `queue.done(link)` once it ends. */
  run(link: L): void;
  /** The job waited too long (or was cancelled): it was never started. */
  expire(error: Error): void;
  /** True once nobody waits for the job any more (its client left): it is dropped, never started. */
  cancelled?(): boolean;
}

interface Waiting<L extends Slot> {
  /** Dropped once the entry is gone, so an expired job holds no request or body while it waits to be shifted. */
  job: QueuedJob<L> | null;
  at: number;
  timer: NodeJS.Timeout;
  gone: boolean;
}

/** A FIFO with O(1) push and shift (an array and a moving head, compacted as it goes). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(item: T): void {
    this.items.push(item);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  /** The item at position i from the head. */
  at(i: number): T | undefined {
    return this.items[this.head + i];
  }
}

/** Failures in a row after which a host is paused, and the pause's range. */
export const BREAKER_AFTER = 3;
export const BREAKER_MIN_MS = 1_000;
export const BREAKER_MAX_MS = 30_000;

export interface QueueOptions {
  maxLength: number;
  maxWaitMs: number;
  /** Called with each job's wait in the queue (ms) when it starts. */
  onStart?: (waitedMs: number) => void;
}

export class JobQueue<L extends Slot> {
  private readonly waiting = new Fifo<Waiting<L>>();
  /** Links that had a free slot when last seen. */
  private readonly free = new Set<L>();
  private starts = 0;
  private waitingCount = 0;

  constructor(
    private readonly options: QueueOptions,
    /** Whether a link may take jobs now (open, its host admitted and not banned). */
    private readonly usable: (link: L) => boolean,
    /**
     * Whether any host (other than `except`, and `eligible` for the job when given) may take jobs: without one a
     * job fails at once instead of waiting.
     */
    private readonly anyHost: (except?: string, eligible?: (link: L) => boolean) => boolean = () => true,
  ) {}

  /** The wait bound for jobs submitted from now on (a configuration's `dispatch.queueWaitMs`, D54). */
  setMaxWait(ms: number): void {
    if (!Number.isSafeInteger(ms) || ms <= 0) throw new RangeError("the queue's wait must be a positive integer");
    this.options.maxWaitMs = ms;
  }

  /** Jobs waiting for a host. */
  get depth(): number {
    return this.waitingCount;
  }

  /**
   * Starts `job` on the best free host it may go to (lowest rank, then least loaded), or queues it; throws 503
   * when the queue is full, or when no linked host may ever take it.
   */
  submit(job: QueuedJob<L>): void {
    let best: L | undefined;
    let bestRank = Infinity;
    let bestLoad = Infinity;
    for (const link of this.free) {
      if (!this.hasSlot(link)) {
        this.free.delete(link);
        continue;
      }
      if (link.host === job.avoid || (job.eligible && !job.eligible(link))) continue;
      const rank = job.rank?.(link) ?? 0;
      const load = link.inflight / link.capacity;
      const better =
        rank < bestRank ||
        (rank === bestRank &&
          (load < bestLoad || (load === bestLoad && (link.lastStart ?? 0) < (best!.lastStart ?? 0))));
      if (better) {
        best = link;
        bestRank = rank;
        bestLoad = load;
      }
    }
    if (best) return this.start(job, best, 0);
    if (!this.anyHost(job.avoid))
      throw nodeError(
        "EDGE_NODE_NO_HOSTS",
        `no admitted host${job.avoid ? " other than the one that failed" : ""} is linked`,
      );
    if (job.eligible && !this.anyHost(job.avoid, job.eligible))
      throw nodeError("EDGE_NODE_NO_ELIGIBLE_HOST", "no linked host may run this site's jobs under its placement");
    if (this.waitingCount >= this.options.maxLength) {
      throw nodeError("EDGE_NODE_QUEUE_FULL", `${this.waitingCount} jobs are waiting for a host: retry shortly`);
    }
    const entry: Waiting<L> = {
      job,
      at: Date.now(),
      gone: false,
      timer: setTimeout(() => {
        entry.gone = true;
        entry.job = null;
        this.waitingCount -= 1;
        job.expire(
          nodeError("EDGE_NODE_QUEUE_TIMEOUT", `no host took the job within ${this.options.maxWaitMs} ms: retry later`),
        );
      }, this.options.maxWaitMs),
    };
    this.waiting.push(entry);
    this.waitingCount += 1;
  }

  /** `count` new free slots on `link` (it connected or raised its capacity): it takes waiting jobs. */
  offer(link: L, count: number): void {
    for (let i = 0; i < count; i++) this.hand(link);
  }

  /** A job on `link` ended: the link takes the next waiting job, or its slot waits for one. */
  done(link: L): void {
    link.inflight -= 1;
    this.hand(link);
  }

  private hasSlot(link: L): boolean {
    return link.inflight < link.capacity && (link.pausedUntil ?? 0) <= Date.now() && this.usable(link);
  }

  private hand(link: L): void {
    if (!this.hasSlot(link)) {
      this.free.delete(link);
      return;
    }
    // The first waiting job this host may take (a retry avoids the host it comes from): a short scan.
    for (let i = 0, live = 0; i < this.waiting.length && live < 16; i++) {
      const entry = this.waiting.at(i)!;
      if (entry.gone) {
        if (i === 0) {
          this.waiting.shift();
          i -= 1;
        }
        continue;
      }
      const job = entry.job!;
      if (job.cancelled?.()) {
        this.drop(entry);
        job.expire(new Error("cancelled: nobody waits for the job"));
        i -= 1; // re-read this position: a dropped head was shifted
        continue;
      }
      live += 1;
      if (job.avoid === link.host || (job.eligible && !job.eligible(link))) continue;
      this.drop(entry);
      if (i === 0) this.waiting.shift();
      return this.start(job, link, Date.now() - entry.at);
    }
    this.free.add(link);
  }

  /** Takes an entry out of the count (its slot in the FIFO is skipped, or shifted if at the head). */
  private drop(entry: Waiting<L>): void {
    entry.gone = true;
    entry.job = null;
    clearTimeout(entry.timer);
    this.waitingCount -= 1;
  }

  /**
   * The breaker: a job `link`'s host failed (its link cut, no answer in time, its own error while another host
   * could serve). From BREAKER_AFTER failures in a row the host takes no job for a pause that doubles each time
   * (BREAKER_MIN_MS up to BREAKER_MAX_MS), so a host that fails fast, and so always looks least loaded, cannot
   * swallow the queue. Its slots come back when the pause ends.
   */
  failed(link: L): void {
    link.failures = (link.failures ?? 0) + 1;
    if (link.failures < BREAKER_AFTER) return;
    const pause = Math.min(BREAKER_MAX_MS, BREAKER_MIN_MS * 2 ** (link.failures - BREAKER_AFTER));
    link.pausedUntil = Date.now() + pause;
    this.free.delete(link);
    setTimeout(() => this.offer(link, link.capacity - link.inflight), pause).unref();
  }

  /** A job `link`'s host returned whole: its failure count starts again. */
  succeeded(link: L): void {
    link.failures = 0;
  }

  private start(job: QueuedJob<L>, link: L, waitedMs: number): void {
    link.inflight += 1;
    link.lastStart = ++this.starts;
    if (link.inflight >= link.capacity) this.free.delete(link);
    this.options.onStart?.(waitedMs);
    job.run(link);
  }
}
