/** The oracle's Prometheus metrics, on the service's one registry. */
import { Counter, Histogram, type Registry } from "prom-client";

import { stateGauge } from "../common/service/metrics";

/** What the state gauges read when scraped. */
export interface OracleState {
  lastClosedEpoch(): number;
  lastPostedEpoch(): number;
  pendingTransactions(): number;
  relayPending(): number;
  /** Seconds since the chain view last synced (NaN before the first sync). */
  stalenessSeconds(): number;
}

export type OracleMetrics = ReturnType<typeof createOracleMetrics>;

export function createOracleMetrics(registry: Registry, state: OracleState) {
  stateGauge(registry, "edge_oracle_last_closed_epoch", "The latest epoch closed and scored", state.lastClosedEpoch);
  stateGauge(
    registry,
    "edge_oracle_last_posted_epoch",
    "The latest epoch whose scores are all on-chain",
    state.lastPostedEpoch,
  );
  stateGauge(
    registry,
    "edge_oracle_pending_transactions",
    "Transactions sent and not yet mined",
    state.pendingTransactions,
  );
  stateGauge(
    registry,
    "edge_oracle_relay_pending",
    "Reports and heartbeats waiting to be relayed to peers",
    state.relayPending,
  );
  stateGauge(
    registry,
    "edge_oracle_sync_staleness_seconds",
    "Seconds since the chain view last synced",
    state.stalenessSeconds,
  );
  return {
    reports: new Counter({
      name: "edge_oracle_reports_total",
      help: "Job reports by outcome",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    heartbeats: new Counter({
      name: "edge_oracle_heartbeats_total",
      help: "Heartbeats by outcome",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    postingDuration: new Histogram({
      name: "edge_oracle_posting_duration_seconds",
      help: "From closing an epoch to all its scores being on-chain",
      buckets: [1, 5, 10, 30, 60, 300, 900, 3600],
      registers: [registry],
    }),
  };
}
