/**
 * Newton's load engine: open loop, constant arrival rate per target.
 *
 * Request k of a target is planned at start + k / rate. It starts then whether or not earlier requests finished
 * (so a slow server cannot slow the load down and hide its latency), unless the target already has its
 * concurrency ceiling of requests in flight: then the request is dropped and counted, as k6's
 * constant-arrival-rate executor counts dropped iterations. Latency and time to first byte are measured from the
 * planned start, as wrk2 does, so time a request spent waiting behind a stalled scheduler or server counts
 * (no coordinated omission); how late each request actually started is reported separately as schedule lag.
 *
 * The scheduler sleeps with setTimeout while the next planned start is more than 2 ms away and polls with
 * setImmediate when it is closer; requests go out through one undici Pool per target, or per resolved address for
 * a target resolved through named DNS servers (resolve.ts). A DNS target (kind "dns", dnsProbe.ts) sends one UDP
 * query per planned request and records the answer's rcode and latency (D58).
 */
import { Pool, errors as undiciErrors } from "undici";
import * as hdr from "hdr-histogram-js";

import { DnsProber, type DnsProbeType } from "./dnsProbe";
import { CachingResolver, DnsLookupError, type ResolveOption, ResolvedPools } from "./resolve";

export interface HttpTarget {
  kind?: "http";
  id: string;
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** Paths (with query) the target's requests take in turn, the k-th sent the (k mod n)-th; the URL's when absent. */
  paths?: readonly string[];
  /** Resolve the URL's host through these DNS servers (per request, answers kept for their TTL). */
  resolve?: ResolveOption;
}

/** A DNS probe: `name` `type` asked of `server` ("address:port") at the plan's rate. */
export interface DnsTarget {
  kind: "dns";
  id: string;
  server: string;
  name: string;
  type: DnsProbeType;
}

export type Target = HttpTarget | DnsTarget;

export interface Plan {
  /** Requests per second, per target. */
  rate: number;
  durationMs: number;
  /** Requests in flight per target at most. */
  maxConcurrency: number;
  /** A request without complete response after this long is a timeout error. */
  timeoutMs: number;
  /** HTTP/2 over cleartext with prior knowledge (h2c) instead of HTTP/1.1. */
  h2c?: boolean;
}

export type ErrorKind = "timeout" | "refused" | "reset" | "dns" | "other";

/** What the engine reports as it goes (metrics are one observer). */
export interface Observer {
  started?(target: string, lagMs: number): void;
  response?(target: string, status: number, ttfbMs: number, durationMs: number): void;
  error?(target: string, kind: ErrorKind): void;
  dropped?(target: string): void;
  /** A DNS target's answer: its rcode ("NOERROR", "NXDOMAIN"...) and the time from the planned start. */
  dnsAnswer?(target: string, rcode: string, durationMs: number): void;
}

export interface TargetSummary {
  target: string;
  planned: number;
  sent: number;
  responses: number;
  errors: number;
  dropped: number;
  statuses: Record<string, number>;
  /** A DNS target's answers by rcode (its `responses`; `statuses` stays empty). */
  rcodes?: Record<string, number>;
  errorsByKind: Partial<Record<ErrorKind, number>>;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  ttfbMs: { p50: number; p90: number; p99: number; max: number };
  scheduleLagMs: { p50: number; p99: number; max: number };
}

/** Histograms in microseconds, 3 significant digits, up to an hour. */
const histogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });

const ms = (h: hdr.Histogram, p: number) => (h.totalCount === 0 ? 0 : h.getValueAtPercentile(p) / 1000);

