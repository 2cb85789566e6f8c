/**
 * The stargate's health checker (D55): every endpoint it is given (its configuration subscribers, and the endpoints
 * its peer stargates check) is checked once every `intervalMs`, the checks spread evenly over the interval.
 *
 * - One request per check: `GET <url>/ready`. Every node serves /health and /ready from the same HTTP app
 *   (node/routes.ts); /ready answers 200 when the node serves and 503 with the reason otherwise, so any answer of
 *   those two proves the process alive (liveness) and 200 proves it ready. A second request to /health would
 *   double the work and tell nothing more. Any other answer, an error or no answer in `timeoutMs` is neither.
 * - A check fails when the endpoint is not ready. Rule (fall 2, rise 2, flap 4 of 8): an endpoint turns
 *   unhealthy after 2 failed checks in a row, or when 4 of its last 8 checks failed (an endpoint that fails every
 *   other check never has 2 in a row, but serves half the time); an unhealthy endpoint turns healthy again after 2
 *   passed checks in a row once fewer than 4 of its last 8 failed. A new endpoint is "unknown" (not healthy) until
 *   its first check passes. An endpoint the chain does not admit for its role is unhealthy whatever its checks.
 * - Scale: one timer (a wheel of `intervalMs / tickMs` slots; each endpoint has a fixed slot from a hash of its
 *   device), at most `concurrency` checks in flight, one keep-alive connection per endpoint (undici Agent, kept
 *   open across intervals), and the endpoint's record is its own undici handler: a check allocates nothing of
 *   ours. Memory is one record per endpoint; endpoints no longer listed are forgotten at the next refresh.
 */
import { performance } from "node:perf_hooks";

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { Agent } from "undici";
import type { Address } from "viem";

import {
  type CheckResult,
  type EndpointRole,
  FALL,
  FLAP_FAILURES,
  FLAP_WINDOW,
  type HealthState,
  type HealthTarget,
  Probe,
  RESULTS,
  RISE,
  TIMED_OUT,
  type Verdict,
  fnv1a,
  popcount8,
} from "./healthProbe";

export type { CheckResult, EndpointRole, HealthState, HealthTarget, Verdict };

export interface HealthCheckerOptions {
  targets(): readonly HealthTarget[];
  /** Whether the chain admits `device` with the stake its role needs. */
  admits(device: Address, role: EndpointRole): boolean;
  intervalMs: number;
  timeoutMs?: number;
  concurrency?: number;
  tickMs?: number;
  /** How often targets() is read (default min(1000, intervalMs)). */
  refreshMs?: number;
  registry?: Registry;
  /** Every check's latency, result and wait in the queue before it started (benchmarks). */
  onCheck?(latencyMs: number, result: CheckResult, waitMs: number): void;
  /** An endpoint's `healthy` changed. */
  onChange?(verdict: Verdict): void;
  now?: () => number;
}

/** Checks every target once per interval; see the file comment for the rule. */
export class HealthChecker {
  private readonly probes = new Map<string, Probe>();
  private readonly wheel: Set<Probe>[];
  private readonly queue: Probe[] = [];
  private queueHead = 0;
  private readonly active = new Set<Probe>();
  private readonly agent: Agent;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly tickMs: number;
  private readonly refreshMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private cursor = -1;
  private lastRefresh = -Infinity;
  private generation = 0;
  private readonly checks?: Record<CheckResult, Counter.Internal>;
  private readonly latency?: Histogram;

