/**
 * The jobs a host runs for its gateway, one HTTP/2 stream each over the host's link (link.ts). The stream's
 * `x-edge-kind` says which:
 * - `cdn`: a customer's request for a site. The request line and headers are the client's (hop-by-hop headers
 *   removed by the gateway); `x-edge-site`, `x-edge-origin`, `x-edge-ttl` and `x-edge-max-object` carry the
 *   site's id, origin and cache rules from the gateway's configuration. Served from the cache or the origin
 *   (cache.ts), the body streamed back as it comes; `x-edge-cache` says hit, miss, revalidated or bypass. A fill
 *   holds the object in memory, so the host caps `x-edge-max-object` at `hostFillCap(memoryBytes)` (larger objects
 *   stream through uncached). The origin's answer is made relayable over HTTP/2 (D49): duplicates of a header
 *   Node's HTTP/2 takes once (content-type, etag, ...) keep their first value, and a status outside 200..599 is
 *   answered 502 EDGE_NODE_ORIGIN_INVALID, its body dropped.
 * - `compute`: the iterated SHA-256 job (compute.ts), a JSON body {jobId, payload, rounds}, a JSON answer.
 * - `tally`: the host's signed tally for this gateway and `x-edge-epoch` (tallies.ts, F11); 204 when none.
 * - `fragment`: Edge Storage fragments put, got, deleted and listed in the host's store (fragmentJobs.ts, issue 21);
 *   a refused put whose body was not read to its end is answered, then its stream closed with NO_ERROR.
 * A cdn job's span is a child of the gateway's (its `traceparent`), and the origin's request carries the job's
 * own context (D47). A job counts as returned (for the tally) once its whole answer was handed to the link. Errors the host itself
 * raises (origin unreachable, bad job) answer with `x-edge-error: <code>` and a JSON body, and do not count.
 */
import { type Http2ServerRequest, type Http2ServerResponse, constants as h2 } from "node:http2";
import type { Readable } from "node:stream";
import { Value } from "typebox/value";
import type { Address } from "viem";

import { EdgeError } from "../../../offchain/common/errors";
import { type EdgeSpan, traceLogFields } from "../../../offchain/common/tracing";
import { HostJobBodySchema, type HostJobBody } from "../../../offchain/common/protocol";
import type { RoleContext } from "../../context";
import { nodeError } from "../../errors";
import { assertJobSize, assertServing } from "../jobChecks";
import type { HostCache } from "./cache";
import { runJobAsync } from "./compute";
import type { FragmentJobs } from "./fragmentJobs";
import type { HostTallies } from "./tallies";

/** Largest compute job body read. */
const MAX_COMPUTE_BODY = 128 * 1024;
/** Request headers of a cdn job that are the gateway's, not the client's: never forwarded to the origin. */
const EDGE_HEADERS = ["x-edge-kind", "x-edge-site", "x-edge-origin", "x-edge-ttl", "x-edge-max-object", "x-edge-job"];

export interface HostJobsParts {
  cache: Pick<HostCache, "serve">;
  /** The cache's memory tier (bytes): fills are capped at `hostFillCap` of it. */
  memoryBytes: number;
  tallies: Pick<HostTallies, "count" | "attest"> | null;
  /** The gateway's device address, once the link learnt it. */
  gateway: () => Address | null;
  maxJobRounds: number;
  /** Edge Storage fragment jobs; null: a `fragment` job is refused as an unknown kind. */
  fragments?: Pick<FragmentJobs, "handle"> | null;
}

const MIB = 1024 * 1024;

/** The largest object a fill holds in memory: max(1 MiB, an eighth of the cache's memory tier). */
export function hostFillCap(memoryBytes: number): number {
  return Math.max(MIB, Math.floor(memoryBytes / 8));
}

/**
 * Response headers Node's HTTP/2 takes once (lib/internal/http2/util.js, kSingleValueHeaders, response-side ones):
 * an origin sending one of them twice would make writeHead throw.
 */
const SINGLE_VALUE = new Set([
  "access-control-allow-credentials",
  "access-control-max-age",
  "access-control-request-method",
  "age",
  "authorization",
  "content-encoding",
  "content-language",
  "content-length",
  "content-location",
  "content-md5",
  "content-range",
  "content-type",
  "date",
  "dnt",
  "etag",
  "expires",
  "from",
  "host",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-range",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "proxy-authorization",
  "range",
  "referer",
  "retry-after",
  "tk",
  "upgrade-insecure-requests",
  "user-agent",
  "x-content-type-options",
]);

