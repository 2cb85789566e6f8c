/**
 * A host's fetches from a site's origin: one undici Agent (keep-alive connections, at most `connectionsPerOrigin`
 * per origin), no redirects followed (a 3xx goes back to the client as it came), hop-by-hop headers stripped both
 * ways. An origin that cannot be reached (refused, reset, unknown name) raises EDGE_NODE_ORIGIN_UNREACHABLE (502);
 * one that does not answer in time raises EDGE_NODE_ORIGIN_TIMEOUT (504). A caller's abort (its `signal`) is
 * rethrown as it is: nobody is waiting for an answer to map. Errors of the body stream after the headers are
 * undici's own; `originError` maps them the same way for a caller that wants to (the cache does).
 */
import { type LookupAddress, type LookupOptions, lookup } from "node:dns";
import { BlockList, isIP } from "node:net";
import type { Readable } from "node:stream";
import { Agent, errors as undiciErrors } from "undici";

import { isEdgeError } from "../../../offchain/common/errors";
import { nodeError } from "../../errors";

export interface OriginRequest {
  method: string;
  /** Absolute http(s) URL at the origin, with path and query. */
  url: string;
  headers: Record<string, string>;
  body?: Readable;
  signal?: AbortSignal;
}

export interface OriginResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Readable;
}

export interface OriginFetcher {
  fetch(req: OriginRequest): Promise<OriginResponse>;
  close(): Promise<void>;
}

export interface OriginOptions {
  /** Keep-alive connections per origin (undici's `connections`); 32 unless given. */
  connectionsPerOrigin?: number;
  /** Time to the response's headers (and to connect), ms; 10 s unless given. */
  headersTimeoutMs?: number;
  /** Longest pause between two body chunks, ms; 30 s unless given. */
  bodyTimeoutMs?: number;
  /** Fetch from private, loopback and link-local addresses too (tests, the devnet); refused unless true (D48). */
  allowPrivateOrigins?: boolean;
}

/** Hop-by-hop headers (RFC 9110 7.6.1) plus the ones undici sets itself or refuses (host, expect). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "expect",
]);

/** `headers` without hop-by-hop fields, nor those named in its Connection header. Names come out lower-case. */
export function endToEnd<V extends string | string[]>(headers: Record<string, V | undefined>): Record<string, V> {
  const named = new Set<string>();
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() !== "connection" || value === undefined) continue;
    for (const token of ([] as string[]).concat(value).join(",").split(",")) named.add(token.trim().toLowerCase());
  }
  const out: Record<string, V> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(lower) || lower.startsWith("proxy-") || named.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}

const TIMEOUT_CODES = new Set([
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "ETIMEDOUT",
]);

/** True for a caller's abort (its signal), which is not the origin's fault. */
export function isAbort(error: unknown): boolean {
  const e = error as { name?: string; code?: string };
  return e?.name === "AbortError" || e?.code === "UND_ERR_ABORTED" || e?.code === "ABORT_ERR";
}

/**
 * The typed error for a failure talking to `url`'s origin: EDGE_NODE_ORIGIN_TIMEOUT for a connect, headers or body
 * timeout, EDGE_NODE_ORIGIN_UNREACHABLE for anything else. EdgeErrors and aborts are returned unchanged.
 */
export function originError(error: unknown, url: string): unknown {
  if (isEdgeError(error) || isAbort(error)) return error;
  const e = error as { code?: string; cause?: { code?: string }; message?: string };
  const code = e?.code ?? e?.cause?.code ?? "unknown";
  const origin = safeOrigin(url);
  const timedOut =
    TIMEOUT_CODES.has(code) ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError;
  return timedOut
    ? nodeError("EDGE_NODE_ORIGIN_TIMEOUT", `the origin ${origin} did not answer in time (${code})`, {
        details: { origin, reason: code },
        cause: error,
      })
    : nodeError("EDGE_NODE_ORIGIN_UNREACHABLE", `the origin ${origin} cannot be reached (${code})`, {
        details: { origin, reason: code },
        cause: error,
      });
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid URL)";
  }
}

/**
 * Addresses a host never fetches from unless told to (D48): its own machine, its private networks, link-local,
 * carrier-grade NAT, multicast and reserved ranges, and the IPv6 ranges that embed an IPv4 address (NAT64,
 * 6to4, IPv4-compatible; D49) whatever it is. Sites' origins are public servers; a gateway that names an
 * origin in here (compromised, or a forged sites file) would make hosts probe their operators' own networks.
 */
