/**
 * Traces through the whole stack (#16 item 7, D47): every request carries W3C trace context (`traceparent`) from the
 * client or the gateway to the host and the origin and into every log line about it, always; OpenTelemetry spans
 * are recorded and exported over OTLP/HTTP only when an endpoint is configured.
 *
 * Off costs nothing: without an endpoint `initTracing` loads no OpenTelemetry module (the SDK is required lazily
 * below) and a span is one small object holding a propagated traceparent — the parent's trace id with a fresh span
 * id, or a fresh trace — so logs and downstream requests carry trace ids anyway. Measured on the project's machine
 * (Node 20; test/offchain/common/tracing.test.ts prints it): about 0.5 µs per startSpan + end (parse the parent,
 * draw a span id, format the traceparent) on a free core, 1 to 2 µs with the 2 cores shared at load 6, next to tens
 * of µs for the HTTP request it describes.
 *
 * On: a NodeTracerProvider of its own (not registered as the global provider: a test or the devnet may run several
 * services in one process, each with its own service.name, and callers pass the parent explicitly, so no context
 * manager is needed), a BatchSpanProcessor and the OTLP/HTTP JSON exporter. The incoming traceparent becomes a
 * remote parent in the api's context (`trace.setSpanContext`, what the W3C propagator's `extract` does) after the
 * strict parser below accepted it, so one parser decides what is a valid parent in both modes; each span's own
 * context is formatted back as the traceparent to forward. `tracestate` is not carried (D47).
 */
import { randomFillSync } from "node:crypto";

import type * as OtelApi from "@opentelemetry/api";
import type * as OtelExporter from "@opentelemetry/exporter-trace-otlp-http";
import type * as OtelResources from "@opentelemetry/resources";
import type * as OtelSdkBase from "@opentelemetry/sdk-trace-base";
import type * as OtelSdkNode from "@opentelemetry/sdk-trace-node";
import type * as OtelSemconv from "@opentelemetry/semantic-conventions";

import { ConfigError } from "./config";

export const TRACEPARENT_HEADER = "traceparent";

/** A W3C trace context: 32 and 16 lower-case hex digits (never all zero) and the trace-flags byte. */
export interface TraceContext {
  traceId: string;
  spanId: string;
  flags: number;
}

/** Bit 0 of trace-flags: the caller may have recorded the trace, so downstream tracers should too. */
export const SAMPLED = 0x01;

/** A traceparent is 55 characters in version 00; later versions may append fields. Longer input is refused unread. */
export const MAX_TRACEPARENT_LENGTH = 512;
const VERSION_00_LENGTH = 55;
// The first 55 characters: version, trace id, parent id and flags, lower-case hex between dashes.
const TRACEPARENT_HEAD = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}/;
const ZERO_TRACE_ID = "0".repeat(32);
const ZERO_SPAN_ID = "0".repeat(16);

/**
 * The trace context of a `traceparent` header value, or undefined when it is not valid W3C Trace Context
 * (https://www.w3.org/TR/trace-context/#traceparent-header): version 00 is exactly
 * `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lower-case only, ids not all zero; version ff is invalid;
 * a later version is read by the version-00 layout, its 55th character followed by the end or by "-" and whatever
 * fields that version adds (ignored). No whitespace is trimmed: HTTP parsers already strip it. Several header lines
 * are invalid (the spec: a vendor cannot tell which one is meant).
 */
