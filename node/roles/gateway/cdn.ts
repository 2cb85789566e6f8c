/**
 * The gateway as customers' front door for content delivery (D44): a plain HTTP request for a site's hostname
 * (the Host header; sites.ts) becomes a job in the gateway's queue (queue.ts); the first host with a free slot
 * takes it over its link (links.ts), serves it from its cache or the site's origin, and the response streams
 * back through the gateway to the client as it comes (HTTP/2 flow control paces each job on its own).
 *
 * Order of checks, cheapest first: the client's address on the network's blocklist (blocklist.ts, D54; 403
 * EDGE_NODE_BLOCKED naming the rule), a known site (404 EDGE_NODE_UNKNOWN_SITE), the site's path rules (403), the
 * gateway serving (503), the request body's size (413), then the site owner's credit (402, credit.ts, D43: the
 * request's price is reserved before the work, its egress a MiB at a time as it flows (R8): a response the credit
 * no longer covers is cut, so this gateway never serves past a customer's credit; the overdraft stays D43's, from
 * other gateways' usage not seen yet).
 *
 * Retries: a job whose host fails before the response starts (the link closed, the stream reset, no response
 * headers within the job timeout, a host error) is retried once on another host; once bytes went to the client
 * it cannot be, and the client's connection is cut (a truncated response is never passed off as whole).
 *
 * Counting: the host's job count once per job it returned whole (its report and score); the owner's usage
 * (`cdn.requests` 1, `cdn.egressBytes` the body bytes sent) and the metrics once per response that sent bytes, cut
 * short too. Sampled GET 200 responses are checked against the origin (contentCheck.ts; F9's ban).
 *
 * Traces (D47): the client's `traceparent` (or a new trace) is the parent of the gateway's span, whose context
 * goes to the host (and from there to the origin); the trace id comes back in `x-edge-trace` and is in every log
 * line about the request.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type http2 from "node:http2";

import { EdgeError, isEdgeError } from "../../../offchain/common/errors";
import { type EdgeSpan, traceLogFields } from "../../../offchain/common/tracing";
import type { RoleContext } from "../../context";
import { nodeError } from "../../errors";
import {
  type Attempt,
  ClientGone,
  forwardedHeaders,
  hostFailure,
  isOriginError,
  readBody,
  requestTarget,
  responseHeaders,
  startAttempt,
} from "./cdnHttp";
import { type CompiledBlocklist, blockedError } from "./blocklist";
import type { CdnMetrics } from "./cdnMetrics";
import type { ContentChecker } from "./contentCheck";
import { SampledChecks } from "./sampledChecks";
import type { CreditLimiter, Reservation } from "./credit";
import type { HostRegistry } from "./hosts";
import type { HostLink } from "./links";
import type { JobQueue } from "./queue";
import type { JobReports } from "./reports";
import type { Site, SiteSource } from "./sites";
import type { UsageMeter } from "../../usage";
import type { Region } from "../../../offchain/common/protocol/regions";
import { checkPlacement, hostsFor } from "./sitePlacement";

/** Egress is reserved against the owner's credit this many bytes at a time, ahead of the bytes sent (R8). */
export const EGRESS_STEP = 1024 * 1024;
/** Request bodies held at once at most, over all requests (a full queue of 1 MiB bodies would be 10 GB). */
export const MAX_HELD_BODY_BYTES = 64 * 1024 * 1024;
/** Most request headers forwarded (the HTTP/2 link has its own header-list bounds). */
export const MAX_REQUEST_HEADERS = 100;

export interface CdnParts {
  sites: Pick<SiteSource, "lookup">;
  /** The blocklist in force now (swapped whole when a configuration is applied); none: nothing is blocked. */
  blocklist?: () => Pick<CompiledBlocklist, "address" | "path">;
  queue: Pick<JobQueue<HostLink>, "submit" | "done" | "failed" | "succeeded">;
  hosts: Pick<HostRegistry, "countable" | "strike">;
  reports: Pick<JobReports, "count">;
  usage: Pick<UsageMeter, "addAll">;
  credit?: Pick<CreditLimiter, "reserve" | "extend" | "complete" | "release">;
  checker?: Pick<ContentChecker, "sample" | "check">;
  metrics: CdnMetrics;
  /** This gateway's declared region (--region, D68): what sites' placements are checked against (D69). */
  region?: Region;
}

export class CdnFrontDoor {
  private sequence = 0;
  private heldBodyBytes = 0;
  private readonly samples: SampledChecks | undefined;

