/**
 * The gateway's job queue (D44), placing jobs with the placement engine (node/placement, D69). Each host's link
 * says how many jobs it runs at once (its capacity, the HTTP/2 concurrent-stream limit it announced); the queue
 * never gives a host more. A new job is placed by `PlacementEngine.decide` under its site's placement: without
 * one, the least loaded host (most free slots; the one that started a job least recently on a tie, so idle hosts
 * take turns); static and enforced, the least loaded host the policy allows, never another; dynamic, the
 * gateway's own region until its queue depth or p99 passes the site's thresholds, then the next region, back
 * after the hold. When no host it may use has a free slot the job waits (waitLists.ts: one FIFO per placement
 * class) and a host freeing a slot takes the oldest waiting job it may run. So at saturation a host that returns
 * jobs faster is given more of them, which is what its score then counts.
 *
 * The engine is fed here: a link joins when offered (its signed region, its capacity), its health follows the
 * breaker and `usable` (checked before a job starts on it: a link found closed, banned, evicted or unhealthy is
 * marked unhealthy and the decision taken again), `started`/`finished` where `inflight` is counted. Regions'
 * loads are observed when their queue depth changes and on a tick (every `tickMs` while jobs wait, run or a site
 * is spilled), which also recomputes p99s (placementLoad.ts), returns spilled sites whose hold passed, and moves
 * dynamic sites' waiting jobs where their spill state now routes them. The tick also rebuilds the engine's latency
 * table (`setLatency`, every 5 s at most) from the links' ping round trips, the median per region: after the
 * gateway's own region a dynamic site's regions go nearest first, regions without a measurement last by key.
 *
 * Bounds: at most `maxLength` jobs wait (then 503 EDGE_NODE_QUEUE_FULL at once) and none longer than
 * `maxWaitMs` (then 503 EDGE_NODE_QUEUE_TIMEOUT); a job no linked host may run fails at once (503
 * EDGE_NODE_NO_HOSTS, or EDGE_NODE_NO_ELIGIBLE_HOST under a placement). A retried job names the host to avoid.
 */
import { nodeError } from "../../errors";
import { type Decision, PlacementEngine, allows } from "../../placement";
import { LATENCY_TABLE_MS, RegionLatency, latencyTable, sameTable } from "./placementLoad";
import type { QueuedJob, Slot } from "./queueTypes";
import { type WaitClass, WaitLists } from "./waitLists";

export type { QueuedJob, Slot } from "./queueTypes";

/** Failures in a row after which a host is paused, and the pause's range. */
export const BREAKER_AFTER = 3;
export const BREAKER_MIN_MS = 1_000;
export const BREAKER_MAX_MS = 30_000;

export interface QueueOptions {
  maxLength: number;
  maxWaitMs: number;
  /** Called with each job's wait in the queue (ms) when it starts. */
  onStart?: (waitedMs: number) => void;
  /** The clock of placement decisions and loads (ms); Date.now by default (tests pass their own). */
  now?: () => number;
  /** The tick's period (ms; 1,000 by default); 0: no timer (the owner calls `tick`). */
  tickMs?: number;
}

export class JobQueue<L extends Slot> {
  readonly engine = new PlacementEngine();
  private readonly waiting: WaitLists<L>;
  private readonly latency = new RegionLatency();
  /** host -> the link joined in the engine for it. */
  private readonly links = new Map<string, L>();
  /** Links the engine holds unhealthy (unusable or paused when last seen), rechecked on the tick. */
  private readonly parked = new Set<L>();
  private readonly now: () => number;
  private ticker: NodeJS.Timeout | undefined;
  private latencyAt = -Infinity;
  private rtts: ReadonlyMap<string, number> = new Map();

  constructor(
    private readonly options: QueueOptions,
    /** Whether a link may take jobs now (open, its host admitted and not banned). */
    private readonly usable: (link: L) => boolean,
    /**
     * Whether any host (other than `except`, and `eligible` for the job when given) may take jobs: without one a
     * job fails at once instead of waiting.
     */
    private readonly anyHost: (except?: string, eligible?: (link: L) => boolean) => boolean = () => true,
  ) {
    this.now = options.now ?? Date.now;
    this.waiting = new WaitLists<L>((region) => this.observe(region, this.now()));
  }