/**
 * An origin's response headers as HTTP/2 can carry them: hop-by-hop ones dropped, and a single-value header sent
 * more than once reduced to its first value. Other repeated headers (set-cookie, cache-control, vary, link...)
 * stay repeated fields, as the origin sent them.
 */
export function relayable(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out = withoutHopByHop(headers);
  for (const [name, value] of Object.entries(out))
    if (Array.isArray(value) && SINGLE_VALUE.has(name)) out[name] = value[0];
  return out;
}

export class HostJobs {
  private done = 0;

  constructor(
    private readonly ctx: Pick<RoleContext, "signer" | "log" | "work" | "serving" | "tracing"> & {
      metrics: Pick<RoleContext["metrics"], "jobs">;
    },
    private readonly parts: HostJobsParts,
  ) {}

  /** Jobs returned whole. */
  get executed(): number {
    return this.done;
  }

  handle(request: Http2ServerRequest, response: Http2ServerResponse): void {
    const kind = request.headers["x-edge-kind"];
    const run =
      kind === "cdn"
        ? () => this.cdn(request, response)
        : kind === "compute"
          ? () => this.compute(request, response)
          : kind === "tally"
            ? () => this.tally(request, response)
            : kind === "fragment" && this.parts.fragments
              ? () => this.parts.fragments!.handle(request, response)
              : () => Promise.reject(nodeError("EDGE_NODE_BAD_JOB", `unknown job kind ${String(kind).slice(0, 32)}`));
    const tracked = kind === "tally" ? run() : this.ctx.work.track(run);
    tracked.catch((error: Error) => {
      this.fail(response, error);
      // A fragment put refused mid-body (RFC 9113 8.1): the answer is whole; NO_ERROR asks the gateway to stop sending.
      if (kind === "fragment" && !request.complete && !response.stream.destroyed)
        response.stream.once("finish", () => response.stream.close(h2.NGHTTP2_NO_ERROR));
    });
  }

  private async cdn(request: Http2ServerRequest, response: Http2ServerResponse): Promise<void> {
    const span = this.ctx.tracing.startSpan("host site job", {
      parent: request.headers.traceparent,
      kind: "server",
      attributes: {
        "edge.site": String(request.headers["x-edge-site"] ?? ""),
        "edge.job": String(request.headers["x-edge-job"] ?? ""),
      },
    });
    try {
      await this.cdnJob(request, response, span);
      span.end();
    } catch (error) {
      span.end({ error: (error as Error).message });
      throw error;
    }
  }