  constructor(
    private readonly ctx: Pick<RoleContext, "signer" | "log" | "serving" | "work" | "tracing">,
    private readonly parts: CdnParts,
    private readonly jobTimeoutMs: number,
  ) {
    const { checker, hosts, metrics } = parts;
    this.samples = checker && new SampledChecks(checker, hosts, metrics);
  }

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
    const blocklist = this.parts.blocklist?.();
    const byAddress = blocklist?.address(request.socket.remoteAddress);
    if (byAddress) throw blockedError(byAddress, this.parts.metrics.blocked);
    const target = requestTarget(request);
    const site = this.parts.sites.lookup(target.host);
    if (!site)
      throw nodeError(
        "EDGE_NODE_UNKNOWN_SITE",
        `no site is configured for host ${JSON.stringify((target.host ?? "").slice(0, 255))}`,
      );
    const byPath = blocklist?.path(site.hostname, target.path);
    if (byPath) throw blockedError(byPath, this.parts.metrics.blocked);
    checkPlacement(site, this.parts.region, this.ctx.signer.account.address);
    if (!this.ctx.serving()) throw nodeError("EDGE_NODE_NOT_SERVING", "this gateway is not serving");
    if (request.rawHeaders.length / 2 > MAX_REQUEST_HEADERS)
      throw nodeError("EDGE_NODE_TOO_MANY_HEADERS", `a request carries at most ${MAX_REQUEST_HEADERS} headers`);
    const body = await readBody(request);
    if (body && this.heldBodyBytes + body.length > MAX_HELD_BODY_BYTES)
      throw nodeError("EDGE_NODE_QUEUE_FULL", "too many request bodies are waiting for hosts: retry shortly");
    this.heldBodyBytes += body?.length ?? 0;
    try {
      await this.admitted(site, request, response, body, { started, span, path: target.path });
    } finally {
      this.heldBodyBytes -= body?.length ?? 0;
    }
  }

  private async admitted(
    site: Site,
    request: IncomingMessage,
    response: ServerResponse,
    body: Buffer | null,
    { started, span, path }: { started: number; span: EdgeSpan; path: string },
  ): Promise<void> {
    const reservation = await this.parts.credit?.reserve(site.owner, [
      { service: "cdn", metric: "requests", quantity: 1n },
    ]);
    const jobId = `${this.ctx.signer.account.address.slice(2, 10).toLowerCase()}-${Date.now()}-${this.sequence++}`;
    span.setAttributes({ "edge.site": site.id, "edge.job": jobId });
    // Timed to the host's response head, not the end of the relay: a client reading slowly must not raise the
    // p99 this gateway reports to the stargates (x-edge-load, D71; R20-4).
    await this.ctx.work.track(
      () => this.run(site, request, response, body, reservation, { jobId, started, span, path }),
      false,
    );
  }

  /** Runs the job (once more on another host if the first fails before answering); resolves when it ended. */
  private async run(
    site: Site,
    request: IncomingMessage,
    response: ServerResponse,
    body: Buffer | null,
    reservation: Reservation | undefined,
    /** `path`: the request target's path and query (origin-form, also for an absolute-form request). */
    job: { jobId: string; started: number; span: EdgeSpan; path: string },
  ): Promise<void> {
    const sample = request.method === "GET" && this.parts.checker?.sample() === true;
    const headers = forwardedHeaders(site, request, job.path, job.jobId);
    headers.traceparent = job.span.traceparent;
    const client = { gone: false };
    response.once("close", () => (client.gone = !response.writableFinished));
    let bytes = 0;
    let avoid: string | undefined;
    let host = ""; // the host of the latest attempt
    const seconds = () => (performance.now() - job.started) / 1000;
    const failed: Array<{ link: HostLink; error: unknown }> = [];
    let outcome: { host: string; status: number; cache: string; sha256?: string; etag?: string; modified?: string };
    try {
      for (let attempt = 0; ; attempt++) {
        const queued = performance.now();
        let started: Attempt;
        try {
          const hosts = hostsFor(site, this.parts.region);
          started = await startAttempt(this.parts.queue, { headers, body, avoid, client }, hosts);
        } catch (error) {
          // No other host for the retry: the client learns why the first one failed.
          if (failed.length > 0 && isEdgeError(error) && error.code === "EDGE_NODE_NO_HOSTS") throw failed[0].error;
          throw error;
        }
        const { link } = started;
        started.stream?.once("response", () => this.ctx.work.latency.record(performance.now() - job.started));
        host = link.host;
        job.span.setAttributes({
          "edge.host": link.host,
          "edge.attempt": attempt + 1,
          "edge.queue_wait_ms": Math.round((performance.now() - queued) * 1000) / 1000,
        });
        try {
          if (!started.stream) throw started.error;
          const result = await this.relay(link, started.stream, response, client, sample, (n) => {
            if (!this.coverEgress(reservation, bytes + n)) return false;
            bytes += n;
            return true;
          });
          outcome = { host: link.host, ...result };
          this.parts.queue.succeeded(link);
          break;
        } catch (error) {
          if (error instanceof ClientGone) throw error;
          failed.push({ link, error });
          // The host's own doing (its link, no answer in time, its error): its breaker counts it. An origin the
          // host says it cannot reach counts only if another host then serves the request (below).
          const credit = isEdgeError(error) && error.code === "EDGE_NODE_CREDIT_EXHAUSTED";
          if (!isOriginError(error) && !credit) this.parts.queue.failed(link);
          if (response.headersSent || attempt >= 1) throw error;
          avoid = link.host;
          this.parts.metrics.retries.inc();
        }
      }
    } catch (error) {
      this.bill(site, reservation, bytes, bytes > 0);
      // Bytes went out (the host cut its stream, the client left): billed, so counted, with the status the client got.
      if (bytes > 0) this.parts.metrics.served(site.id, host, response.statusCode, "none", bytes, seconds());
      throw error;
    }
    for (const { link, error } of failed) if (isOriginError(error)) this.parts.queue.failed(link);
    this.bill(site, reservation, bytes, true);
    if (this.parts.hosts.countable(outcome.host)) this.parts.reports.count(outcome.host);
    this.parts.metrics.served(site.id, outcome.host, outcome.status, outcome.cache, bytes, seconds());
    const { status, cache } = outcome;
    job.span.setAttributes({ "http.response.status_code": status, "edge.cache": cache, "edge.bytes": bytes });
    const fields = { site: site.id, host: outcome.host, status, cache, bytes, seconds: seconds() };
    this.ctx.log.debug({ ...traceLogFields(job.span), ...fields }, "site request served");
    if (sample && outcome.sha256) this.samples?.check(site, job.path, headers, outcome, bytes);
  }

  /**
   * Streams the host's answer to the client. Rejects (ClientGone when the client left) unless the whole body
   * went out; a host error before any byte rejects with it, so the caller may retry.
   */
  private relay(
    link: HostLink,
    stream: http2.ClientHttp2Stream,
    response: ServerResponse,
    client: { gone: boolean },
    sample: boolean,
    /** Counts bytes about to go to the client; false stops the job (the owner's credit is used up). */
    sent: (n: number) => boolean,
  ): Promise<{ status: number; cache: string; sha256?: string; etag?: string; modified?: string }> {
    return new Promise((resolve, reject) => {
      if (client.gone || response.destroyed) {
        stream.close(0x8);
        return reject(new ClientGone());
      }
      const hash = sample ? createHash("sha256") : undefined;
      let status = 0;
      let cache = "";
      let headers: http2.IncomingHttpHeaders = {};
      let hostError: string | undefined;
      let draining = false;
      let ended = false;
      // No progress for the job timeout, before the response or within its body (a host that stalls): cut.
      stream.setTimeout(this.jobTimeoutMs, () => {
        stream.close(0x8);
        const what = status === 0 ? "did not answer" : "stalled its response";
        reject(nodeError("EDGE_NODE_HOST_TIMEOUT", `host ${link.host} ${what} for ${this.jobTimeoutMs} ms`));
      });
      const gone = () => {
        if (ended) return;
        stream.close(0x8); // CANCEL: the host stops (and aborts its origin fetch)
        reject(new ClientGone());
      };
      response.on("close", gone);
      stream.on("response", (h) => {
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
        if (hostError) return; // the host's own error body: its words never reach the client (R14)
        if (!sent(chunk.length)) {
          ended = true; // settled here: "close" must not reject again
          stream.close(0x8);
          response.destroy(); // cut: the client never gets bytes the owner's credit does not cover
          return reject(nodeError("EDGE_NODE_CREDIT_EXHAUSTED", `the site owner's credit ran out mid-response`));
        }
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
        if (hostError !== undefined) return reject(hostFailure(link.host, hostError));
        response.end();
        const etag = headers.etag as string | undefined;
        const modified = headers["last-modified"] as string | undefined;
        resolve({ status, cache, sha256: hash?.digest("hex"), etag, modified });
      });
      stream.on("close", () => {
        if (!ended) {
          response.off("close", gone);
          reject(nodeError("EDGE_NODE_HOST_FAILED", `host ${link.host} cut the job's stream`));
        }
      });
      stream.on("error", () => undefined); // "close" follows and decides
    });
  }

  /** Reserves egress up to `bytes` a step ahead (R8); false when the credit does not cover it: the job stops. */
  private coverEgress(reservation: Reservation | undefined, bytes: number): boolean {
    if (!reservation) return true;
    const covered = (reservation as { egressCovered?: number }).egressCovered ?? 0;
    if (bytes <= covered) return true;
    const step = Math.max(EGRESS_STEP, bytes - covered);
    const line = { service: "cdn", metric: "egressBytes", quantity: BigInt(step) };
    if (!this.parts.credit!.extend(reservation, [line])) return false;
    (reservation as { egressCovered?: number }).egressCovered = covered + step;
    return true;
  }

  /** Records the job's usage for billing and settles its credit reservation. */
  private bill(site: Site, reservation: Reservation | undefined, bytes: number, served: boolean): void {
    if (!served) {
      if (reservation) this.parts.credit!.release(reservation);
      return;
    }
    const lines: Array<[string, bigint]> = [["requests", 1n]];
    if (bytes > 0) lines.push(["egressBytes", BigInt(bytes)]);
    this.parts.usage.addAll(site.owner, "cdn", lines); // one journal write per request
    if (reservation)
      this.parts.credit!.complete(reservation, [
        { service: "cdn", metric: "requests", quantity: 1n },
        { service: "cdn", metric: "egressBytes", quantity: BigInt(bytes) },
      ]);
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
    const body = JSON.stringify({ error: error.message, code, ...(code === "EDGE_NODE_BLOCKED" ? edge?.details : {}) });
    response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    response.end(body);
  }
}
