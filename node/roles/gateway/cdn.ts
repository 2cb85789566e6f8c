/**
 * The gateway as customers' front door for content delivery (D44): a plain HTTP request for a site's hostname
 * (the Host header; sites.ts) becomes a job in the gateway's queue (queue.ts); the first host with a free slot
 * takes it over its link (links.ts), serves it from its cache or the site's origin, and the response streams
 * back through the gateway to the client as it comes (HTTP/2 flow control paces each job on its own).
 *
 * Order of checks, cheapest first: a known site (404 EDGE_NODE_UNKNOWN_SITE), the gateway serving (503), the
 * request body's size (413), then the site owner's credit (402, credit.ts, D43: the request's price is reserved
 * before the work; its egress bytes are priced when it ends, so the overdraft past a customer's credit is at
 * most the bytes of the responses in flight).
 *
 * Retries: a job whose host fails before the response starts (the link closed, the stream reset, no response
 * headers within the job timeout, a host error) is retried once on another host; once bytes went to the client
 * it cannot be, and the client's connection is cut (a truncated response is never passed off as whole).
 *
 * Counting, once per job that a host returned whole: the host's job count (for its report and score; its
 * tally is collected separately), the owner's usage (`cdn.requests` 1, `cdn.egressBytes` the body bytes sent
 * to the client, also for a response cut short), the metrics. A sample of GET 200 responses is checked against
 * the origin (contentCheck.ts); a host that served different bytes than the origin's is banned (F9's rule).
 *
 * Traces (D47): the client's `traceparent` (or a new trace) is the parent of the gateway's span, whose context
 * goes to the host (and from there to the origin); the trace id comes back in `x-edge-trace` and is in every log
 * line about the request.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type http2 from "node:http2";

import { EdgeError } from "../../../offchain/common/errors";
import { type EdgeSpan, traceLogFields } from "../../../offchain/common/tracing";
import type { RoleContext } from "../../context";
import { nodeError } from "../../errors";
import { ClientGone, hostFailure, readBody, responseHeaders } from "./cdnHttp";
import type { CdnMetrics } from "./cdnMetrics";
import type { ContentChecker } from "./contentCheck";
import type { CreditLimiter, Reservation } from "./credit";
import type { HostRegistry } from "./hosts";
import type { HostLink } from "./links";
import type { JobQueue } from "./queue";
import type { JobReports } from "./reports";
import type { Site, SiteSource } from "./sites";
import type { UsageMeter } from "./usage";

/** Request bodies held at once at most, over all requests (a full queue of 1 MiB bodies would be 10 GB). */
export const MAX_HELD_BODY_BYTES = 64 * 1024 * 1024;
/** Most request headers forwarded (the HTTP/2 link has its own header-list bounds). */
export const MAX_REQUEST_HEADERS = 100;

/** Request headers never forwarded to the host (hop-by-hop, or the gateway's own). */
const DROPPED = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"]);
DROPPED.add("trailer").add("host").add("http2-settings").add("proxy-authorization");

export interface CdnParts {
  sites: Pick<SiteSource, "lookup">;
  queue: Pick<JobQueue<HostLink>, "submit" | "done">;
  hosts: Pick<HostRegistry, "admitted" | "ban">;
  reports: Pick<JobReports, "count">;
  usage: Pick<UsageMeter, "add">;
  credit?: Pick<CreditLimiter, "reserve" | "complete" | "release">;
  checker?: Pick<ContentChecker, "sample" | "check">;
  metrics: CdnMetrics;
}

interface Attempt {
  link: HostLink;
  stream: http2.ClientHttp2Stream;
}

export class CdnFrontDoor {
  private sequence = 0;
  private heldBodyBytes = 0;

  constructor(
    private readonly ctx: Pick<RoleContext, "signer" | "log" | "serving" | "work" | "tracing">,
    private readonly parts: CdnParts,
    private readonly jobTimeoutMs: number,
  ) {}