export function errorKind(error: unknown): ErrorKind {
  if (error instanceof DnsLookupError) return "dns";
  const e = error as { code?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code;
  if (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError ||
    code === "UND_ERR_HEADERS_TIMEOUT" ||
    code === "UND_ERR_BODY_TIMEOUT" ||
    code === "UND_ERR_CONNECT_TIMEOUT" ||
    code === "ETIMEDOUT"
  )
    return "timeout";
  if (code === "ECONNREFUSED") return "refused";
  if (
    code === "ECONNRESET" ||
    code === "EPIPE" ||
    code === "UND_ERR_SOCKET" ||
    error instanceof undiciErrors.SocketError
  )
    return "reset";
  return "other";
}

class TargetState {
  /** The HTTP pool (a target without `resolve`), the pools per resolved address, or the DNS prober. */
  readonly pool?: Pool;
  readonly resolved?: ResolvedPools;
  readonly prober?: DnsProber;
  readonly path: string = "";
  k = 0;
  inFlight = 0;
  sent = 0;
  responses = 0;
  errors = 0;
  dropped = 0;
  readonly statuses: Record<string, number> = {};
  readonly rcodes: Record<string, number> = {};
  readonly errorsByKind: Partial<Record<ErrorKind, number>> = {};
  readonly latency = histogram();
  readonly ttfb = histogram();
  readonly lag = histogram();

  constructor(
    readonly target: Target,
    plan: Plan,
  ) {
    if (target.kind === "dns") {
      this.prober = new DnsProber(target.server, plan.timeoutMs);
      return;
    }
    const url = new URL(target.url);
    this.path = url.pathname + url.search;
    if (target.resolve) {
      const resolver = new CachingResolver(target.resolve.servers, plan.timeoutMs);
      this.resolved = new ResolvedPools(target.url, resolver, {
        connections: plan.maxConcurrency,
        timeoutMs: plan.timeoutMs,
      });
      return;
    }
    this.pool = new Pool(url.origin, {
      connections: plan.maxConcurrency,
      pipelining: 1,
      headersTimeout: plan.timeoutMs,
      bodyTimeout: plan.timeoutMs,
      connectTimeout: plan.timeoutMs,
      // undici's Pool does not pass `useH2c` on to its connector, nor do its types name it (7.30): a connect option.
      ...(plan.h2c ? { allowH2: true, connect: { useH2c: true } as Pool.Options["connect"] } : {}),
    });
  }

  async close(): Promise<void> {
    this.prober?.close();
    await Promise.all([this.pool?.close(), this.resolved?.close()]);
  }

  summary(planned: number): TargetSummary {
    return {
      target: this.target.id,
      planned,
      sent: this.sent,
      responses: this.responses,
      errors: this.errors,
      dropped: this.dropped,
      statuses: { ...this.statuses },
      ...(this.prober && { rcodes: { ...this.rcodes } }),
      errorsByKind: { ...this.errorsByKind },
      latencyMs: {
        p50: ms(this.latency, 50),
        p90: ms(this.latency, 90),
        p99: ms(this.latency, 99),
        max: this.latency.maxValue / 1000,
      },
      ttfbMs: {
        p50: ms(this.ttfb, 50),
        p90: ms(this.ttfb, 90),
        p99: ms(this.ttfb, 99),
        max: this.ttfb.maxValue / 1000,
      },
      scheduleLagMs: { p50: ms(this.lag, 50), p99: ms(this.lag, 99), max: this.lag.maxValue / 1000 },
    };
  }
}

/** One load run: `start()` resolves with the summary once the plan's time is over and every request ended. */
export class LoadRun {
  private readonly states: TargetState[];
  private readonly intervalMs: number;
  private t0 = 0;
  private endAt = 0;
  private stopped = false;
  private finished?: () => void;
  private timer?: NodeJS.Timeout;
  readonly startedAt = Date.now();

  constructor(
    targets: readonly Target[],
    readonly plan: Plan,
    private readonly observer: Observer = {},
  ) {
    if (targets.length === 0) throw new RangeError("a load run needs at least one target");
    if (targets.some((t) => t.kind !== "dns" && t.paths?.length === 0))
      throw new RangeError("a target's paths, when given, are not empty");
    if (!(plan.rate > 0)) throw new RangeError("the rate must be positive");
    this.states = targets.map((t) => new TargetState(t, plan));
    this.intervalMs = 1000 / plan.rate;
  }

  get running(): boolean {
    return this.t0 !== 0 && !this.stopped;
  }

  async start(): Promise<TargetSummary[]> {
    this.t0 = performance.now();
    this.endAt = this.t0 + this.plan.durationMs;
    await new Promise<void>((resolve) => {
      this.finished = resolve;
      this.tick();
    });
    // Let requests in flight end (each has its timeout), then close the pools.
    while (this.states.some((s) => s.inFlight > 0)) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(this.states.map((s) => s.close()));
    return this.summaries();
  }

  /** Stops planning new requests; `start()` resolves once those in flight end. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.finished?.();
  }

  summaries(): TargetSummary[] {
    const elapsed = Math.min(performance.now(), this.endAt) - this.t0;
    const planned = this.t0 === 0 ? 0 : Math.max(0, Math.floor(elapsed / this.intervalMs) + 1);
    return this.states.map((s) => s.summary(Math.min(planned, s.k)));
  }

  private tick = (): void => {
    if (this.stopped) return;
    const now = performance.now();
    let next = Infinity;
    for (const state of this.states) {
      for (;;) {
        const planned = this.t0 + state.k * this.intervalMs;
        if (planned >= this.endAt) break;
        if (planned > now) {
          next = Math.min(next, planned);
          break;
        }
        state.k += 1;
        if (state.inFlight >= this.plan.maxConcurrency) {
          state.dropped += 1;
          this.observer.dropped?.(state.target.id);
          continue;
        }
        this.send(state, planned, now);
      }
    }
    if (next === Infinity) {
      this.stop();
      return;
    }
    const wait = next - performance.now();
    if (wait > 2) this.timer = setTimeout(this.tick, wait - 1.5);
    else setImmediate(this.tick);
  };

  private send(state: TargetState, planned: number, now: number): void {
    const { target } = state;
    const lag = now - planned;
    state.lag.recordValue(Math.max(1, Math.round(lag * 1000)));
    state.inFlight += 1;
    const k = state.sent;
    state.sent += 1;
    this.observer.started?.(target.id, lag);
    const done = target.kind === "dns" ? this.probe(state, target, planned) : this.request(state, target, k, planned);
    done
      .catch((error: unknown) => {
        const kind = errorKind(error);
        state.errors += 1;
        state.errorsByKind[kind] = (state.errorsByKind[kind] ?? 0) + 1;
        this.observer.error?.(target.id, kind);
      })
      .finally(() => {
        state.inFlight -= 1;
      });
  }

  /** The k-th request of an HTTP target, through its pool or the pool of the next resolved address. */
  private async request(state: TargetState, target: HttpTarget, k: number, planned: number): Promise<void> {
    const path = target.paths ? target.paths[k % target.paths.length] : state.path;
    let pool = state.pool;
    let headers = target.headers;
    if (state.resolved) {
      const next = await state.resolved.next();
      pool = next.pool;
      headers = { ...headers, host: next.host };
    }
    const response = await pool!.request({ path, method: target.method as "GET", headers, body: target.body });
    const ttfb = performance.now() - planned;
    // Read the whole body (undici takes a non-finite dump limit as 128 KiB and cuts larger bodies).
    await response.body.dump({ limit: Number.MAX_SAFE_INTEGER });
    const duration = performance.now() - planned;
    state.responses += 1;
    state.statuses[response.statusCode] = (state.statuses[response.statusCode] ?? 0) + 1;
    state.ttfb.recordValue(Math.max(1, Math.round(ttfb * 1000)));
    state.latency.recordValue(Math.max(1, Math.round(duration * 1000)));
    this.observer.response?.(target.id, response.statusCode, ttfb, duration);
  }

  /** One query of a DNS target: its rcode and latency (ttfb is not recorded for DNS). */
  private async probe(state: TargetState, target: DnsTarget, planned: number): Promise<void> {
    const rcode = await state.prober!.query(target.name, target.type);
    const duration = performance.now() - planned;
    state.responses += 1;
    state.rcodes[rcode] = (state.rcodes[rcode] ?? 0) + 1;
    state.latency.recordValue(Math.max(1, Math.round(duration * 1000)));
    this.observer.dnsAnswer?.(target.id, rcode, duration);
  }
}