  /** The wait bound for jobs submitted from now on (a configuration's `dispatch.queueWaitMs`, D54). */
  setMaxWait(ms: number): void {
    if (!Number.isSafeInteger(ms) || ms <= 0) throw new RangeError("the queue's wait must be a positive integer");
    this.options.maxWaitMs = ms;
  }

  /** Jobs waiting for a host. */
  get depth(): number {
    return this.waiting.length;
  }

  /** Dynamic jobs waiting for region `key`'s hosts (its queue depth, D69). */
  depthOf(key: string): number {
    return this.waiting.waitingIn(key);
  }

  /** Region `key`'s p99 job latency as last computed (ms). */
  p99Of(key: string): number {
    return this.latency.p99(key);
  }

  /**
   * Starts `job` where the engine places it, or queues it; throws 503 when the queue is full, or when no linked
   * host may ever take it.
   */
  submit(job: QueuedJob<L>): void {
    const now = this.now();
    const cls = this.waiting.classOf(job);
    // Older jobs of its class first (FIFO): a spill, a return or a freed slot may have made room for them.
    if (cls.live > 0) this.pump(cls, now);
    const d = cls.live > 0 ? this.behind(cls) : this.place(cls, job.avoid, now);
    if ("link" in d) return this.start(job, d.link, 0, now);
    const eligible = job.site?.placement ? (link: L) => allows(cls.policy, link.region, link.host, "host") : undefined;
    if (!this.anyHost(job.avoid))
      throw nodeError(
        "EDGE_NODE_NO_HOSTS",
        `no admitted host${job.avoid ? " other than the one that failed" : ""} is linked`,
      );
    if (eligible && !this.anyHost(job.avoid, eligible)) {
      const said = "refuse" in d && d.code === "EDGE_NODE_NO_ELIGIBLE_HOST" ? d.message : undefined;
      throw nodeError("EDGE_NODE_NO_ELIGIBLE_HOST", said ?? "no linked host may run this site's jobs under its placement"); // prettier-ignore
    }
    if (this.waiting.length >= this.options.maxLength) {
      throw nodeError("EDGE_NODE_QUEUE_FULL", `${this.waiting.length} jobs are waiting for a host: retry shortly`);
    }
    const entry = this.waiting.push(cls, job, now, "wait" in d ? d.region : undefined);
    entry.timer = setTimeout(() => {
      this.waiting.drop(entry);
      job.expire(
        nodeError("EDGE_NODE_QUEUE_TIMEOUT", `no host took the job within ${this.options.maxWaitMs} ms: retry later`),
      );
    }, this.options.maxWaitMs);
    this.wake();
    // Its wait may have pushed the region over the site's threshold: the engine then routes the site elsewhere.
    if (cls.dynamic) this.pump(cls, now);
  }

  /** `count` new free slots on `link` (it connected, raised its capacity, or is usable again): it takes jobs. */
  offer(link: L, count: number): void {
    if (!this.track(link)) return;
    this.engine.join(link.host, { region: link.region, capacity: link.capacity }); // its region or capacity may be new
    for (let i = 0; i < count; i++) if (!this.hand(link)) break;
  }

  /** `link` closed (its host left, was evicted or banned, or linked again): the engine forgets it. */
  leave(link: L): void {
    this.forget(link);
  }

  /** A job on `link` ended (`startedAt`: what `run` was given): the link takes the next waiting job it may run. */
  done(link: L, startedAt?: number): void {
    link.inflight -= 1;
    if (this.links.get(link.host) === link) this.engine.finished(link.host);
    if (startedAt !== undefined) {
      this.latency.add(link.region, this.now() - startedAt, this.now());
      this.wake();
    }
    this.hand(link);
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
    if (this.links.get(link.host) === link) this.engine.setHealthy(link.host, false);
    this.parked.add(link);
    setTimeout(() => this.offer(link, link.capacity - link.inflight), pause).unref();
  }