  /** The front door's request handler (a node:http server's). Never throws; every error is a JSON 4xx/5xx. */
  handle(request: IncomingMessage, response: ServerResponse): void {
    const started = performance.now();
    // The client's trace context, or a new trace (D47); its id goes back to the client and into every log line.
    const span = this.ctx.tracing.startSpan("gateway site request", {
      parent: request.headers.traceparent,
      kind: "server",
      attributes: { "http.request.method": request.method ?? "" },
    });
    response.setHeader("x-edge-trace", span.traceId);
    this.serve(request, response, started, span).then(
      () => span.end(),
      (error: Error) => {
        span.end({ error: error.message });
        this.fail(response, error, span);
      },
    );
  }

  private async serve(request: IncomingMessage, response: ServerResponse, started: number, span: EdgeSpan) {
    const site = this.parts.sites.lookup(request.headers.host);
    if (!site)
      throw nodeError(
        "EDGE_NODE_UNKNOWN_SITE",
        `no site is configured for host ${JSON.stringify((request.headers.host ?? "").slice(0, 255))}`,
      );
    if (!this.ctx.serving()) throw nodeError("EDGE_NODE_NOT_SERVING", "this gateway is not serving");
    if (request.rawHeaders.length / 2 > MAX_REQUEST_HEADERS)
      throw nodeError("EDGE_NODE_TOO_MANY_HEADERS", `a request carries at most ${MAX_REQUEST_HEADERS} headers`);
    const body = await readBody(request);
    if (body && this.heldBodyBytes + body.length > MAX_HELD_BODY_BYTES)
      throw nodeError("EDGE_NODE_QUEUE_FULL", "too many request bodies are waiting for hosts: retry shortly");
    this.heldBodyBytes += body?.length ?? 0;
    try {
      await this.admitted(site, request, response, body, started, span);
    } finally {
      this.heldBodyBytes -= body?.length ?? 0;
    }
  }

  private async admitted(
    site: Site,
    request: IncomingMessage,
    response: ServerResponse,
    body: Buffer | null,
    started: number,
    span: EdgeSpan,
  ): Promise<void> {
    const reservation = await this.parts.credit?.reserve(site.owner, [
      { service: "cdn", metric: "requests", quantity: 1n },
    ]);
    const jobId = `${this.ctx.signer.account.address.slice(2, 10).toLowerCase()}-${Date.now()}-${this.sequence++}`;
    span.setAttributes({ "edge.site": site.id, "edge.job": jobId });
    await this.ctx.work.track(() => this.run(site, request, response, body, reservation, { jobId, started, span }));
  }

  /** Runs the job (once more on another host if the first fails before answering); resolves when it ended. */
  private async run(
    site: Site,
    request: IncomingMessage,
    response: ServerResponse,
    body: Buffer | null,
    reservation: Reservation | undefined,
    job: { jobId: string; started: number; span: EdgeSpan },
  ): Promise<void> {
    const sample = request.method === "GET" && this.parts.checker?.sample() === true;
    const headers = this.forwarded(site, request, job.jobId);
    headers.traceparent = job.span.traceparent;
    let bytes = 0;
    let avoid: string | undefined;
    let outcome: { host: string; status: number; cache: string; sha256?: string; etag?: string; modified?: string };
    try {
      for (let attempt = 0; ; attempt++) {
        const queued = performance.now();
        const { link, stream } = await this.start(headers, body, avoid);
        job.span.setAttributes({
          "edge.host": link.host,
          "edge.attempt": attempt + 1,
          "edge.queue_wait_ms": Math.round((performance.now() - queued) * 1000) / 1000,
        });
        try {
          const result = await this.relay(link, stream, response, sample, (n) => (bytes += n));
          outcome = { host: link.host, ...result };
          break;
        } catch (error) {
          if (response.headersSent || attempt >= 1 || error instanceof ClientGone) throw error;
          avoid = link.host;
          this.parts.metrics.retries.inc();
        }
      }
    } catch (error) {
      this.bill(site, reservation, bytes, bytes > 0);
      throw error;
    }
    this.bill(site, reservation, bytes, true);
    if (this.parts.hosts.admitted(outcome.host)) this.parts.reports.count(outcome.host);
    const seconds = (performance.now() - job.started) / 1000;
    this.parts.metrics.served(site.id, outcome.host, outcome.status, outcome.cache, bytes, seconds);
    const { status, cache } = outcome;
    job.span.setAttributes({ "http.response.status_code": status, "edge.cache": cache, "edge.bytes": bytes });
    this.ctx.log.debug(
      { ...traceLogFields(job.span), site: site.id, host: outcome.host, status, cache, bytes, seconds },
      "site request served",
    );
    if (sample && outcome.status === 200 && outcome.sha256) this.check(site, request, headers, outcome, bytes);
  }

