/** One endpoint of the stargate's health checker (health.ts): its record and verdict, and the undici handler of its check. */
import type { Dispatcher } from "undici";
import type { Address } from "viem";

import { LOAD_HEADER, type LoadReport, parseLoadHeader } from "../../loadReport";

export type EndpointRole = "gateway" | "host" | "stargate";

/** An endpoint to check: a configuration subscriber, or one a peer stargate checks. */
export interface HealthTarget {
  device: Address;
  role: EndpointRole;
  url: string;
  /** The configuration version it last acknowledged (0: none or unknown). */
  version: number;
}

export type HealthState = "unknown" | "healthy" | "unhealthy";

/** The checker's verdict on one endpoint, after its last check. */
export interface Verdict extends HealthTarget {
  live: boolean;
  ready: boolean;
  admitted: boolean;
  state: HealthState;
  /** state "healthy" and admitted. */
  healthy: boolean;
  latencyMs: number;
  /** Wall clock (ms) of the last check's end. */
  checkedAt: number;
  consecutiveFailures: number;
  /** What the endpoint reported with its last answer (x-edge-load, D71); absent: none, or no answer. */
  load?: LoadReport;
}

export type CheckResult = "ready" | "not_ready" | "bad_status" | "timeout" | "unreachable";
export const RESULTS: CheckResult[] = ["ready", "not_ready", "bad_status", "timeout", "unreachable"];

export const FALL = 2;
export const RISE = 2;
export const FLAP_WINDOW = 8;
export const FLAP_FAILURES = 4;

export const TIMED_OUT = Object.assign(new Error("health check timed out"), { code: "EDGE_HEALTH_TIMEOUT" });
const TIMEOUT_CODES = new Set([
  "EDGE_HEALTH_TIMEOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

export function popcount8(bits: number): number {
  let count = 0;
  for (let b = bits; b !== 0; b &= b - 1) count++;
  return count;
}

/** One endpoint's record; it is also the undici handler of its (single) check in flight. */
export class Probe implements Dispatcher.DispatchHandler {
  role: EndpointRole;
  url = "";
  version: number;
  request!: Dispatcher.DispatchOptions;
  slot: number;
  generation = 0;
  removed = false;
  queued = false;
  inFlight = false;
  queuedAt = 0;
  startedAt = 0;
  status = 0;
  /** The load reported by the last answer (the check in flight's, once its headers arrive). */
  load: LoadReport | undefined;
  controller: Dispatcher.DispatchController | undefined;
  abandoned: Dispatcher.DispatchController | undefined;
  live = false;
  ready = false;
  admitted = true;
  state: HealthState = "unknown";
  latencyMs = 0;
  checkedAt = 0;
  consecutiveFailures = 0;
  consecutiveSuccesses = 0;
  /** The last 8 checks, newest in bit 0: 1 = failed. */
  failBits = 0;

  constructor(
    private readonly checker: { finish(probe: Probe, result: CheckResult): void },
    readonly device: Address,
    target: HealthTarget,
    slot: number,
    timeoutMs: number,
  ) {
    this.role = target.role;
    this.version = target.version;
    this.slot = slot;
    this.setUrl(target.url, timeoutMs);
  }

  setUrl(url: string, timeoutMs: number): void {
    if (url === this.url) return;
    const parsed = new URL(url);
    this.url = url;
    const base = parsed.pathname.endsWith("/") ? parsed.pathname.slice(0, -1) : parsed.pathname;
    this.request = {
      origin: parsed.origin,
      path: `${base}/ready`,
      method: "GET",
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    };
  }

  healthy(): boolean {
    return this.state === "healthy" && this.admitted;
  }

  verdict(): Verdict {
    return {
      device: this.device,
      role: this.role,
      url: this.url,
      version: this.version,
      live: this.live,
      ready: this.ready,
      admitted: this.admitted,
      state: this.state,
      healthy: this.healthy(),
      latencyMs: this.latencyMs,
      checkedAt: this.checkedAt,
      consecutiveFailures: this.consecutiveFailures,
      ...(this.load ? { load: this.load } : {}),
    };
  }

  // Callbacks of a request the checker gave up on (`abandoned`) are ignored: the next check has begun. (A request
  // that fails before it starts calls back without a controller.)
  private isAbandoned(controller: Dispatcher.DispatchController | undefined): boolean {
    return controller !== undefined && controller === this.abandoned;
  }
  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (!this.isAbandoned(controller)) this.controller = controller;
  }
  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (this.isAbandoned(controller)) return;
    this.status = statusCode;
    this.load = parseLoadHeader(headers[LOAD_HEADER]);
  }
  onResponseData(): void {}
  onResponseEnd(controller: Dispatcher.DispatchController): void {
    if (this.isAbandoned(controller)) return;
    this.checker.finish(this, this.status === 200 ? "ready" : this.status === 503 ? "not_ready" : "bad_status");
  }
  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    if (this.isAbandoned(controller)) return;
    if (this.status === 0) this.load = undefined; // no answer: its load is unknown
    const code = (error as { code?: string }).code;
    this.checker.finish(this, code !== undefined && TIMEOUT_CODES.has(code) ? "timeout" : "unreachable");
  }
}
