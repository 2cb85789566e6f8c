/**
 * The placement engine (D69): which host takes a site's next job, under the site's placement policy. Shared by
 * the gateway's dispatch (and, for gateways, by the stargates' DNS answers). Pure: no timers and no I/O, time is
 * passed in; it imports offchain/common only.
 *
 * `decide(site, origin, now)` answers one of:
 *   - `{ host, region }`: start the job there, then call `started(host)` (and `finished(host)` when it ends);
 *   - `{ wait: true }`: eligible hosts exist but none has a free slot (or, dynamic, none in the region the site is
 *     routed to): queue the job; re-ask when a slot frees (`takes` says whether a freed host suits the site);
 *   - `{ refuse: true, code, message }`: no eligible host at all (EDGE_NODE_NO_ELIGIBLE_HOST; without a policy,
 *     EDGE_NODE_NO_HOSTS): fail at once.
 * Modes: no policy: the least loaded host anywhere (undeclared included). Static: the least loaded host in the
 * listed regions (any declared region when only gateways are listed). Enforced: the least loaded host of the
 * regions in the listed countries, never another. Dynamic: regions in order (the origin's region first, then the
 * others by the latency table, lowest first; regions missing from the table after, by key); the first region with a
 * healthy host whose spill state (spill.ts) is home takes the job (its least loaded free host, else wait); if every
 * such region is spilled, the first in order with a free host takes it.
 * "Least loaded" is the most free slots (capacity - inflight), ties to the host that started a job least recently.
 *
 * Complexity: a decision reads one heap top (O(1)) per eligible region: O(R) with R the regions the policy admits
 * (enforced: O(countries listed + their regions); dynamic: the regions walked until one is chosen, the order cached
 * per origin and rebuilt in O(R log R) only when a region appears or the latency table changes). Host events
 * (join, leave, health, capacity, started, finished) are O(log n) in the region's hosts (hostIndex.ts). Region
 * load observations are O(sites spilled from that region). Nothing is O(hosts) per decision.
 */
import type { Placement } from "../../offchain/common/protocol/placement";
import { type Region, regionKey } from "../../offchain/common/protocol/regions";
import { better } from "./heap";
import { type HostEntry, HostIndex, type HostInfo, type RegionBucket } from "./hostIndex";
import { type CompiledPolicy, type Refusal, allows, compilePolicy } from "./policy";
import { type RegionLoad, SpillTracker } from "./spill";

/** A site as the engine needs it: its id (the spill state's key) and its policy. */
export interface SiteRef {
  readonly name: string;
  readonly placement?: Placement;
}

export interface Placed {
  host: string;
  /** The host's region key ("" when it declared none). */
  region: string;
}
export interface Wait {
  wait: true;
  message: string;
  /** Dynamic: the region the site is routed to, whose hosts the job waits for (its queue depth counts it). */
  region?: string;
}
export type Decision = Placed | Wait | Refusal;

export class PlacementEngine {
  readonly hosts = new HostIndex();
  readonly spill = new SpillTracker();
  private latency = new Map<string, number>();
  private readonly orders = new Map<string, RegionBucket[]>();
  private ordersVersion = 0;
  // The running choice of one decision (reset by each; no allocation per region).
  private best: HostEntry | undefined;
  private exists = 0;
  // The last origin's key (a gateway passes its own region object each time: no string built per decision).
  private lastOrigin: Region | undefined;
  private lastOriginKey = "";

  /** Measured latency from this gateway to each region (region key -> ms); reorders dynamic sites' regions. */
  setLatency(table: Readonly<Record<string, number>> | ReadonlyMap<string, number>): void {
    const entries = table instanceof Map ? [...table] : Object.entries(table);
    this.latency = new Map(entries.filter(([, ms]) => Number.isFinite(ms) && ms >= 0));
    this.orders.clear();
  }

  join(host: string, info: HostInfo): void {
    this.hosts.join(host, info);
  }
  leave(host: string): void {
    this.hosts.leave(host);
  }
  setHealthy(host: string, healthy: boolean): void {
    this.hosts.setHealthy(host, healthy);
  }
  setCapacity(host: string, capacity: number): void {
    this.hosts.setCapacity(host, capacity);
  }
  started(host: string): void {
    this.hosts.started(host);
  }
  finished(host: string): void {
    this.hosts.finished(host);
  }
  /** Region `key`'s load now (jobs waiting for its hosts, p99 of its jobs). */
  observe(key: string, load: RegionLoad, now: number): void {
    this.spill.observe(key, load, now);
  }

