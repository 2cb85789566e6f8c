/**
 * The dynamic policy's spill state machine, one per (site, region) (D69). A region's load is what the gateway
 * measured last (`observe`: jobs waiting for its hosts, p99 job latency); time is passed in, there are no timers.
 *
 *   home ──(queue depth > queueDepth or p99 > p99Ms, seen by a decision)──> spilled
 *   spilled ──(both < returnBelow x threshold continuously for holdMs, seen by a decision or `settle`)──> home
 *
 * "Continuously" counts from the first observation below after the last one that was not: every observation of a
 * region updates its spilled states (`belowSince`), so a single bad sample restarts the hold. A site therefore
 * stays spilled at least holdMs, and returns at the first decision after the hold: it does not flap. Only spilled
 * pairs are kept (home is the absence of a state), so an observation costs O(sites spilled from that region) and a
 * check O(1).
 */
import type { CompiledDynamic } from "./policy";

/** A region's load as the gateway measured it. */
export interface RegionLoad {
  /** Jobs waiting for a host of the region. */
  queueDepth: number;
  /** p99 latency of the region's recent jobs (ms). */
  p99Ms: number;
}

export interface SpillState {
  readonly site: string;
  readonly region: string;
  thresholds: CompiledDynamic;
  /** When the region's load was first seen below the return level, with no sample above since; else undefined. */
  belowSince: number | undefined;
  /** When the site spilled away from the region. */
  readonly since: number;
}

const IDLE: RegionLoad = { queueDepth: 0, p99Ms: 0 };

export const overThreshold = (load: RegionLoad, t: CompiledDynamic): boolean =>
  load.queueDepth > t.queueDepth || load.p99Ms > t.p99Ms;
export const belowReturn = (load: RegionLoad, t: CompiledDynamic): boolean =>
  load.queueDepth < t.returnBelow * t.queueDepth && load.p99Ms < t.returnBelow * t.p99Ms;

export class SpillTracker {
  private readonly loads = new Map<string, RegionLoad>();
  /** site -> region key -> state (spilled pairs only). */
  private readonly states = new Map<string, Map<string, SpillState>>();
  /** region key -> its spilled pairs, for observations. */
  private readonly byRegion = new Map<string, Set<SpillState>>();

  /** The load of region `key` measured at `now` (ms). */
  observe(key: string, load: RegionLoad, now: number): void {
    if (!(load.queueDepth >= 0 && load.p99Ms >= 0)) throw new RangeError("a region's load is >= 0");
    this.loads.set(key, { queueDepth: load.queueDepth, p99Ms: load.p99Ms });
    const spilled = this.byRegion.get(key);
    if (spilled === undefined) return;
    for (const state of spilled) {
      if (!belowReturn(load, state.thresholds)) state.belowSince = undefined;
      else state.belowSince ??= now;
    }
  }

  load(key: string): RegionLoad {
    return this.loads.get(key) ?? IDLE;
  }

  /** The site's spilled states (undefined: none), to pass to `spilled` for each region of one decision. */
  of(site: string): ReadonlyMap<string, SpillState> | undefined {
    return this.states.get(site);
  }

  /**
   * Whether `site` is spilled away from region `key` at `now` under `t`; moves its state machine. `states`:
   * `of(site)` fetched once per decision (one lookup fewer per region walked).
   */
  spilled(
    site: string,
    key: string,
    t: CompiledDynamic,
    now: number,
    states: ReadonlyMap<string, SpillState> | undefined = this.states.get(site),
  ): boolean {
    const load = this.loads.get(key) ?? IDLE;
    const state = states?.get(key);
    if (state !== undefined) {
      if (state.thresholds !== t) {
        // The site's policy changed: its hold restarts from what is measured now under the new thresholds.
        state.thresholds = t;
        state.belowSince = belowReturn(load, t) ? now : undefined;
      }
      if (state.belowSince !== undefined && now - state.belowSince >= t.holdMs && belowReturn(load, t)) {
        this.drop(state);
        return false;
      }
      return true;
    }
    if (!overThreshold(load, t)) return false;
    this.add({ site, region: key, thresholds: t, belowSince: undefined, since: now });
    return true;
  }

  /** The regions `site` is spilled away from now, with when it spilled (for metrics and tests). */
  spilledRegions(site: string): { region: string; since: number }[] {
    return [...(this.states.get(site)?.values() ?? [])].map((s) => ({ region: s.region, since: s.since }));
  }

  /** Every spilled (site, region) pair now, with when it spilled (the gateway's gauge and /status). */
  *all(): IterableIterator<{ site: string; region: string; since: number }> {
    for (const perSite of this.states.values())
      for (const s of perSite.values()) yield { site: s.site, region: s.region, since: s.since };
  }

  /**
   * Returns every pair whose hold has passed at `now` (below the return level for holdMs, under the thresholds it
   * was last seen with), as a decision reaching it would: the gateway calls it on its tick, so a site with no
   * jobs any more does not stay shown as spilled. O(spilled pairs).
   */
  settle(now: number): void {
    for (const perSite of [...this.states.values()])
      for (const s of [...perSite.values()]) {
        const t = s.thresholds;
        if (s.belowSince !== undefined && now - s.belowSince >= t.holdMs && belowReturn(this.load(s.region), t))
          this.drop(s);
      }
  }

  /** Forgets a site (removed from the configuration). */
  forget(site: string): void {
    for (const state of [...(this.states.get(site)?.values() ?? [])]) this.drop(state);
  }

  private add(state: SpillState): void {
    let perSite = this.states.get(state.site);
    if (perSite === undefined) this.states.set(state.site, (perSite = new Map()));
    perSite.set(state.region, state);
    let perRegion = this.byRegion.get(state.region);
    if (perRegion === undefined) this.byRegion.set(state.region, (perRegion = new Set()));
    perRegion.add(state);
  }

  private drop(state: SpillState): void {
    const perSite = this.states.get(state.site);
    perSite?.delete(state.region);
    if (perSite?.size === 0) this.states.delete(state.site);
    const perRegion = this.byRegion.get(state.region);
    perRegion?.delete(state);
    if (perRegion?.size === 0) this.byRegion.delete(state.region);
  }
}