  /** Waits for a host's slot and opens the job's stream on its link. */
  private start(headers: http2.OutgoingHttpHeaders, body: Buffer | null, avoid?: string): Promise<Attempt> {
    return new Promise((resolve, reject) =>
      this.parts.queue.submit({
        avoid,
        expire: reject,
        run: (link) => {
          try {
            const stream = link.request(headers, body === null);
            if (body !== null) stream.end(body);
            stream.on("close", () => this.parts.queue.done(link));
            resolve({ link, stream });
          } catch (error) {
            this.parts.queue.done(link);
            reject(error as Error);
          }
        },
      }),
    );
  }

  /**
   * Streams the host's answer to the client. Rejects (ClientGone when the client left) unless the whole body
   * went out; a host error before any byte rejects with it, so the caller may retry.
   */
  private relay(
    link: HostLink,
    stream: http2.ClientHttp2Stream,
    response: ServerResponse,
    sample: boolean,
    sent: (n: number) => void,
  ): Promise<{ status: number; cache: string; sha256?: string; etag?: string; modified?: string }> {
    return new Promise((resolve, reject) => {
      const hash = sample ? createHash("sha256") : undefined;
      let status = 0;
      let cache = "";
      let headers: http2.IncomingHttpHeaders = {};
      let hostError: string | undefined;
      let draining = false;
      let errorBody = "";
      let ended = false;
      const timer = setTimeout(() => {
        stream.close(0x8);
        reject(nodeError("EDGE_NODE_HOST_TIMEOUT", `host ${link.host} did not answer within ${this.jobTimeoutMs} ms`));
      }, this.jobTimeoutMs);
      const gone = () => {
        if (ended) return;
        stream.close(0x8); // CANCEL: the host stops (and aborts its origin fetch)
        reject(new ClientGone());
      };
      response.on("close", gone);
      stream.on("response", (h) => {
        clearTimeout(timer);
        headers = h;
        status = Number(h[":status"]);
        cache = String(h["x-edge-cache"] ?? "none");
        if (h["x-edge-error"]) {
          hostError = String(h["x-edge-error"]);
          return;
        }
        response.writeHead(status, responseHeaders(h));
      });
      stream.on("data", (chunk: Buffer) => {
        if (hostError) {
          errorBody = (errorBody + chunk.toString("utf8")).slice(0, 1_000);
          return;
        }
        sent(chunk.length);
        hash?.update(chunk);
        if (!response.write(chunk) && !draining) {
          draining = true;
          stream.pause();
          response.once("drain", () => {
            draining = false;
            stream.resume();
          });
        }
      });
      stream.on("end", () => {
        if (status === 0) return; // ended without a response (its link went down): "close" rejects
        ended = true;
        response.off("close", gone);
        if (hostError !== undefined) return reject(hostFailure(link.host, hostError, errorBody));
        response.end();
        const etag = headers.etag as string | undefined;
        const modified = headers["last-modified"] as string | undefined;
        resolve({ status, cache, sha256: hash?.digest("hex"), etag, modified });
      });
      stream.on("close", () => {
        clearTimeout(timer);
        if (!ended) {
          response.off("close", gone);
          reject(nodeError("EDGE_NODE_HOST_FAILED", `host ${link.host} cut the job's stream`));
        }
      });
      stream.on("error", () => undefined); // "close" follows and decides
    });
  }

