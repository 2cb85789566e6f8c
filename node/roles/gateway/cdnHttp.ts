/**
 * The front door's HTTP helpers (cdn.ts): reading a site request's body within its bound, the response headers a
 * client gets from a host's answer, and a host's own errors as the client sees them.
 */
import type { IncomingMessage } from "node:http";
import type http2 from "node:http2";

import type { EdgeError } from "../../../offchain/common/errors";
import { NODE_ERRORS, type NodeErrorCode, nodeError } from "../../errors";

/** Largest request body a site's request may carry (it is held until a host takes the job, for a retry). */
export const MAX_REQUEST_BODY = 1024 * 1024;
/** Response headers of the host that stay between gateway and host. */
const HOST_ONLY = ["x-edge-error"];

/** The client left before the response ended. */
export class ClientGone extends Error {
  constructor() {
    super("the client closed the connection");
  }
}

/** A host's own error (`x-edge-error`): its code when it is one of ours (origin unreachable: 502, ...). */
export function hostFailure(host: string, code: string, body: string): EdgeError {
  let message = "";
  try {
    message = (JSON.parse(body) as { error?: string }).error ?? "";
  } catch {
    // not JSON: the code says enough
  }
  const known = Object.hasOwn(NODE_ERRORS, code) ? (code as NodeErrorCode) : "EDGE_NODE_HOST_FAILED";
  return nodeError(known, `host ${host} could not serve the request (${code.slice(0, 64)}): ${message.slice(0, 300)}`);
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
