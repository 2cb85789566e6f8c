/**
 * Content delivery metrics at the gateway (D44). Labels are bounded: `site` is a site id from the gateway's
 * configuration (never request input: an unknown Host header is counted under the refusal's code), `host` a
 * linked host's device address (hosts the chain admits), `cache`, `status`, `code` and `kind` small fixed sets.
 */
import { Counter, Histogram, type Registry } from "prom-client";

import { stateGauge } from "../../../offchain/common/service/metrics";

export interface CdnMetrics {
  requests: Counter<"site" | "status" | "cache">;
  egressBytes: Counter<"site">;
  duration: Histogram<"site">;
  hostJobs: Counter<"host" | "cache">;
  hostEgressBytes: Counter<"host">;
  hostDuration: Histogram<"host">;
  queueWait: Histogram;
  retries: Counter;
  refused: Counter<"code">;
  /** Requests the network's blocklist refused, by what matched (blocklist.ts). */
  blocked: Counter<"kind">;
  checks: Counter<"outcome">;
  /** Records one request a host returned. */
  served(site: string, host: string, status: number, cache: string, bytes: number, seconds: number): void;
}

const CACHE = new Set(["hit", "miss", "revalidated", "bypass"]);

export function createCdnMetrics(
  registry: Registry,
  source: { queueDepth(): number; linkedHosts(): number; capacity(): number },
): CdnMetrics {
  const registers = [registry];
  stateGauge(registry, "edge_cdn_queue_depth", "jobs waiting in the gateway's queue for a host", source.queueDepth);
  stateGauge(registry, "edge_cdn_linked_hosts", "hosts with an open link to this gateway", source.linkedHosts);
  stateGauge(registry, "edge_cdn_host_capacity", "jobs the linked hosts run at once, summed", source.capacity);
  const metrics = {
    requests: new Counter({
      name: "edge_cdn_requests_total",
      help: "site requests a host returned, by site, status class and cache outcome",
      labelNames: ["site", "status", "cache"] as const,
      registers,
    }),
    egressBytes: new Counter({
      name: "edge_cdn_egress_bytes_total",
      help: "response body bytes sent to clients, by site",
      labelNames: ["site"] as const,
      registers,
    }),
    duration: new Histogram({
      name: "edge_cdn_request_duration_seconds",
      help: "from the request's arrival to its response's end, by site",
      labelNames: ["site"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    hostJobs: new Counter({
      name: "edge_cdn_host_jobs_total",
      help: "site requests each host returned whole, by cache outcome",
      labelNames: ["host", "cache"] as const,
      registers,
    }),
    hostEgressBytes: new Counter({
      name: "edge_cdn_host_egress_bytes_total",
      help: "response body bytes each host's jobs sent to clients",
      labelNames: ["host"] as const,
      registers,
    }),
    hostDuration: new Histogram({
      name: "edge_cdn_host_request_duration_seconds",
      help: "from the request's arrival to its response's end, by the host that served it",
      labelNames: ["host"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    queueWait: new Histogram({
      name: "edge_cdn_queue_wait_seconds",
      help: "how long jobs waited for a host's free slot",
      buckets: [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
      registers,
    }),
    retries: new Counter({
      name: "edge_cdn_retries_total",
      help: "jobs retried on another host after their host failed before answering",
      registers,
    }),
    refused: new Counter({
      name: "edge_cdn_refused_total",
      help: "site requests answered with an error by the gateway, by error code",
      labelNames: ["code"] as const,
      registers,
    }),
    blocked: new Counter({
      name: "edge_cdn_blocked_total",
      help: "site requests refused by the network's blocklist, by what matched (ip or path)",
      labelNames: ["kind"] as const,
      registers,
    }),
    checks: new Counter({
      name: "edge_cdn_content_checks_total",
      help: "sampled responses checked against the origin, by outcome",
      labelNames: ["outcome"] as const,
      registers,
    }),
  };
  return {
    ...metrics,
    served(site, host, status, cache, bytes, seconds) {
      const klass = status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
      const outcome = CACHE.has(cache) ? cache : "none";
      metrics.requests.inc({ site, status: klass, cache: outcome });
      metrics.duration.observe({ site }, seconds);
      metrics.hostJobs.inc({ host, cache: outcome });
      metrics.hostDuration.observe({ host }, seconds);
      if (bytes > 0) {
        metrics.egressBytes.inc({ site }, bytes);
        metrics.hostEgressBytes.inc({ host }, bytes);
      }
    },
  };
}
