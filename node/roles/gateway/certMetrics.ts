/**
 * Certificate metrics at the gateway (D65). Labels are bounded: `outcome` small fixed sets, `domain` a hostname of
 * one of the gateway's own sites holding a loaded certificate (never request input).
 */
import { Counter, Gauge, type Registry } from "prom-client";

export interface CertMetrics {
  /**
   * /.well-known/acme-challenge/ requests by outcome (served, not_found, malformed, unknown_host, limited, busy,
   * failed, disabled).
   */
  challenges: Counter<"outcome">;
  /** TLS handshakes at the HTTPS front door by outcome (ok, unknown_name, failed). */
  handshakes: Counter<"outcome">;
  /** ACME orders this gateway placed, by outcome (issued, failed, skipped). */
  orders: Counter<"outcome">;
  /** Certificates from the service that would not load (a key that does not open or match, a bad chain). */
  loadFailures: Counter;
}

export function createCertMetrics(
  registry: Registry,
  source: { certificates(): { domain: string; notAfter: number }[] },
): CertMetrics {
  const registers = [registry];
  new Gauge({
    name: "edge_gateway_tls_certificates",
    help: "certificates loaded for the HTTPS front door",
    registers,
    collect() {
      this.set(source.certificates().length);
    },
  });
  new Gauge({
    name: "edge_gateway_cert_days_to_expiry",
    help: "days until each loaded certificate expires, by domain",
    labelNames: ["domain"] as const,
    registers,
    collect() {
      this.reset();
      const now = Date.now();
      for (const { domain, notAfter } of source.certificates())
        this.set({ domain }, Math.round(((notAfter - now) / 86_400_000) * 1000) / 1000);
    },
  });
  return {
    challenges: new Counter({
      name: "edge_gateway_acme_challenges_total",
      help: "ACME HTTP-01 challenge requests answered at the front door, by outcome",
      labelNames: ["outcome"] as const,
      registers,
    }),
    handshakes: new Counter({
      name: "edge_gateway_tls_handshakes_total",
      help: "TLS handshakes at the HTTPS front door, by outcome",
      labelNames: ["outcome"] as const,
      registers,
    }),
    orders: new Counter({
      name: "edge_gateway_acme_orders_total",
      help: "ACME orders this gateway placed, by outcome",
      labelNames: ["outcome"] as const,
      registers,
    }),
    loadFailures: new Counter({
      name: "edge_gateway_cert_load_failures_total",
      help: "certificates from the certificate service that would not load (key or chain refused)",
      registers,
    }),
  };
}