export const PRIVATE_ADDRESSES = (() => {
  const list = new BlockList();
  for (const [net, prefix] of [
    ["0.0.0.0", 8],
    ["10.0.0.0", 8],
    ["100.64.0.0", 10],
    ["127.0.0.0", 8],
    ["169.254.0.0", 16],
    ["172.16.0.0", 12],
    ["192.0.0.0", 24],
    ["192.168.0.0", 16],
    ["198.18.0.0", 15],
    ["224.0.0.0", 4],
    ["240.0.0.0", 4],
  ] as const)
    list.addSubnet(net, prefix, "ipv4");
  for (const [net, prefix] of [
    ["::", 96], // unspecified, loopback and IPv4-compatible (::a.b.c.d, deprecated): ::7f00:1 is 127.0.0.1
    ["64:ff9b::", 96], // NAT64 (RFC 6052): the gateway's IPv4 behind it may be private
    ["64:ff9b:1::", 48], // local-use NAT64 (RFC 8215)
    ["2002::", 16], // 6to4 (RFC 3056): wraps any IPv4 address, 2002:7f00:1:: is 127.0.0.1
    ["fc00::", 7],
    ["fe80::", 10],
    ["ff00::", 8],
  ] as const)
    list.addSubnet(net, prefix, "ipv6");
  return list;
})();

/** Whether `address` (an IP literal) is one a host must not fetch from; IPv4-mapped IPv6 is judged as IPv4. */
export function isPrivateAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return PRIVATE_ADDRESSES.check(mapped[1], "ipv4");
  const family = isIP(bare);
  if (family === 0) return false;
  return PRIVATE_ADDRESSES.check(bare, family === 4 ? "ipv4" : "ipv6");
}

/** dns.lookup that refuses private answers (net.connect's `lookup`: names resolved at connect time). */
function publicLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  lookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, "", 0);
    const ok = addresses.filter((a) => !isPrivateAddress(a.address));
    if (ok.length === 0) {
      const refused = Object.assign(new Error(`${hostname} resolves to private addresses only`), { code: "EPRIVATE" });
      return callback(refused, "", 0);
    }
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, ok);
    callback(null, ok[0].address, ok[0].family);
  });
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string, family: number) => void;

export function createOriginFetcher(opts: OriginOptions = {}): OriginFetcher {
  const headersTimeout = opts.headersTimeoutMs ?? 10_000;
  const blockPrivate = !opts.allowPrivateOrigins;
  const agent = new Agent({
    ...(blockPrivate ? { connect: { lookup: publicLookup as never } } : {}),
    connections: opts.connectionsPerOrigin ?? 32,
    headersTimeout,
    bodyTimeout: opts.bodyTimeoutMs ?? 30_000,
    connectTimeout: headersTimeout,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
  });
  return {
    async fetch(req: OriginRequest): Promise<OriginResponse> {
      let url: URL;
      try {
        url = new URL(req.url);
      } catch (error) {
        throw nodeError("EDGE_NODE_ORIGIN_UNREACHABLE", `not an origin URL: ${req.url}`, { cause: error });
      }
      if (url.protocol !== "http:" && url.protocol !== "https:")
        throw nodeError("EDGE_NODE_ORIGIN_UNREACHABLE", `not an http(s) origin URL: ${req.url}`);
      // An IP literal is never looked up: checked here. A name is checked at connect time (publicLookup).
      if (blockPrivate && isPrivateAddress(url.hostname))
        throw nodeError("EDGE_NODE_ORIGIN_FORBIDDEN", `the origin ${url.origin} is a private address`);
      try {
        const res = await agent.request({
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: req.method as "GET",
          headers: endToEnd(req.headers),
          body: req.body,
          signal: req.signal,
        });
        return {
          status: res.statusCode,
          headers: endToEnd(res.headers as Record<string, string | string[] | undefined>),
          body: res.body,
        };
      } catch (error) {
        if (
          (error as { code?: string }).code === "EPRIVATE" ||
          (error as { cause?: { code?: string } }).cause?.code === "EPRIVATE"
        )
          throw nodeError("EDGE_NODE_ORIGIN_FORBIDDEN", `the origin ${url.origin} resolves to private addresses only`);
        throw originError(error, req.url);
      }
    },
    close: () => agent.close(),
  };
}