export function parseTraceparent(value: string | readonly string[] | undefined): TraceContext | undefined {
  if (Array.isArray(value)) return value.length === 1 ? parseTraceparent(value[0]) : undefined;
  if (typeof value !== "string" || value.length < VERSION_00_LENGTH || value.length > MAX_TRACEPARENT_LENGTH)
    return undefined;
  if (!TRACEPARENT_HEAD.test(value)) return undefined;
  const version = value.slice(0, 2);
  const traceId = value.slice(3, 35);
  const spanId = value.slice(36, 52);
  if (version === "ff" || traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return undefined;
  if (value.length > VERSION_00_LENGTH && (version === "00" || value[VERSION_00_LENGTH] !== "-")) return undefined;
  return { traceId, spanId, flags: parseInt(value.slice(53, 55), 16) };
}

/** The version-00 `traceparent` of a context (the only version this code writes). */
export function formatTraceparent(context: TraceContext): string {
  const flags = context.flags & 0xff;
  return `00-${context.traceId}-${context.spanId}-${flags < 16 ? "0" : ""}${flags.toString(16)}`;
}

/**
 * A child of `parent`: the same trace id and a fresh random span id, carrying only the sampled flag (the other
 * bits are not defined by version 00 and must be zeroed on propagation); without a parent, a fresh sampled trace.
 */
export function newTraceContext(parent?: TraceContext): TraceContext {
  return {
    traceId: parent?.traceId ?? randomId(16),
    spanId: randomId(8),
    flags: parent ? parent.flags & SAMPLED : SAMPLED,
  };
}

// Ids come from a pool of CSPRNG bytes refilled 4 KiB at a time: one randomFillSync per 512 span ids instead of a
// call per id (the same batching crypto.randomUUID does). Ids are unguessable but no secret; uniqueness is their job.
const POOL = Buffer.alloc(4096);
let poolOffset = POOL.length;

function randomId(bytes: 8 | 16): string {
  for (;;) {
    if (poolOffset + bytes > POOL.length) {
      randomFillSync(POOL);
      poolOffset = 0;
    }
    const hex = POOL.toString("hex", poolOffset, (poolOffset += bytes));
    // An all-zero id is invalid (W3C); at odds of 2^-64 or less it is still checked rather than sent.
    if (hex !== ZERO_SPAN_ID && hex !== ZERO_TRACE_ID) return hex;
  }
}

export type SpanAttributes = Record<string, string | number | boolean>;
export type SpanKindName = "server" | "client" | "internal" | "producer" | "consumer";

export interface StartSpanOptions {
  /** The incoming `traceparent` (a header value); invalid or absent starts a new trace. */
  parent?: string | readonly string[];
  attributes?: SpanAttributes;
  /** OpenTelemetry's span kind: "server" for a request received, "client" for one sent; "internal" unless given. */
  kind?: SpanKindName;
}

/** One operation of a request (the gateway's handling, a host's job, an origin fetch). */
export interface EdgeSpan {
  /** This span's own context: forward it downstream as the `traceparent` header. */
  readonly traceparent: string;
  readonly traceId: string;
  readonly spanId: string;
  setAttributes(attributes: SpanAttributes): void;
  addEvent(name: string, attributes?: SpanAttributes): void;
  /** Ends the span; `error` marks it failed with that message. Once: later calls do nothing. */
  end(status?: { error?: string }): void;
}

export interface Tracing {
  /** True when spans are recorded and exported (an OTLP endpoint is configured). */
  readonly enabled: boolean;
  /** The OTLP/HTTP URL spans are posted to, when enabled. */
  readonly url?: string;
  startSpan(name: string, options?: StartSpanOptions): EdgeSpan;
  /** Exports the spans ended so far (the batch processor otherwise sends every OTEL_BSP_SCHEDULE_DELAY, 5 s). */
  flush(): Promise<void>;
  /** Flushes, then stops exporting. Call once, at shutdown. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** The resource's service.name: "edge-gateway", "edge-host", "edge-billing", ... */
  serviceName: string;
  /**
   * The collector's OTLP/HTTP endpoint (`http://collector:4318`; `/v1/traces` is appended unless the path already
   * ends with it). Else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is), else OTEL_EXPORTER_OTLP_ENDPOINT (plus
   * `/v1/traces`); none of them: tracing is off.
   */
  endpoint?: string;
  /** More resource attributes, e.g. { "service.instance.id": deviceAddress }. */
  resource?: SpanAttributes;
  /** The environment read for the variables above (process.env unless given). */
  env?: NodeJS.ProcessEnv;
}

/** The `trace_id` and `span_id` fields of every log line about a span's request (a pino child's bindings). */
export function traceLogFields(span: Pick<EdgeSpan, "traceId" | "spanId">): { trace_id: string; span_id: string } {
  return { trace_id: span.traceId, span_id: span.spanId };
}

/**
 * The OTLP/HTTP traces URL the options and environment configure, or undefined when tracing is off (no endpoint,
 * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none). A value that is not an http(s) URL is a ConfigError naming
 * the setting (not its value: collector URLs may hold credentials).
 */
export function otlpTracesUrl(endpoint: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return undefined;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === "none") return undefined;
  const chosen = endpoint
    ? { name: "tracing endpoint", value: endpoint, append: !/\/v1\/traces\/?$/.test(endpoint) }
    : env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
      ? { name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", value: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, append: false }
      : env.OTEL_EXPORTER_OTLP_ENDPOINT
        ? { name: "OTEL_EXPORTER_OTLP_ENDPOINT", value: env.OTEL_EXPORTER_OTLP_ENDPOINT, append: true }
        : undefined;
  if (!chosen) return undefined;
  let url: URL;
  try {
    url = new URL(chosen.value.trim());
  } catch {
    throw new ConfigError([`${chosen.name}: an http(s) URL expected`]);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ConfigError([`${chosen.name}: an http(s) URL expected`]);
  if (chosen.append) url.pathname = url.pathname.replace(/\/?$/, "/v1/traces");
  return url.href;
}

/** Tracing for one service: off (propagation only) unless an OTLP endpoint is configured; see the file's header. */
export function initTracing(options: TracingOptions): Tracing {
  const url = otlpTracesUrl(options.endpoint, options.env ?? process.env);
  return url ? sdkTracing(options, url) : PROPAGATION_ONLY;
}

/** Off: no OpenTelemetry module is loaded; spans only carry the trace context forward. */
class PropagatingSpan implements EdgeSpan {
  readonly traceparent: string;
  readonly traceId: string;
  readonly spanId: string;
  constructor(context: TraceContext) {
    this.traceId = context.traceId;
    this.spanId = context.spanId;
    this.traceparent = formatTraceparent(context);
  }
  setAttributes(): void {}
  addEvent(): void {}
  end(): void {}
}

const PROPAGATION_ONLY: Tracing = Object.freeze({
  enabled: false,
  startSpan: (_name: string, options?: StartSpanOptions) =>
    new PropagatingSpan(newTraceContext(parseTraceparent(options?.parent))),
  flush: async () => {},
  shutdown: async () => {},
});

/** On: an OpenTelemetry span, exported when it ends. */
class SdkSpan implements EdgeSpan {
  readonly traceparent: string;
  readonly traceId: string;
  readonly spanId: string;
  private ended = false;
  constructor(
    private readonly span: OtelApi.Span,
    private readonly errorCode: OtelApi.SpanStatusCode,
  ) {
    const { traceId, spanId, traceFlags } = span.spanContext();
    this.traceId = traceId;
    this.spanId = spanId;
    this.traceparent = formatTraceparent({ traceId, spanId, flags: traceFlags });
  }
  setAttributes(attributes: SpanAttributes): void {
    this.span.setAttributes(attributes);
  }
  addEvent(name: string, attributes?: SpanAttributes): void {
    this.span.addEvent(name, attributes);
  }
  end(status?: { error?: string }): void {
    if (this.ended) return;
    this.ended = true;
    if (status?.error !== undefined) this.span.setStatus({ code: this.errorCode, message: status.error });
    this.span.end();
  }
}

function sdkTracing(options: TracingOptions, url: string): Tracing {
  // Required here, not imported at the top: a process without an endpoint never loads the SDK (~0.16 s, 2.5 MB heap).
  const api = require("@opentelemetry/api") as typeof OtelApi;
  const { NodeTracerProvider } = require("@opentelemetry/sdk-trace-node") as typeof OtelSdkNode;
  const { BatchSpanProcessor } = require("@opentelemetry/sdk-trace-base") as typeof OtelSdkBase;
  const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-http") as typeof OtelExporter;
  const { defaultResource, resourceFromAttributes } = require("@opentelemetry/resources") as typeof OtelResources;
  const { ATTR_SERVICE_NAME } = require("@opentelemetry/semantic-conventions") as typeof OtelSemconv;

  const provider = new NodeTracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({ ...options.resource, [ATTR_SERVICE_NAME]: options.serviceName }),
    ),
    // OTEL_BSP_* (delay, queue and batch sizes) and OTEL_TRACES_SAMPLER[_ARG] apply; OTEL_EXPORTER_OTLP_HEADERS and
    // _TIMEOUT too (the exporter reads them). The body is OTLP JSON whatever OTEL_EXPORTER_OTLP_PROTOCOL says.
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }))],
  });
  const tracer = provider.getTracer("edge-network");
  const kinds: Record<SpanKindName, OtelApi.SpanKind> = {
    server: api.SpanKind.SERVER,
    client: api.SpanKind.CLIENT,
    internal: api.SpanKind.INTERNAL,
    producer: api.SpanKind.PRODUCER,
    consumer: api.SpanKind.CONSUMER,
  };
  return {
    enabled: true,
    url,
    startSpan(name, { parent, attributes, kind } = {}) {
      const remote = parseTraceparent(parent);
      const context = remote
        ? api.trace.setSpanContext(api.ROOT_CONTEXT, {
            traceId: remote.traceId,
            spanId: remote.spanId,
            traceFlags: remote.flags & SAMPLED,
            isRemote: true,
          })
        : api.ROOT_CONTEXT;
      const span = tracer.startSpan(name, { kind: kinds[kind ?? "internal"], attributes }, context);
      return new SdkSpan(span, api.SpanStatusCode.ERROR);
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
