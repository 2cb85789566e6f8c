/** Billing's Prometheus metrics, on the service's one registry (table in docs/billing.md). */
import { Counter, type Registry } from "prom-client";

import { stateGauge } from "../common/service/metrics";

/** What the state gauges read when scraped. */
export interface BillingState {
  /** Index of the latest closed period, -1 before the first. */
  lastClosedPeriod(): number;
  pendingTransactions(): number;
  unsettledPeriods(): number;
  /** Seconds since the chain view last synced (NaN before the first sync). */
  stalenessSeconds(): number;
  sessions(): number;
}

export type BillingMetrics = ReturnType<typeof createBillingMetrics>;

export function createBillingMetrics(registry: Registry, state: BillingState) {
  const gauges: Array<[name: string, help: string, read: () => number]> = [
    ["edge_billing_last_closed_period", "Index of the latest period closed into bills", state.lastClosedPeriod],
    ["edge_billing_pending_transactions", "Settlement transactions sent and not yet mined", state.pendingTransactions],
    ["edge_billing_unsettled_periods", "Closed periods with bills still to settle", state.unsettledPeriods],
    ["edge_billing_sync_staleness_seconds", "Seconds since the chain view last synced", state.stalenessSeconds],
    ["edge_billing_sessions", "Customer sessions (bearer tokens) alive", state.sessions],
  ];
  for (const [name, help, read] of gauges) stateGauge(registry, name, help, read);
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  return {
    records: counter("edge_billing_records_total", "Usage records by outcome", ["outcome"]),
    batches: counter("edge_billing_usage_batches_total", "Usage batches by outcome", ["outcome"]),
    bills: counter("edge_billing_bills_total", "Bills produced, by status at close", ["status"]),
    settled: counter("edge_billing_bills_settled_total", "Bills settled on-chain"),
    charged: counter("edge_billing_charged_tokens_total", "Tokens charged by settled bills"),
    shortfall: counter("edge_billing_shortfall_tokens_total", "Tokens of settled bills that balances could not cover"),
    overCapacity: counter(
      "edge_billing_bills_over_capacity_total",
      "Bills above the biller's billing capacity on PaymentVault, marked unsettleable (H1)",
    ),
    logins: counter("edge_billing_logins_total", "Customer sign-ins by outcome", ["outcome"]),
  };
}
