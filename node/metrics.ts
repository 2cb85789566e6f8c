/**
 * The daemon's Prometheus metrics (prom-client, one registry per node). Gauges that mirror state read it at
 * scrape time (`collect`), so they can never drift from what /status says.
 */
import { Counter, Histogram, Registry } from "prom-client";

import { stateGauge } from "../offchain/common/service/metrics";

export interface MetricsSource {
  admitted(): boolean;
  draining(): boolean;
  stale(): boolean;
  stakeAmount(): bigint;
  head(): bigint | null;
  cursor(): bigint | null;
  stalenessSeconds(): number | null;
  inFlight(): number;
  outboxPending(): number;
  outboxConflicts(): number;
  routableHosts(): number;
  reorgs(): number;
  consecutiveSyncErrors(): number;
}

export interface NodeMetrics {
  registry: Registry;
  jobs: Counter<"outcome">;
  evictionDelay: Histogram;
  admissionChanges: Counter<"to">;
  viewMismatches: Counter;
}

const toNumber = (value: bigint | null) => (value === null ? NaN : Number(value));

export function createMetrics(source: MetricsSource, role: string): NodeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  const gauge = (name: string, help: string, read: () => number) => stateGauge(registry, name, help, read);
  gauge("edge_node_admitted", "1 when the node's device is admitted by the chain and the node serves", () =>
    source.admitted() ? 1 : 0,
  );
  gauge("edge_node_draining", "1 while the node drains (takes no new work)", () => (source.draining() ? 1 : 0));
  gauge("edge_node_view_stale", "1 when the chain view has not synced within the staleness bound", () =>
    source.stale() ? 1 : 0,
  );
  // Token base units can exceed 2^53; the gauge is for dashboards, /status has the exact value.
  gauge("edge_node_stake_amount", "The node's stake amount in token base units (approximate)", () =>
    Number(source.stakeAmount()),
  );
  gauge("edge_node_sync_head_block", "The chain head the view last saw", () => toNumber(source.head()));
  gauge("edge_node_sync_cursor_block", "The last block the view applied", () => toNumber(source.cursor()));
  gauge("edge_node_sync_lag_blocks", "Head minus cursor", () => {
    const head = source.head();
    const cursor = source.cursor();
    return head === null || cursor === null ? NaN : Number(head - cursor);
  });
  gauge(
    "edge_node_sync_staleness_seconds",
    "Seconds since the view last synced to its target",
    () => source.stalenessSeconds() ?? NaN,
  );
  gauge("edge_node_jobs_in_flight", "Jobs being executed or dispatched now", () => source.inFlight());
  gauge("edge_node_outbox_pending", "Reports, heartbeats and usage batches waiting to be delivered", () =>
    source.outboxPending(),
  );
  gauge(
    "edge_node_outbox_conflicts",
    "Outbox items their receiver answered with a conflict: kept undelivered, they need a person",
    () => source.outboxConflicts(),
  );
  gauge("edge_node_routable_hosts", "Gateway: admitted, registered hosts jobs can go to", () => source.routableHosts());
  // A few process figures by hand: prom-client's default set includes gauges named *_total, which
  // `promtool check metrics` rejects.
  gauge("edge_node_process_resident_memory_bytes", "Resident memory of the process", () => process.memoryUsage().rss);
  gauge("edge_node_process_heap_used_bytes", "V8 heap in use", () => process.memoryUsage().heapUsed);
  gauge("edge_node_process_uptime_seconds", "Seconds since the process started", () => process.uptime());
  gauge("edge_node_view_reorgs", "Chain reorganisations the view has repaired since start", () => source.reorgs());
  gauge("edge_node_sync_consecutive_errors", "Chain view sync steps failed in a row (0: healthy)", () =>
    source.consecutiveSyncErrors(),
  );
  return {
    registry,
    jobs: new Counter({
      name: "edge_node_jobs_total",
      help: "Jobs by outcome",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    evictionDelay: new Histogram({
      name: "edge_node_eviction_delay_seconds",
      help: "From the block in which the view saw the stake change to the node evicting itself",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    admissionChanges: new Counter({
      name: "edge_node_admission_changes_total",
      help: "Admission transitions by new state",
      labelNames: ["to"],
      registers: [registry],
    }),
    viewMismatches: new Counter({
      name: "edge_node_view_mismatches_total",
      help: "Times the view's admission disagreed with the contract's deviceStatus at the same block",
      registers: [registry],
    }),
  };
}
