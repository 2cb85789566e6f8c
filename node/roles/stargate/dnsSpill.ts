/**
 * Dynamic sites' spill between regions in Edge DNS answers (issue 20, D71). A dynamic site's client is sent to the
 * nearest region's gateways (its own, then by the configuration's latency table, dnsRegions.ts) until that region's
 * gateways pass the site's thresholds (queue depth or p99), then to the next region's, and back once the region's
 * load stayed below `returnBelow` x both thresholds for `holdMs`: the placement engine's state machine
 * (node/placement/spill.ts), one per (site, region), fed here instead of by a gateway's queue.
 *
 * A region's load is the lower median, over its serving gateways that reported one, of what each reported with its
 * last health check (x-edge-load, node/loadReport.ts): jobs waiting in its queue and the p99 of its recent requests,
 * each taken apart. The median, not the mean (R20-1): the reports are unsigned and unchecked, so with a mean one
 * gateway reporting 10^9 spilled its whole region, moving every other gateway's clients; with the lower median a
 * region is over only when more than half of its reporting gateways are over. A region none of whose gateways
 * reported is observed idle (its gateways are healthy by the stargates' majority,
 * else they would not be served). Observations run on a timer (`observe`, every second by default), never per query;
 * a query walks the site's regions in order and reads one state each (O(regions)).
 */
import type { Address } from "viem";

import { type Region, regionKey } from "../../../offchain/common/protocol/regions";
import type { LoadReport } from "../../loadReport";
import { type CompiledDynamic, SpillTracker } from "../../placement";

/** A serving gateway as the spill needs it (dnsIndex.ts GatewayRegion). */
export interface GatewayRegion {
  device: string;
  region?: Region;
}

/** The lower median of `values` (0 when empty): more than half of them are at or above it. */
function lowerMedian(values: number[]): number {
  if (values.length === 0) return 0;
  values.sort((a, b) => a - b);
  return values[(values.length - 1) >> 1];
}

/** Spilled (site, region) pairs listed by status at most. */
const MAX_LISTED = 100;

export class DnsSpill {
  readonly tracker = new SpillTracker();
  /** Dynamic sites asked about (the configuration's, pruned by `retain`). */
  private readonly sites = new Set<string>();
  private observations = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Observes `serving()` (undefined: nothing to observe yet) every `everyMs` until `stop`. */
  start(
    everyMs: number,
    serving: () => readonly GatewayRegion[] | undefined,
    loadOf: ((device: Address) => LoadReport | undefined) | undefined,
  ): void {
    if (!loadOf || this.timer) return;
    this.timer = setInterval(() => {
      const gateways = serving();
      if (gateways) this.observe(gateways, loadOf);
    }, everyMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Feeds each region's load: the lower median of its serving gateways' last reports (`loadOf`), R20-1. */
  observe(serving: readonly GatewayRegion[], loadOf: (device: Address) => LoadReport | undefined): void {
    const reports = new Map<string, { queueDepth: number[]; p99Ms: number[] }>();
    for (const g of serving) {
      if (!g.region) continue;
      const key = regionKey(g.region);
      let r = reports.get(key);
      if (!r) reports.set(key, (r = { queueDepth: [], p99Ms: [] }));
      const load = loadOf(g.device as Address);
      if (!load) continue;
      r.queueDepth.push(load.queueDepth);
      r.p99Ms.push(load.p99Ms);
    }
    const now = this.now();
    for (const [key, r] of reports) {
      this.tracker.observe(key, { queueDepth: lowerMedian(r.queueDepth), p99Ms: lowerMedian(r.p99Ms) }, now);
    }
    this.observations += 1;
  }

  /**
   * The region a dynamic site's client is answered from: the first of `order` (nearest first) the site is not
   * spilled from; when it is spilled from all, the nearest.
   */
  pick(site: string, order: readonly string[], t: CompiledDynamic): string {
    const now = this.now();
    this.sites.add(site);
    const states = this.tracker.of(site);
    for (const key of order) if (!this.tracker.spilled(site, key, t, now, states)) return key;
    return order[0];
  }

  /** Forgets the sites no longer in the configuration. */
  retain(sites: ReadonlySet<string>): void {
    for (const site of this.sites) {
      if (sites.has(site)) continue;
      this.tracker.forget(site);
      this.sites.delete(site);
    }
  }

  status(): { observations: number; spilled: { site: string; region: string; since: number }[] } {
    const spilled: { site: string; region: string; since: number }[] = [];
    for (const site of this.sites) {
      for (const s of this.tracker.spilledRegions(site)) {
        if (spilled.length < MAX_LISTED) spilled.push({ site, ...s });
      }
    }
    return { observations: this.observations, spilled };
  }
}