  private async cdnJob(request: Http2ServerRequest, response: Http2ServerResponse, span: EdgeSpan): Promise<void> {
    assertServing(this.ctx.serving(), "host");
    const h = request.headers;
    const origin = String(h["x-edge-origin"] ?? "");
    const site = String(h["x-edge-site"] ?? "");
    const ttl = Number(h["x-edge-ttl"] ?? 0);
    const maxObject = Number(h["x-edge-max-object"] ?? 0);
    if (!/^https?:\/\//.test(origin) || !site || !Number.isSafeInteger(ttl) || !Number.isSafeInteger(maxObject))
      throw nodeError("EDGE_NODE_BAD_JOB", "a cdn job needs x-edge-site, x-edge-origin, x-edge-ttl, x-edge-max-object");
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(h)) {
      if (name.startsWith(":") || EDGE_HEADERS.includes(name) || value === undefined) continue;
      headers[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    headers.traceparent = span.traceparent; // the origin's request is part of this job's trace
    const abort = new AbortController();
    // Only a job cut short aborts (its origin fetch): aborting costs a DOMException, too much for every job.
    response.stream.on("close", () => {
      if (!response.writableFinished) abort.abort();
    });
    const method = request.method;
    const served = await this.parts.cache.serve({
      site,
      method,
      url: origin + request.url,
      headers,
      body: method === "GET" || method === "HEAD" ? undefined : request,
      rules: { defaultTtlSeconds: ttl, maxObjectBytes: Math.min(maxObject, hostFillCap(this.parts.memoryBytes)) },
      signal: abort.signal,
    });
    span.setAttributes({ "edge.cache": served.cache, "http.response.status_code": served.status });
    const invalid = (why: string) => {
      served.body.destroy();
      for (const name of response.getHeaderNames()) response.removeHeader(name); // set before writeHead threw
      return nodeError("EDGE_NODE_ORIGIN_INVALID", `the origin's answer cannot be relayed: ${why}`);
    };
    if (!Number.isInteger(served.status) || served.status < 200 || served.status > 599)
      throw invalid(`status ${served.status}`);
    try {
      response.writeHead(served.status, { ...relayable(served.headers), "x-edge-cache": served.cache });
    } catch (error) {
      throw invalid((error as Error).message);
    }
    await relay(served.body, response);
    this.returned("cdn");
    this.ctx.log.debug({ ...traceLogFields(span), cache: served.cache, status: served.status }, "site job returned");
  }

  private async compute(request: Http2ServerRequest, response: Http2ServerResponse): Promise<void> {
    const span = this.ctx.tracing.startSpan("host compute job", {
      parent: request.headers.traceparent,
      kind: "server",
    });
    try {
      await this.computeJob(request, response);
      span.end();
    } catch (error) {
      span.end({ error: (error as Error).message });
      throw error;
    }
  }

  private async computeJob(request: Http2ServerRequest, response: Http2ServerResponse): Promise<void> {
    assertServing(this.ctx.serving(), "host");
    const body = (await readJson(request, MAX_COMPUTE_BODY)) as HostJobBody;
    if (!Value.Check(HostJobBodySchema, body)) throw nodeError("EDGE_NODE_BAD_JOB", "not a compute job body");
    assertJobSize(body.rounds, this.parts.maxJobRounds);
    const result = await runJobAsync(body.payload, body.rounds);
    const reply = JSON.stringify({ jobId: body.jobId, result, host: this.ctx.signer.account.address });
    response.writeHead(200, { "content-type": "application/json" });
    await new Promise<void>((resolve) => response.end(reply, resolve));
    this.returned("executed");
  }

  private async tally(request: Http2ServerRequest, response: Http2ServerResponse): Promise<void> {
    const gateway = this.parts.gateway();
    const epoch = String(request.headers["x-edge-epoch"] ?? "");
    if (!/^\d{1,20}$/.test(epoch)) throw nodeError("EDGE_NODE_BAD_JOB", "x-edge-epoch must be an epoch number");
    const tally = gateway && (await this.parts.tallies?.attest(gateway, BigInt(epoch)));
    if (!tally) {
      response.writeHead(204);
      response.end();
      return;
    }
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(tally));
  }

  private returned(outcome: "cdn" | "executed"): void {
    this.done += 1;
    this.ctx.metrics.jobs.inc({ outcome });
    const gateway = this.parts.gateway();
    if (gateway) this.parts.tallies?.count(gateway);
  }

  private fail(response: Http2ServerResponse, error: Error): void {
    if (response.headersSent || response.stream.destroyed) {
      response.stream.close(0x2); // INTERNAL_ERROR: the gateway sees a cut stream, never a truncated success
      return;
    }
    const edge = error instanceof EdgeError ? error : undefined;
    const code = edge?.code ?? "EDGE_NODE_HOST_FAILED";
    if (!edge) this.ctx.log.warn({ err: error.message }, "job failed");
    response.writeHead(edge?.status ?? 502, { "content-type": "application/json", "x-edge-error": code });
    response.end(JSON.stringify({ error: error.message, code }));
  }
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "http2-settings",
]);

/** Headers an HTTP/2 response may carry: no connection-specific ones (RFC 9113 8.2.2). */
export function withoutHopByHop(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name.toLowerCase()) || name.startsWith(":")) continue;
    out[name.toLowerCase()] = value;
  }
  return out;
}

/** Reads a JSON body of at most `limit` bytes. */
async function readJson(request: Http2ServerRequest, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw nodeError("EDGE_NODE_JOB_TOO_LARGE", `a job body is at most ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw nodeError("EDGE_NODE_BAD_JOB", "the job body is not JSON");
  }
}

/**
 * Pipes `body` into the job's response and resolves when it is all handed over, or rejects if either side fails
 * (stream/promises' pipeline does the same but creates and aborts an AbortSignal per call, a DOMException each:
 * a measurable share of a cached response's cost).
 */
function relay(body: Readable, response: Http2ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      if (error) {
        body.destroy();
        reject(error);
      } else resolve();
    };
    body.once("error", (error) => settle(error));
    response.once("finish", () => settle());
    response.once("close", () => settle(response.writableFinished ? undefined : new Error("the job's stream closed")));
    body.pipe(response);
  });
}
