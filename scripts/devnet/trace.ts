/**
 * One site request's path from its trace (#16 item 7, D47). The runner hosts a real OTLP/HTTP receiver
 * (scripts/lib/otlpReceiver.ts); gateways and hosts export their spans to it (OTEL_EXPORTER_OTLP_ENDPOINT), with
 * a parent-based sampler that records every request whose client asked for it (a sampled traceparent) and 1% of
 * the others (Newton's load), so tracing costs the 2-core machine little. Midway, the devnet sends two requests
 * to gateway-1's front door with a sampled traceparent of its own: a no-store one (the host goes to the origin,
 * which logs the traceparent it got) and a cacheable one (served from the host's cache). Their paths are read
 * back from the spans: the gateway's (queue wait, host, attempt, status, cache, bytes), then the host's job span,
 * its child, and for the first the origin's request, whose traceparent names the host's span as its parent.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";

import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "../lib/otlpReceiver";
import { SITE } from "./cdn";
import { DevnetError, waitFor } from "./common";

export interface Tracer {
  receiver: OtlpReceiver;
  /** The environment gateways and hosts get. */
  env: Record<string, string>;
}

export async function startTracer(): Promise<Tracer> {
  const receiver = await startOtlpReceiver();
  return {
    receiver,
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.01",
      OTEL_BSP_SCHEDULE_DELAY: "500",
    },
  };
}

export interface Probe {
  path: string;
  traceId: string;
  /** The client's span id: the gateway's span must be its child. */
  parent: string;
  status: number;
  bytes: number;
}

/** Sends GET `path` to the front door for the demo site with a fresh sampled traceparent. */
export async function probe(frontDoor: string, path: string): Promise<Probe> {
  const traceId = randomBytes(16).toString("hex");
  const parent = randomBytes(8).toString("hex");
  const response = await request(`${frontDoor}${path}`, {
    headers: { host: SITE.hostname, traceparent: `00-${traceId}-${parent}-01` },
  });
  const bytes = (await response.body.arrayBuffer()).byteLength;
  return { path, traceId, parent, status: response.statusCode, bytes };
}

export interface TracedPath {
  probe: Probe;
  gateway: ReceivedSpan;
  host: ReceivedSpan;
  /** The traceparent the origin logged for the request, when the host went to the origin. */
  originTraceparent?: string;
}

/** The probe's spans, once both arrived (the gateway's a child of the probe's, the host's a child of it). */
export async function tracedPath(tracer: Tracer, p: Probe, originLog?: string): Promise<TracedPath> {
  const spans = () => tracer.receiver.spans.filter((s) => s.traceId === p.traceId);
  const [gateway, host] = await waitFor(
    `the spans of trace ${p.traceId}`,
    async () => {
      const g = spans().find((s) => s.service === "edge-gateway" && s.parentSpanId === p.parent);
      const h = g && spans().find((s) => s.service === "edge-host" && s.parentSpanId === g.spanId);
      return g && h ? [g, h] : undefined;
    },
    15_000,
  );
  let originTraceparent: string | undefined;
  if (originLog) {
    const line = readFileSync(originLog, "utf8")
      .split("\n")
      .find((l) => l.startsWith(`${p.path} traceparent `));
    originTraceparent = line?.split(" ")[2];
    if (originTraceparent !== `00-${p.traceId}-${host.spanId}-01`)
      throw new DevnetError(
        `the origin got ${p.path} with traceparent ${originTraceparent ?? "(none)"}, not one naming host span ` +
          `${host.spanId} of trace ${p.traceId}`,
      );
  }
  return { probe: p, gateway, host, originTraceparent };
}

const ms = (s: ReceivedSpan) => Number(s.endNs - s.startNs) / 1e6;

/** The path as printed lines; `names` maps device addresses (lower-case) to node names. */
export function describePath(path: TracedPath, gatewayName: string, names: Map<string, string>): string[] {
  const { probe: p, gateway: g, host: h } = path;
  const a = g.attributes;
  const hostName = names.get(String(a["edge.host"]).toLowerCase()) ?? String(a["edge.host"]);
  const lines = [
    `trace ${p.traceId}: GET ${p.path} (Host ${SITE.hostname}) to ${gatewayName}'s front door, ${p.status}, ${p.bytes} bytes`,
    `  ${gatewayName} "${g.name}" ${ms(g).toFixed(1)} ms: site ${a["edge.site"]}, job ${a["edge.job"]}, queue wait ` +
      `${a["edge.queue_wait_ms"]} ms, host ${hostName} (attempt ${a["edge.attempt"]}), status ` +
      `${a["http.response.status_code"]}, cache ${a["edge.cache"]}, ${a["edge.bytes"]} bytes`,
    `    ${hostName} "${h.name}" ${ms(h).toFixed(1)} ms: cache ${h.attributes["edge.cache"]}, status ` +
      `${h.attributes["http.response.status_code"]}`,
  ];
  if (path.originTraceparent)
    lines.push(
      `      origin: GET ${p.path} with traceparent ${path.originTraceparent} (${ORIGIN_LOG}), the host's span`,
    );
  return lines;
}

export const ORIGIN_LOG = "origin.log";
export const originLog = (dir: string) => join(dir, ORIGIN_LOG);