  /** A job `link`'s host returned whole: its failure count starts again. */
  succeeded(link: L): void {
    link.failures = 0;
  }

  /**
   * The periodic work (every `tickMs` while there is some): parked links rechecked, every region's load observed
   * with a fresh p99, spilled sites whose hold passed returned, dynamic sites' waiting jobs moved where they are
   * routed now.
   */
  tick(now = this.now()): void {
    for (const link of [...this.parked]) {
      if (link.closed === true) this.forget(link);
      else if (this.links.get(link.host) !== link) this.parked.delete(link);
      else if (this.healthy(link)) this.offer(link, link.capacity - link.inflight);
    }
    this.latency.refresh(now);
    this.measureLatency(now);
    const regions = new Set([...this.latency.regions(), ...this.waiting.waitingRegions()]);
    for (const bucket of this.engine.hosts.allDeclared()) regions.add(bucket.key);
    for (const key of regions) this.observe(key, now);
    this.engine.spill.settle(now);
    for (const cls of [...this.waiting.all()]) if (cls.dynamic) this.pump(cls, now);
    if (this.waiting.length === 0 && !this.latency.measuring && this.engine.spill.all().next().done) this.sleep();
  }

  /** The engine's latency table from the links' round trips (at most every LATENCY_TABLE_MS; only when changed). */
  measureLatency(now = this.now(), force = false): void {
    if (!force && now - this.latencyAt < LATENCY_TABLE_MS) return;
    this.latencyAt = now;
    const table = latencyTable(this.links.values());
    if (sameTable(table, this.rtts)) return;
    this.rtts = table;
    this.engine.setLatency(table);
  }

  /** Stops the tick (the gateway stopping). */
  close(): void {
    this.sleep();
  }

  /** The gateway's /status fields of the queue: jobs waiting, and the placement state. */
  status(): { queueDepth: number; placement: ReturnType<JobQueue<L>["placement"]> } {
    return { queueDepth: this.depth, placement: this.placement() };
  }

  /**
   * The placement state for /status: spilled (site, region) pairs and each region's hosts and load. Regions with no
   * host linked now and no job waiting are left out (R20-3): a host may sign a new region at each registration, and
   * the engine keeps every region it has seen, so listing them all grew /status and the metrics without bound.
   */
  placement(): {
    spilled: Array<{ site: string; region: string; since: number }>;
    regions: Record<string, { hosts: number; healthy: number; free: number; waiting: number; p99Ms: number }>;
    /** The measured latency table (median ping round trip per region, ms). */
    latencyMs: Record<string, number>;
  } {
    const regions: Record<string, { hosts: number; healthy: number; free: number; waiting: number; p99Ms: number }> = {}; // prettier-ignore
    for (const b of this.engine.hosts.allDeclared()) {
      const { hosts, healthy } = b;
      const waiting = this.depthOf(b.key);
      if (hosts === 0 && waiting === 0) continue;
      regions[b.key] = { hosts, healthy, free: b.free.size, waiting, p99Ms: this.p99Of(b.key) };
    }
    return { spilled: [...this.engine.spill.all()], regions, latencyMs: Object.fromEntries(this.rtts) };
  }

  /** The engine's place for a job of `cls` (a host with a slot checked usable now), or why not. */
  private place(
    cls: WaitClass<L>,
    avoid: string | undefined,
    now: number,
  ): { link: L } | Exclude<Decision, { host: string }> {
    // prettier-ignore
    for (;;) {
      const d = this.engine.decide(cls.site, cls.origin, now, avoid);
      if (!("host" in d)) return d;
      const link = this.links.get(d.host);
      if (link !== undefined && this.ready(link)) return { link };
      // Not what the engine believed (closed, unhealthy, paused, capacity lowered): corrected, decided again.
      if (link === undefined) this.engine.leave(d.host);
    }
  }

  /** A new job of a class that still has jobs waiting waits behind them. */
  private behind(cls: WaitClass<L>): Decision {
    const message = `jobs of the same placement (${cls.policy.label}) are waiting for a host`;
    return { wait: true, message, region: cls.region };
  }

