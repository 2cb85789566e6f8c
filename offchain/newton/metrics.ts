/** Newton's Prometheus metrics (prom-client), fed by the engine as an Observer. */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

import type { ErrorKind, Observer } from "./engine";

/** Seconds: 0.5 ms .. 30 s, dense where gateways answer. */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30,
];
const LAG_BUCKETS = [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1];

export class NewtonMetrics implements Observer {
  readonly registry = new Registry();
  private readonly duration: Histogram;
  private readonly ttfb: Histogram;
  private readonly responses: Counter;
  private readonly errors: Counter;
  private readonly droppedTotal: Counter;
  private readonly lag: Histogram;
  private readonly late: Counter;
  private readonly dnsDuration: Histogram;
  private readonly dnsProbes: Counter;
  readonly running: Gauge;

  constructor(private readonly lateAfterMs = 10) {
    const registers = [this.registry];
    this.duration = new Histogram({
      name: "newton_request_duration_seconds",
      help: "From a request's planned start to its complete response",
      labelNames: ["target"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.ttfb = new Histogram({
      name: "newton_time_to_first_byte_seconds",
      help: "From a request's planned start to its response headers",
      labelNames: ["target"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.responses = new Counter({
      name: "newton_responses_total",
      help: "Responses by status code",
      labelNames: ["target", "code"],
      registers,
    });
    this.errors = new Counter({
      name: "newton_errors_total",
      help: "Requests without a response, by kind: timeout, refused, reset, dns (a failed lookup), other",
      labelNames: ["target", "kind"],
      registers,
    });
    this.droppedTotal = new Counter({
      name: "newton_requests_dropped_total",
      help: "Planned requests not started because the target had its concurrency ceiling in flight",
      labelNames: ["target"],
      registers,
    });
    this.lag = new Histogram({
      name: "newton_schedule_lag_seconds",
      help: "How late requests started against the plan",
      labelNames: ["target"],
      buckets: LAG_BUCKETS,
      registers,
    });
    this.late = new Counter({
      name: "newton_requests_late_total",
      help: `Requests that started more than ${lateAfterMs} ms after their planned start`,
      labelNames: ["target"],
      registers,
    });
    this.dnsDuration = new Histogram({
      name: "newton_dns_probe_seconds",
      help: "DNS probes: from a query's planned start to its answer",
      labelNames: ["target"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.dnsProbes = new Counter({
      name: "newton_dns_probes_total",
      help: "DNS probes answered, by rcode (unanswered ones are newton_errors_total)",
      labelNames: ["target", "rcode"],
      registers,
    });
    this.running = new Gauge({
      name: "newton_plan_running",
      help: "1 while a load plan runs",
      registers,
    });
  }

  started(target: string, lagMs: number): void {
    this.lag.observe({ target }, lagMs / 1000);
    if (lagMs > this.lateAfterMs) this.late.inc({ target });
  }

  response(target: string, status: number, ttfbMs: number, durationMs: number): void {
    this.responses.inc({ target, code: String(status) });
    this.ttfb.observe({ target }, ttfbMs / 1000);
    this.duration.observe({ target }, durationMs / 1000);
  }

  error(target: string, kind: ErrorKind): void {
    this.errors.inc({ target, kind });
  }

  dropped(target: string): void {
    this.droppedTotal.inc({ target });
  }

  dnsAnswer(target: string, rcode: string, durationMs: number): void {
    this.dnsProbes.inc({ target, rcode });
    this.dnsDuration.observe({ target }, durationMs / 1000);
  }
}
