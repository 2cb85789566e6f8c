/**
 * The gateway queue's waiting jobs (queue.ts), one FIFO per placement class (D69), so a job is never stuck
 * behind a flood of jobs that cannot run where it can:
 *
 *   - jobs without a placement (compute jobs, sites without one) share the class "any";
 *   - static and enforced sites share a class per policy (the same regions, gateways or countries: one class,
 *     whatever site they come from), since such jobs may run on exactly the same hosts;
 *   - a dynamic site is a class of its own: where its jobs go depends on its own spill state.
 *
 * A freed slot goes to the oldest waiting job (by arrival) among the classes' heads that may run on its host:
 * O(classes with jobs waiting), each looking at its first MAX_SCAN live jobs at most (only a retry's avoided host
 * makes a job of a class unfit where its head is fit). Classes are bounded by the configured sites.
 *
 * A dynamic class's jobs wait for the region its latest decision routed the site to (the engine's `Wait.region`);
 * they count in that region's queue depth (`waitingIn`), which the spill state machine observes.
 */
import type { Region } from "../../../offchain/common/protocol/regions";
import { type CompiledPolicy, type SiteRef, compilePolicy } from "../../placement";
import type { QueuedJob, Slot } from "./queueTypes";

/** Live jobs a class's scan looks at, from its head, for one its host may take (jobs avoiding the host skipped). */
export const MAX_SCAN = 16;

/** A FIFO with O(1) push and shift (an array and a moving head, compacted as it goes). */
export class Fifo<T> {
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

export interface Waiting<L extends Slot> {
  /** Dropped once the entry is gone, so an expired job holds no request or body while it waits to be shifted. */
  job: QueuedJob<L> | null;
  /** When it was queued (the queue's clock, ms). */
  readonly at: number;
  /** Arrival order over all classes. */
  readonly seq: number;
  timer: NodeJS.Timeout | undefined;
  gone: boolean;
  readonly cls: WaitClass<L>;
}

export interface WaitClass<L extends Slot> {
  readonly key: string;
  /** The site of its latest job (dynamic: the site; others: any of the sites sharing the policy). */
  site: SiteRef;
  origin: Region | undefined;
  readonly policy: CompiledPolicy;
  readonly dynamic: boolean;
  readonly fifo: Fifo<Waiting<L>>;
  /** Jobs of the class waiting (not gone). */
  live: number;
  /** Dynamic: the region key its jobs wait for (counted there); undefined for other classes. */
  region: string | undefined;
}

const ANY_SITE: SiteRef = { name: "" };
const keys = new WeakMap<CompiledPolicy, string>();
const sorted = (items: Iterable<string>) => [...items].sort().join(",");

/** The class key of a job of `site` (see the header). */
export function classKey(site: SiteRef | undefined): string {
  const policy = compilePolicy(site?.placement);
  if (policy.mode === "any") return "any";
  if (policy.mode === "dynamic") return `dynamic\0${site!.name}`;
  let key = keys.get(policy);
  if (key === undefined) {
    const parts = [policy.mode, sorted(policy.regions), sorted(policy.gateways), sorted(policy.countries)];
    keys.set(policy, (key = parts.join("\0")));
  }
  return key;
}

export class WaitLists<L extends Slot> {
  /** Classes with jobs waiting (a class is removed when its last job leaves). */
  private readonly classes = new Map<string, WaitClass<L>>();
  private readonly regions = new Map<string, number>();
  private seq = 0;
  private count = 0;

  /** `depthChanged(region)`: a region's count of dynamic jobs waiting for it changed. */
  constructor(private readonly depthChanged: (region: string) => void) {}

  /** Jobs waiting. */
  get length(): number {
    return this.count;
  }

  /** Dynamic jobs waiting for region `key`'s hosts. */
  waitingIn(key: string): number {
    return this.regions.get(key) ?? 0;
  }

  /** Regions with dynamic jobs waiting for them. */
  waitingRegions(): IterableIterator<string> {
    return this.regions.keys();
  }

  /** The classes with jobs waiting. */
  all(): IterableIterator<WaitClass<L>> {
    return this.classes.values();
  }