  /**
   * Starts `cls`'s waiting jobs, oldest first, while the engine places them; stops at the first that must wait
   * (a later one would get the same answer), unless that one avoids a host (a retry's): the next may use it.
   */
  private pump(cls: WaitClass<L>, now: number): void {
    for (let progressed = true; progressed;) {
      progressed = false;
      for (const entry of this.waiting.firstLive(cls)) {
        if (entry.gone) continue; // started meanwhile (a job's run can free a slot at once)
        const job = entry.job!;
        const d = this.place(cls, job.avoid, now);
        if ("link" in d) {
          this.waiting.drop(entry);
          this.start(job, d.link, now - entry.at, now);
          progressed = true;
          continue;
        }
        if ("wait" in d && d.region !== undefined) this.waiting.route(cls, d.region);
        if (job.avoid === undefined) return;
      }
    }
  }

  /** A slot may have freed on `link`: it takes the oldest waiting job it may run. False: it took none. */
  private hand(link: L): boolean {
    if (!this.track(link) || !this.ready(link)) return false;
    const now = this.now();
    let best: ReturnType<WaitLists<L>["headFor"]>;
    for (const cls of this.waiting.all()) {
      const entry = this.waiting.headFor(cls, link.host);
      if (entry === undefined || (best !== undefined && best.seq < entry.seq)) continue;
      const fits = cls.dynamic
        ? this.engine.takes(cls.site, link.host, cls.origin, now)
        : allows(cls.policy, link.region, link.host, "host");
      if (fits) best = entry;
    }
    if (best === undefined) return false;
    const job = best.job!;
    this.waiting.drop(best);
    this.start(job, link, now - best.at, now);
    return true;
  }

  /** Makes `link` the one the engine holds for its host (a link that replaced another); false if unusable. */
  private track(link: L): boolean {
    if (this.links.get(link.host) === link) return true;
    if (!this.usable(link) || link.closed === true) return false;
    const old = this.links.get(link.host);
    if (old !== undefined) this.parked.delete(old);
    this.engine.leave(link.host);
    this.engine.join(link.host, { region: link.region, capacity: link.capacity });
    for (let i = 0; i < link.inflight; i++) this.engine.started(link.host);
    this.links.set(link.host, link);
    return true;
  }

  /** Whether `link` may take a job now; if not, the engine is told what holds it back (capacity or health). */
  private ready(link: L): boolean {
    const entry = this.engine.hosts.host(link.host);
    if (entry === undefined) return false;
    if (entry.capacity !== link.capacity) this.engine.setCapacity(link.host, link.capacity);
    const healthy = this.healthy(link);
    this.engine.setHealthy(link.host, healthy);
    if (healthy) this.parked.delete(link);
    else this.parked.add(link);
    if (healthy && link.inflight < link.capacity) return true;
    // The engine counted a free slot the link does not have: it takes no job until offered again.
    if (entry.free > 0) {
      this.engine.setHealthy(link.host, false);
      this.parked.add(link);
    }
    return false;
  }

  private healthy(link: L): boolean {
    return (link.pausedUntil ?? 0) <= Date.now() && link.closed !== true && this.usable(link);
  }

  private forget(link: L): void {
    this.parked.delete(link);
    if (this.links.get(link.host) !== link) return;
    this.links.delete(link.host);
    this.engine.leave(link.host);
  }

  private start(job: QueuedJob<L>, link: L, waitedMs: number, now: number): void {
    link.inflight += 1;
    this.engine.started(link.host);
    this.options.onStart?.(waitedMs);
    job.run(link, now);
  }

  /** Region `key`'s load now into the engine (its waiting dynamic jobs, its last p99). */
  private observe(key: string, now: number): void {
    this.engine.observe(key, { queueDepth: this.waiting.waitingIn(key), p99Ms: this.latency.p99(key) }, now);
  }

  private wake(): void {
    const ms = this.options.tickMs ?? 1_000;
    if (this.ticker !== undefined || ms <= 0) return;
    this.ticker = setInterval(() => this.tick(), ms);
    this.ticker.unref();
  }

  private sleep(): void {
    if (this.ticker !== undefined) clearInterval(this.ticker);
    this.ticker = undefined;
  }
}