  /** The request as the host gets it: the client's method, path and end-to-end headers, plus the site's rules. */
  private forwarded(site: Site, request: IncomingMessage, jobId: string): http2.OutgoingHttpHeaders {
    const headers: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (value === undefined || DROPPED.has(name) || name.startsWith("x-edge-")) continue;
      headers[name] = value;
    }
    const via = request.socket.remoteAddress ?? "";
    const prior = request.headers["x-forwarded-for"];
    return {
      ...headers,
      ":method": request.method ?? "GET",
      ":path": request.url?.startsWith("/") ? request.url : "/",
      "x-forwarded-for": prior ? `${String(prior)}, ${via}` : via,
      "x-forwarded-host": site.hostname,
      "x-forwarded-proto": "http",
      "x-edge-kind": "cdn",
      "x-edge-site": site.id,
      "x-edge-origin": site.origin,
      "x-edge-ttl": String(site.cache.defaultTtlSeconds),
      "x-edge-max-object": String(site.cache.maxObjectBytes),
      "x-edge-job": jobId,
    };
  }

  /** Records the job's usage for billing and settles its credit reservation. */
  private bill(site: Site, reservation: Reservation | undefined, bytes: number, served: boolean): void {
    if (!served) {
      if (reservation) this.parts.credit!.release(reservation);
      return;
    }
    this.parts.usage.add(site.owner, "requests", 1n, "cdn");
    if (bytes > 0) this.parts.usage.add(site.owner, "egressBytes", BigInt(bytes), "cdn");
    if (reservation)
      this.parts.credit!.complete(reservation, [{ service: "cdn", metric: "egressBytes", quantity: BigInt(bytes) }]);
  }

  /** Checks a sampled response against the origin, in the background; bans the host on a mismatch. */
  private check(
    site: Site,
    request: IncomingMessage,
    headers: http2.OutgoingHttpHeaders,
    served: { host: string; status: number; cache: string; sha256?: string; etag?: string; modified?: string },
    bytes: number,
  ): void {
    const forwarded: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers))
      if (!name.startsWith(":") && !name.startsWith("x-edge-") && value !== undefined) forwarded[name] = String(value);
    void this.parts
      .checker!.check({
        url: site.origin + (request.url ?? "/"),
        headers: forwarded,
        status: served.status,
        etag: served.etag,
        lastModified: served.modified,
        cache: served.cache,
        sha256: served.sha256!,
        bytes,
      })
      .then((verdict) => {
        this.parts.metrics.checks.inc({ outcome: verdict.outcome });
        if (verdict.outcome !== "mismatch") return;
        const jobId = String(headers["x-edge-job"]);
        this.parts.hosts.ban(served.host, { at: Date.now(), jobId, reason: `wrong content: ${verdict.reason}` });
      });
  }

  private fail(response: ServerResponse, error: Error, span: EdgeSpan): void {
    if (error instanceof ClientGone || response.destroyed) return;
    if (response.headersSent) {
      response.destroy(); // bytes went out: cut the connection rather than end a truncated body as if whole
      return;
    }
    const edge = error instanceof EdgeError ? error : undefined;
    if (!edge) this.ctx.log.warn({ ...traceLogFields(span), err: error.message }, "site request failed");
    const code = edge?.code ?? "EDGE_NODE_HOST_FAILED";
    const status = edge?.status ?? 502;
    this.parts.metrics.refused.inc({ code });
    const body = JSON.stringify({ error: error.message, code });
    response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    response.end(body);
  }
}