  /** The class a job belongs to now (a new, empty one if none waits); not stored until `push`. */
  classOf(job: QueuedJob<L>): WaitClass<L> {
    const key = classKey(job.site);
    const site = job.site ?? ANY_SITE;
    const found = this.classes.get(key);
    if (found !== undefined) {
      found.site = site;
      found.origin = job.origin;
      return found;
    }
    const policy = compilePolicy(site.placement);
    const dynamic = policy.mode === "dynamic";
    return { key, site, origin: job.origin, policy, dynamic, fifo: new Fifo(), live: 0, region: undefined };
  }

  /** Queues `job` in `cls`; `region`: for a dynamic class, the region its decision routed the site to. */
  push(cls: WaitClass<L>, job: QueuedJob<L>, at: number, region: string | undefined): Waiting<L> {
    if (region !== undefined) this.route(cls, region);
    const entry: Waiting<L> = { job, at, seq: ++this.seq, timer: undefined, gone: false, cls };
    if (cls.live === 0) this.classes.set(cls.key, cls);
    cls.fifo.push(entry);
    cls.live += 1;
    this.count += 1;
    if (cls.dynamic && cls.region !== undefined) this.bump(cls.region, 1);
    return entry;
  }

  /**
   * A dynamic class's jobs wait for `region` from now on (a later decision routed the site elsewhere): all its
   * live jobs move there (they are all counted in the class's region, when it has one).
   */
  route(cls: WaitClass<L>, region: string): void {
    if (!cls.dynamic || region === cls.region) return;
    if (cls.live > 0) {
      if (cls.region !== undefined) this.bump(cls.region, -cls.live);
      this.bump(region, cls.live);
    }
    cls.region = region;
  }

  /** Takes `entry` out (started, expired or cancelled): its timer is cleared and its job released. */
  drop(entry: Waiting<L>): void {
    if (entry.gone) return;
    entry.gone = true;
    entry.job = null;
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    const cls = entry.cls;
    cls.live -= 1;
    this.count -= 1;
    if (cls.dynamic && cls.region !== undefined) this.bump(cls.region, -1);
    if (cls.live === 0 && this.classes.get(cls.key) === cls) this.classes.delete(cls.key);
    this.shiftGone(cls);
  }

  /**
   * The first live job of `cls` not avoiding `host` among its first MAX_SCAN live ones; cancelled jobs met on
   * the way are dropped and told (`expire`).
   */
  headFor(cls: WaitClass<L>, host: string | undefined): Waiting<L> | undefined {
    this.shiftGone(cls);
    for (let i = 0, live = 0; i < cls.fifo.length && live < MAX_SCAN; i++) {
      const entry = cls.fifo.at(i)!;
      if (entry.gone) continue;
      if (this.cancel(entry)) continue;
      live += 1;
      if (host === undefined || entry.job!.avoid !== host) return entry;
    }
    return undefined;
  }

  /** The first MAX_SCAN live jobs of `cls` (cancelled ones dropped and told on the way). */
  firstLive(cls: WaitClass<L>): Waiting<L>[] {
    const out: Waiting<L>[] = [];
    this.shiftGone(cls);
    for (let i = 0; i < cls.fifo.length && out.length < MAX_SCAN; i++) {
      const entry = cls.fifo.at(i)!;
      if (entry.gone) continue;
      if (this.cancel(entry)) continue;
      out.push(entry);
    }
    return out;
  }

  /** Drops `entry` if its job was cancelled (its client left), telling it; true if so. */
  private cancel(entry: Waiting<L>): boolean {
    const job = entry.job!;
    if (!job.cancelled?.()) return false;
    this.drop(entry);
    job.expire(new Error("cancelled: nobody waits for the job"));
    return true;
  }

  private shiftGone(cls: WaitClass<L>): void {
    while (cls.fifo.length > 0 && cls.fifo.at(0)!.gone) cls.fifo.shift();
  }

  private bump(region: string, by: number): void {
    const n = (this.regions.get(region) ?? 0) + by;
    if (n > 0) this.regions.set(region, n);
    else this.regions.delete(region);
    this.depthChanged(region);
  }
}
