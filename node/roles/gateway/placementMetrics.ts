/**
 * Placement metrics at the gateway (D69): `edge_placement_spilled{site,region}` is 1 while a dynamic site is
 * spilled away from a region (its jobs go to the next region), and absent otherwise: only spilled pairs are
 * exported, so the cardinality is bounded by the dynamic sites the configuration lists times the regions of the
 * gateway's hosts (the site is a configured site id, the region a key some linked host signed). Also each
 * region's queue depth and p99 as the spill state machine sees them (`edge_placement_region_*{region}`).
 */
import { Gauge, type Registry } from "prom-client";

import type { JobQueue, Slot } from "./queue";

export function createPlacementMetrics<L extends Slot>(
  registry: Registry,
  queue: Pick<JobQueue<L>, "placement">,
): void {
  const registers = [registry];
  new Gauge({
    name: "edge_placement_spilled",
    help: "1 while a dynamic site's jobs spill away from a region (queue depth or p99 over its thresholds)",
    labelNames: ["site", "region"] as const,
    registers,
    collect() {
      this.reset();
      for (const { site, region } of queue.placement().spilled) this.set({ site, region }, 1);
    },
  });
  new Gauge({
    name: "edge_placement_region_queue_depth",
    help: "dynamic sites' jobs waiting for a region's hosts at this gateway, by the hosts' region",
    labelNames: ["region"] as const,
    registers,
    collect() {
      this.reset();
      for (const [region, r] of Object.entries(queue.placement().regions)) this.set({ region }, r.waiting);
    },
  });
  new Gauge({
    name: "edge_placement_region_p99_seconds",
    help: "p99 time on the host of a region's recent jobs (last 10 s) at this gateway, by the hosts' region",
    labelNames: ["region"] as const,
    registers,
    collect() {
      this.reset();
      for (const [region, r] of Object.entries(queue.placement().regions)) this.set({ region }, r.p99Ms / 1000);
    },
  });
}
