/** The certificate service's Prometheus metrics, on the service's one registry (docs/certificates.md). */
import { Counter, Gauge, type Registry } from "prom-client";

import { stateGauge } from "../common/service/metrics";

const DAY_MS = 86_400_000;

export interface CertsState {
  /** Live challenge responses. */
  challenges(): number;
  /** Order leases held. */
  leases(): number;
  /** Every stored certificate's domain and end of validity. */
  expiries(): Array<{ domain: string; notAfter: number }>;
  now(): number;
}

export type CertsMetrics = ReturnType<typeof createCertsMetrics>;

export function createCertsMetrics(registry: Registry, state: CertsState) {
  stateGauge(registry, "edge_cert_challenges", "Live ACME challenge responses held", state.challenges);
  stateGauge(registry, "edge_cert_leases", "Order leases held (orders under way)", state.leases);
  new Gauge({
    name: "edge_cert_days_to_expiry",
    help: "Days until each stored certificate's end of validity (negative once expired)",
    labelNames: ["domain"],
    registers: [registry],
    collect() {
      this.reset();
      const now = state.now();
      for (const { domain, notAfter } of state.expiries()) this.set({ domain }, (notAfter - now) / DAY_MS);
    },
  });
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  return {
    orders: counter("edge_cert_orders_total", "Orders ended, by outcome: issued, failed, lease_expired", ["outcome"]),
    failures: counter("edge_cert_failures_total", "Orders reported failed by their lease holder"),
    refused: counter("edge_cert_requests_refused_total", "Requests refused with a 4xx, by code", ["code"]),
  };
}
