/**
 * Prometheus metrics of a host's fragment store (fragments.ts), on the node's registry. The gauges read the store
 * when scraped, so they always equal /status's host.storage; the corrupt counter catches up with the store's
 * count at each scrape (a counter cannot be set, and the store counts whether or not anyone scrapes).
 */
import { Counter, type Registry } from "prom-client";

import { stateGauge } from "../../../offchain/common/service/metrics";
import type { FragmentStats } from "./fragments";

export function createFragmentMetrics(registry: Registry, stats: () => FragmentStats): void {
  stateGauge(
    registry,
    "edge_host_storage_bytes",
    "Bytes of Edge Storage fragments this host holds",
    () => stats().bytes,
  );
  stateGauge(
    registry,
    "edge_host_storage_fragments",
    "Edge Storage fragments this host holds",
    () => stats().fragments,
  );
  stateGauge(
    registry,
    "edge_host_storage_budget_bytes",
    "The fragment store's byte budget (--storage-memory-mb)",
    () => stats().budgetBytes,
  );
  let counted = 0;
  new Counter({
    name: "edge_host_storage_corrupt_total",
    help: "Fragments found not matching their sha256 (in memory or on disk) since start",
    registers: [registry],
    collect() {
      const now = stats().corrupt;
      if (now > counted) this.inc(now - counted);
      counted = now;
    },
  });
}