  /** Where `site`'s next job goes, for a gateway in `origin` at `now`; `avoid`: a host not to use (a retry's). */
  decide(site: SiteRef, origin: Region | undefined, now: number, avoid?: string): Decision {
    const c = compilePolicy(site.placement);
    const skip = avoid === undefined ? undefined : this.hosts.host(avoid);
    this.best = undefined;
    this.exists = 0;
    switch (c.mode) {
      case "any":
        for (const bucket of this.hosts.allDeclared()) this.consider(bucket, avoid, skip);
        this.consider(this.hosts.undeclared, avoid, skip);
        break;
      case "static":
        if (c.regions.length === 0) for (const bucket of this.hosts.allDeclared()) this.consider(bucket, avoid, skip);
        for (const key of c.regions) {
          const bucket = this.hosts.region(key);
          if (bucket) this.consider(bucket, avoid, skip);
        }
        break;
      case "enforced":
        for (const country of c.countries) {
          const buckets = this.hosts.country(country);
          if (buckets) for (const bucket of buckets) this.consider(bucket, avoid, skip);
        }
        break;
      case "dynamic":
        return this.dynamic(site.name, c, origin, now, avoid, skip);
    }
    return this.outcome(c, avoid);
  }

  /**
   * Whether a slot freed on `host` suits a job of `site` waiting now: its region is allowed (and, dynamic, is the
   * region the site is routed to). The queue asks it for waiting jobs when a host finishes one.
   */
  takes(site: SiteRef, host: string, origin: Region | undefined, now: number): boolean {
    const entry = this.hosts.host(host);
    if (entry === undefined) return false;
    const c = compilePolicy(site.placement);
    if (c.mode !== "dynamic") return allows(c, entry.bucket.region, host, "host");
    const d = this.decide(site, origin, now);
    return "host" in d && this.hosts.host(d.host)?.bucket === entry.bucket;
  }

  private consider(bucket: RegionBucket, avoid: string | undefined, skip: HostEntry | undefined): void {
    this.exists += bucket.hosts - (skip?.bucket === bucket ? 1 : 0);
    const top = bucket.free.topExcept(avoid);
    if (top !== undefined && (this.best === undefined || better(top, this.best))) this.best = top;
  }

  private outcome(c: CompiledPolicy, avoid: string | undefined): Decision {
    if (this.best !== undefined) return { host: this.best.id, region: this.best.bucket.key };
    const other = avoid === undefined ? "" : " other than the one that failed";
    if (this.exists > 0)
      return { wait: true, message: `every host${other} the site may use (${c.label}) is busy or unhealthy` };
    if (c.mode === "any")
      return { refuse: true, code: "EDGE_NODE_NO_HOSTS", message: `no admitted host${other} is linked` };
    return {
      refuse: true,
      code: "EDGE_NODE_NO_ELIGIBLE_HOST",
      message: `no host${other} the site's placement allows (${c.label}) is linked to this gateway`,
    };
  }

  private dynamic(
    site: string,
    c: CompiledPolicy,
    origin: Region | undefined,
    now: number,
    avoid: string | undefined,
    skip: HostEntry | undefined,
  ): Decision {
    const t = c.dynamic!;
    let fallback: HostEntry | undefined;
    // Fetched once: the walk below may add states (a new Map for the site), which `spilled` then looks up itself.
    let states = this.spill.of(site);
    for (const bucket of this.order(origin)) {
      const mine = skip?.bucket === bucket ? 1 : 0;
      this.exists += bucket.hosts - mine;
      if (bucket.healthy - (mine && skip!.healthy ? 1 : 0) <= 0) continue;
      const top = bucket.free.topExcept(avoid);
      if (this.spill.spilled(site, bucket.key, t, now, states)) {
        states ??= this.spill.of(site);
        fallback ??= top;
        continue;
      }
      if (top !== undefined) return { host: top.id, region: bucket.key };
      const other = avoid === undefined ? "" : " other than the one that failed";
      const message = `every host${other} in ${bucket.key}, where the site is routed, is busy`;
      return { wait: true, message, region: bucket.key };
    }
    this.best = fallback;
    return this.outcome(c, avoid);
  }

  /** Declared regions for a gateway in `origin`: its own first, then by latency (unmeasured last, by key). */
  private order(origin: Region | undefined): readonly RegionBucket[] {
    if (this.ordersVersion !== this.hosts.version) {
      this.orders.clear();
      this.ordersVersion = this.hosts.version;
    }
    if (origin !== this.lastOrigin) {
      this.lastOrigin = origin;
      this.lastOriginKey = origin ? regionKey(origin) : "";
    }
    const key = this.lastOriginKey;
    let order = this.orders.get(key);
    if (order === undefined) {
      const rank = (b: RegionBucket) => (b.key === key ? -1 : (this.latency.get(b.key) ?? Infinity));
      order = [...this.hosts.allDeclared()].sort((a, b) => rank(a) - rank(b) || (a.key < b.key ? -1 : 1));
      this.orders.set(key, order);
    }
    return order;
  }
}
