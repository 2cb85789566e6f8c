/**
 * The front door's HTTP helpers (cdn.ts): reading a site request's body within its bound, the response headers a
 * client gets from a host's answer, and a host's own errors as the client sees them.
 */
import type { IncomingMessage } from "node:http";
import type http2 from "node:http2";

import { type EdgeError, isEdgeError } from "../../../offchain/common/errors";
import { NODE_ERRORS, type NodeErrorCode, nodeError } from "../../errors";
import type { HostLink } from "./links";
import type { JobQueue, QueuedJob } from "./queue";
import type { Site } from "./sites";

/** Largest request body a site's request may carry (it is held until a host takes the job, for a retry). */
export const MAX_REQUEST_BODY = 1024 * 1024;
/** Request headers never forwarded to the host (hop-by-hop, or the gateway's own). */
const DROPPED = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"]);
DROPPED.add("trailer").add("host").add("http2-settings").add("proxy-authorization");
/** Response headers of the host that stay between gateway and host. */
const HOST_ONLY = ["x-edge-error"];

/** The client left before the response ended. */
export class ClientGone extends Error {
  constructor() {
    super("the client closed the connection");
  }
}

/**
 * A host's own error (`x-edge-error`) as the client sees it: only the codes a host may raise pass (the origin's
 * failures, a forbidden origin), with the gateway's message; anything else is 502 EDGE_NODE_HOST_FAILED. A host
 * never puts its words, nor a 402 or a 404 of its choosing, in front of a customer's client.
 */
const HOST_CODES = [
  "EDGE_NODE_ORIGIN_UNREACHABLE",
  "EDGE_NODE_ORIGIN_TIMEOUT",
  "EDGE_NODE_ORIGIN_FORBIDDEN",
  "EDGE_NODE_ORIGIN_INVALID",
] as const;

export function hostFailure(host: string, code: string): EdgeError {
  const ours = (HOST_CODES as readonly string[]).includes(code) && Object.hasOwn(NODE_ERRORS, code);
  const known = ours ? (code as NodeErrorCode) : "EDGE_NODE_HOST_FAILED";
  return nodeError(known, `host ${host} could not serve the request (${known})`);
}

/** Whether a host's failure was the origin's (the host could not reach it), not the host's own. */
export function isOriginError(error: unknown): boolean {
  return (
    isEdgeError(error) && (error.code === "EDGE_NODE_ORIGIN_UNREACHABLE" || error.code === "EDGE_NODE_ORIGIN_TIMEOUT")
  );
}

/**
 * The host and path a request names: an absolute-form target (`GET http://site/path`) names its own authority,
 * which wins over Host (RFC 9112 3.2.2); otherwise the Host header and the origin-form path.
 */
export function requestTarget(request: IncomingMessage): { host: string | undefined; path: string } {
  const raw = request.url ?? "/";
  if (raw.startsWith("/")) return { host: request.headers.host, path: raw };
  try {
    const url = new URL(raw);
    if (url.protocol === "http:" || url.protocol === "https:")
      return { host: url.host, path: url.pathname + url.search };
  } catch {
    // not a URL: no site
  }
  return { host: undefined, path: "/" };
}

/** The host's response headers as the client gets them. */
export function responseHeaders(h: http2.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(h)) {
    if (value === undefined || name.startsWith(":") || HOST_ONLY.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

/** The request's body (at most MAX_REQUEST_BODY bytes), or null for a request without one. */
export async function readBody(request: IncomingMessage): Promise<Buffer | null> {
  const declared = Number(request.headers["content-length"] ?? 0);
  if (declared > MAX_REQUEST_BODY)
    throw nodeError("EDGE_NODE_BODY_TOO_LARGE", `a request body is at most ${MAX_REQUEST_BODY} bytes`);
  if (declared === 0 && request.headers["transfer-encoding"] === undefined) {
    request.resume();
    return null;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_REQUEST_BODY)
      throw nodeError("EDGE_NODE_BODY_TOO_LARGE", `a request body is at most ${MAX_REQUEST_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The request as the host gets it: the client's method, path and end-to-end headers, plus the site's rules. */
export function forwardedHeaders(
  site: Site,
  request: IncomingMessage,
  path: string,
  jobId: string,
): http2.OutgoingHttpHeaders {
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
    ":path": path,
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

export interface Attempt {
  link: HostLink;
  stream?: http2.ClientHttp2Stream;
  error?: Error;
}

/**
 * Waits for a host's slot (where the queue's engine places the site's job, sitePlacement.ts) and opens the job's stream
 * on its link; a stream that cannot be opened (a link going away) resolves with the error, so the caller retries
 * elsewhere. A job whose client left while it waited is dropped from the queue, never started.
 */
export function startAttempt(
  queue: Pick<JobQueue<HostLink>, "submit" | "done">,
  job: { headers: http2.OutgoingHttpHeaders; body: Buffer | null; avoid?: string; client: { gone: boolean } },
  hosts: Pick<QueuedJob<HostLink>, "site" | "origin">,
): Promise<Attempt> {
  const { headers, body, avoid, client } = job;
  return new Promise((resolve, reject) =>
    queue.submit({
      avoid,
      ...hosts,
      expire: (error) => reject(client.gone ? new ClientGone() : error),
      cancelled: () => client.gone,
      run: (link, startedAt) => {
        if (client.gone) {
          queue.done(link);
          return reject(new ClientGone());
        }
        try {
          const stream = link.request(headers, body === null);
          if (body !== null) stream.end(body);
          // The job's time on the host counts to its response head (R20-4): relaying the body to a slow client is
          // the client's time, and must not raise the region's p99 (D69). `done` takes the start it measures from.
          let headAt: number | undefined;
          stream.once("response", () => (headAt = Date.now()));
          stream.on("close", () => queue.done(link, startedAt + (headAt === undefined ? 0 : Date.now() - headAt)));
          resolve({ link, stream });
        } catch {
          queue.done(link);
          resolve({ link, error: nodeError("EDGE_NODE_HOST_FAILED", `host ${link.host}'s link cannot take a job`) });
        }
      },
    }),
  );
}
