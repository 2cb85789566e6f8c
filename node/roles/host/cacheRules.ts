/**
 * The HTTP rules of the host's cache (cache.ts) around http-cache-semantics' CachePolicy: whether a response may be
 * stored and under which policy (with the site's default freshness when the origin states none), how a 304
 * refreshes a stored policy, the headers a cached answer carries, and the key of a Vary variant.
 */
import CachePolicy from "http-cache-semantics";

export interface CacheRules {
  /** Freshness (s) when the origin gives none; 0 = store nothing without origin freshness. */
  defaultTtlSeconds: number;
  /** Larger bodies are streamed through without being stored. */
  maxObjectBytes: number;
}

/** How a response may be stored: its policy, the origin's Cache-Control when the default freshness was added. */
export interface Fill {
  policy: CachePolicy;
  /** Set when the freshness is the cache's default: the origin's own Cache-Control (null: it sent none). */
  originalCc?: string | null;
  /** The request header names the response varies on, lower-case, sorted, comma-joined ("" for none). */
  vary: string;
}

/** Shared cache (private and s-maxage as a proxy), and never the Last-Modified heuristic: the site's default rules. */
export const POLICY_OPTIONS = { shared: true, cacheHeuristic: 0 };
const HEADERS_OF_304 = ["cache-control", "content-location", "date", "etag", "expires", "vary", "age", "last-modified"];
const EXPLICIT_FRESHNESS = /(?:^|,)\s*(?:s-maxage|max-age)\s*=/i;

/**
 * The policy under which a response may be stored, or undefined when it may not: never with Set-Cookie or
 * `Vary: *`, never what CachePolicy refuses (no-store, private, Authorization, uncacheable status), never without
 * freshness or a validator. Without origin freshness (s-maxage, max-age, Expires), `defaultTtlSeconds` is added as
 * `max-age` for the policy only (not s-maxage, which would make an authorized response storable); 0 stores nothing.
 */
export function fillPolicy(
  Policy: typeof CachePolicy,
  req: CachePolicy.Request,
  status: number,
  flat: Record<string, string>,
  rules: CacheRules,
): Fill | undefined {
  if (flat["set-cookie"] !== undefined) return undefined;
  const vary = varySpec(flat.vary);
  if (vary === "*") return undefined;
  const cc = flat["cache-control"];
  let headers = flat;
  let originalCc: string | null | undefined;
  if (!(cc !== undefined && EXPLICIT_FRESHNESS.test(cc)) && flat.expires === undefined) {
    const ttl = Math.floor(rules.defaultTtlSeconds);
    if (!(ttl > 0)) return undefined;
    headers = { ...flat, "cache-control": cc ? `${cc}, max-age=${ttl}` : `max-age=${ttl}` };
    originalCc = cc ?? null;
  }
  const policy = new Policy(req, { status, headers }, POLICY_OPTIONS);
  if (!policy.storable()) return undefined;
  if (policy.maxAge() <= 0 && flat.etag === undefined && flat["last-modified"] === undefined) return undefined;
  return { policy, originalCc, vary };
}

/**
 * A stored policy refreshed by a 304: its headers replace the stored ones (CachePolicy.revalidatedPolicy); a new
 * Cache-Control without freshness gets the default again, one without Cache-Control keeps the stored one.
 */
export function refreshedPolicy(
  stale: { policy: CachePolicy; originalCc?: string | null },
  req: CachePolicy.Request,
  flat: Record<string, string>,
  rules: CacheRules,
): { policy: CachePolicy; originalCc?: string | null } {
  let headers = flat;
  let originalCc = stale.originalCc;
  const cc = flat["cache-control"];
  if (cc !== undefined) {
    const ttl = Math.floor(rules.defaultTtlSeconds);
    const explicit = EXPLICIT_FRESHNESS.test(cc) || flat.expires !== undefined;
    originalCc = explicit || !(ttl > 0) ? undefined : cc;
    if (originalCc !== undefined) headers = { ...flat, "cache-control": `${cc}, max-age=${ttl}` };
  }
  return { policy: stale.policy.revalidatedPolicy(req, { status: 304, headers }).policy, originalCc };
}

/**
 * The status and headers of an answer from a stored entry: the policy's (Age and Date updated, hop-by-hop removed),
 * the origin's own Cache-Control, the body's length; a 304 with the validators only when the client's conditional
 * request is satisfied.
 */
export function cachedAnswer(
  entry: { policy: CachePolicy; originalCc?: string | null; status: number; body: Buffer },
  request: Record<string, string>,
): { status: number; headers: Record<string, string> } {
  const headers = entry.policy.responseHeaders() as Record<string, string>;
  if (entry.originalCc === null) delete headers["cache-control"];
  else if (entry.originalCc !== undefined) headers["cache-control"] = entry.originalCc;
  if (entry.status !== 204) headers["content-length"] = String(entry.body.length);
  if (entry.status !== 200 || !notModified(request, headers)) return { status: entry.status, headers };
  const kept = Object.fromEntries(Object.entries(headers).filter(([name]) => HEADERS_OF_304.includes(name)));
  return { status: 304, headers: kept };
}

/** Whether a client's conditional request is satisfied by these (cached, fresh) response headers. */
function notModified(request: Record<string, string>, response: Record<string, string>): boolean {
  const weak = (tag: string) => tag.trim().replace(/^W\//, "");
  const inm = request["if-none-match"];
  if (inm !== undefined) {
    if (inm.trim() === "*") return true;
    const etag = response.etag;
    return etag !== undefined && inm.split(",").some((tag) => weak(tag) === weak(etag));
  }
  const ims = Date.parse(request["if-modified-since"] ?? "");
  const lastModified = Date.parse(response["last-modified"] ?? "");
  return Number.isFinite(ims) && Number.isFinite(lastModified) && lastModified <= ims;
}

/** The key of the variant of `primary` that `headers` select under `vary` (names, lower-case, sorted). */
export function variantKey(primary: string, vary: string, headers: Record<string, string>): string {
  if (vary === "") return primary;
  return `${primary}\n${vary
    .split(",")
    .map((name) => `${name}=${headers[name] ?? ""}`)
    .join("\n")}`;
}

export function varySpec(vary: string | undefined): string {
  if (vary === undefined) return "";
  const names = [...new Set(vary.split(",").map((n) => n.trim().toLowerCase()))].filter((n) => n !== "");
  return names.includes("*") ? "*" : names.sort().join(",");
}

/** Header values as one string each (a repeated header joined with ", "), for CachePolicy. */
export function flatten(headers: Record<string, string | string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = Array.isArray(value) ? value.join(", ") : value;
  return out;
}

/** The client's headers without its own validators: a fill or revalidation asks the origin for the cache. */
export function withoutConditionals(headers: Record<string, string>): Record<string, string> {
  if (headers["if-none-match"] === undefined && headers["if-modified-since"] === undefined) return headers;
  const { "if-none-match": _inm, "if-modified-since": _ims, ...rest } = headers;
  return rest;
}