  constructor(private readonly opts: HealthCheckerOptions) {
    this.timeoutMs = opts.timeoutMs ?? 2_000;
    this.concurrency = opts.concurrency ?? 128;
    this.tickMs = opts.tickMs ?? Math.max(1, Math.min(10, Math.floor(opts.intervalMs / 10)));
    this.refreshMs = opts.refreshMs ?? Math.min(1_000, opts.intervalMs);
    this.now = opts.now ?? Date.now;
    this.wheel = Array.from({ length: Math.max(1, Math.ceil(opts.intervalMs / this.tickMs)) }, () => new Set());
    const keepAlive = 2 * opts.intervalMs + this.timeoutMs;
    this.agent = new Agent({
      connections: 1,
      pipelining: 1,
      keepAliveTimeout: keepAlive,
      keepAliveMaxTimeout: keepAlive,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: { timeout: this.timeoutMs },
    });
    if (opts.registry) {
      const registers = [opts.registry];
      const total = new Counter({
        name: "edge_health_checks_total",
        help: "Health checks of endpoints by result (ready, not_ready, bad_status, timeout, unreachable)",
        labelNames: ["result"],
        registers,
      });
      this.checks = Object.fromEntries(RESULTS.map((r) => [r, total.labels(r)])) as Record<
        CheckResult,
        Counter.Internal
      >;
      this.latency = new Histogram({
        name: "edge_health_check_latency_seconds",
        help: "Time from a health check's request to its answer's end",
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2],
        registers,
      });
      const probes = this.probes;
      new Gauge({
        name: "edge_health_targets",
        help: "Endpoints the stargate checks, by state (healthy, unhealthy, unknown; not admitted is unhealthy)",
        labelNames: ["state"],
        registers,
        collect() {
          const counts = { healthy: 0, unhealthy: 0, unknown: 0 };
          for (const probe of probes.values()) counts[probe.admitted ? probe.state : "unhealthy"]++;
          for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
        },
      });
    }
  }

  start(): void {
    if (this.timer) return;
    this.startedAt = performance.now();
    this.cursor = -1;
    this.tick();
  }

  /** Stops checking; checks in flight are cut. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const probe of this.active) probe.controller?.abort(TIMED_OUT);
    await this.agent.destroy();
  }

  /** The verdicts of the endpoints checked at least once. */
  verdicts(): Verdict[] {
    const out: Verdict[] = [];
    for (const probe of this.probes.values()) if (probe.checkedAt > 0) out.push(probe.verdict());
    return out;
  }

  verdict(device: string): Verdict | undefined {
    const probe = this.probes.get(device.toLowerCase());
    return probe && probe.checkedAt > 0 ? probe.verdict() : undefined;
  }

  size(): number {
    return this.probes.size;
  }

  inFlight(): number {
    return this.active.size;
  }

  /** Reads the targets: new ones get a slot, changed ones their new URL, role and version, gone ones forgotten. */
  refresh(): void {
    const generation = ++this.generation;
    for (const target of this.opts.targets()) {
      const key = target.device.toLowerCase();
      let probe = this.probes.get(key);
      try {
        if (!probe) {
          probe = new Probe(this, target.device, target, fnv1a(key) % this.wheel.length, this.timeoutMs);
          this.probes.set(key, probe);
          this.wheel[probe.slot].add(probe);
        } else {
          probe.setUrl(target.url, this.timeoutMs);
        }
      } catch {
        continue; // a URL that does not parse: not checked (and not listed)
      }
      probe.role = target.role;
      probe.version = target.version;
      probe.generation = generation;
    }
    for (const [key, probe] of this.probes) {
      if (probe.generation === generation) {
        this.admission(probe);
        continue;
      }
      probe.removed = true;
      this.probes.delete(key);
      this.wheel[probe.slot].delete(probe);
    }
  }

  private admission(probe: Probe): void {
    const before = probe.healthy();
    probe.admitted = this.opts.admits(probe.device, probe.role);
    if (before !== probe.healthy()) this.opts.onChange?.(probe.verdict());
  }

  private tick(): void {
    const now = performance.now();
    if (now - this.lastRefresh >= this.refreshMs) {
      this.lastRefresh = now;
      this.refresh();
    }
    const due = Math.floor((now - this.startedAt) / this.tickMs);
    // After a stall, at most one turn of the wheel is caught up: each endpoint once.
    let from = Math.max(this.cursor + 1, due - this.wheel.length + 1);
    for (; from <= due; from++) {
      for (const probe of this.wheel[from % this.wheel.length]) {
        if (probe.inFlight || probe.queued) continue;
        probe.queued = true;
        probe.queuedAt = now;
        this.queue.push(probe);
      }
    }
    this.cursor = due;
    for (const probe of this.active) {
      const elapsed = now - probe.startedAt;
      if (elapsed <= this.timeoutMs) continue;
      probe.controller?.abort(TIMED_OUT);
      // An abort ends the check through the handler; should a request never call back, it is given up on.
      if (elapsed > 2 * this.timeoutMs && probe.controller) {
        probe.abandoned = probe.controller;
        this.finish(probe, "timeout");
      }
    }
    this.pump();
    const next = this.startedAt + (due + 1) * this.tickMs;
    this.timer = setTimeout(() => this.tick(), Math.max(0, next - performance.now()));
  }

  private pump(): void {
    while (this.active.size < this.concurrency && this.queueHead < this.queue.length) {
      const probe = this.queue[this.queueHead++];
      probe.queued = false;
      if (probe.removed) continue;
      probe.inFlight = true;
      probe.status = 0;
      probe.controller = undefined;
      probe.startedAt = performance.now();
      this.active.add(probe);
      this.agent.dispatch(probe.request, probe);
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    }
  }

  /** A check ended (called by the probe, once per check). */
  finish(probe: Probe, result: CheckResult): void {
    if (!probe.inFlight) return;
    probe.inFlight = false;
    probe.controller = undefined;
    this.active.delete(probe);
    const latencyMs = performance.now() - probe.startedAt;
    this.checks?.[result].inc();
    this.latency?.observe(latencyMs / 1000);
    this.opts.onCheck?.(latencyMs, result, probe.startedAt - probe.queuedAt);
    if (!probe.removed) this.record(probe, result, latencyMs);
    if (this.timer) this.pump();
  }

  private record(probe: Probe, result: CheckResult, latencyMs: number): void {
    const before = probe.healthy();
    const passed = result === "ready";
    probe.live = passed || result === "not_ready";
    probe.ready = passed;
    probe.latencyMs = latencyMs;
    probe.checkedAt = this.now();
    probe.failBits = ((probe.failBits << 1) | (passed ? 0 : 1)) & ((1 << FLAP_WINDOW) - 1);
    probe.consecutiveFailures = passed ? 0 : probe.consecutiveFailures + 1;
    probe.consecutiveSuccesses = passed ? probe.consecutiveSuccesses + 1 : 0;
    const flapping = popcount8(probe.failBits) >= FLAP_FAILURES;
    if (probe.state === "healthy") {
      if (probe.consecutiveFailures >= FALL || flapping) probe.state = "unhealthy";
    } else if (probe.state === "unknown") {
      if (passed) probe.state = "healthy";
      else if (probe.consecutiveFailures >= FALL) probe.state = "unhealthy";
    } else if (probe.consecutiveSuccesses >= RISE && !flapping) {
      probe.state = "healthy";
    }
    probe.admitted = this.opts.admits(probe.device, probe.role);
    if (before !== probe.healthy()) this.opts.onChange?.(probe.verdict());
  }
}
