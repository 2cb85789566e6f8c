/**
 * Catching a host that serves wrong content (issue 16 item 5, the F9 rule for the CDN; D46). The gateway samples
 * one response in `oneIn`, decided by a CSPRNG before the job is dispatched (so it hashes only sampled bodies and a
 * host cannot tell which of its answers are checked), and compares what the host returned with the origin:
 *
 * - Any answer to a GET is checkable, whatever its status (D49: a host answering 404, 500 or 304 to everything is
 *   caught too); other methods are inconclusive without fetching, and so is an answer other than 200 to a
 *   conditional or range request (a 304 or 206 may be right for it; the check fetches unconditionally).
 * - The checker fetches the same URL from the origin with the same request headers (hop-by-hop ones dropped as the
 *   host drops them, and the conditional and range ones too: the check wants the full representation).
 * - Equal status and sha256: **match**.
 * - The host served another status than 200 and the origin answers 200 with stable content (a second fetch gives
 *   the same sha256): **mismatch**. Other statuses at the origin: inconclusive.
 * - A **mismatch** is declared only when the origin's content is shown stable and the host's bytes differ:
 *   (a) the origin's current strong ETag equals the strong ETag the host served, and the bytes differ (a strong
 *   ETag names one sequence of bytes); or
 *   (b) a second origin fetch returns the same sha256 as the first, and the ETag and Last-Modified the host served
 *   (those it served) equal the origin's in both fetches. A host serving a legitimately cached older version with
 *   its older validator is therefore inconclusive, not a mismatch; so is one served under a weak ETag (other bytes
 *   may be equivalent).
 * - Anything else is **inconclusive**: dynamic content (the two fetches differ), changed validators, an origin
 *   error, status or timeout, a body over `maxBytes` (the fetch is aborted there, not read to the end), or too many
 *   checks in flight (`maxConcurrent`, 4 unless given).
 *
 * `check` never throws: every failure is an inconclusive verdict with its reason. Known limits: under (b) an origin
 * without validators whose content changed while a host held a cached copy (its TTL) and has been stable since
 * reads as a mismatch; a host that alters both the bytes and the validators reads as inconclusive. The caller's
 * policy (how many mismatches stop dispatch to a host) should allow for the first.
 */
import { createHash, randomInt } from "node:crypto";
import { request } from "undici";

import { messageOf } from "../../../offchain/common/errors";
import { endToEnd } from "../host/origin";

export interface ServedSample {
  /** The host's x-edge-cache: "hit" and "revalidated" answers may be an older version kept for the site's TTL. */
  cache?: string;
  /** The origin URL the host was asked to serve. */
  url: string;
  /** The request headers the host got (lower-case names). */
  headers: Record<string, string>;
  /** The request's method; GET unless given (only GET is checked, whatever the status served). */
  method?: string;
  status: number;
  etag?: string;
  lastModified?: string;
  /** Hex sha256 of the body bytes the gateway received from the host. */
  sha256: string;
  bytes: number;
}

export type Verdict =
  { outcome: "match" } | { outcome: "mismatch"; reason: string } | { outcome: "inconclusive"; reason: string };

export interface OriginAnswer {
  status: number;
  etag?: string;
  lastModified?: string;
  sha256: string;
  bytes: number;
}

export type OriginFetch = (url: string, headers: Record<string, string>) => Promise<OriginAnswer>;

export interface ContentCheckerOptions {
  /** Check one response in this many (1: every one; 0: none). */
  oneIn: number;
  /** A uniform integer in [0, n): crypto.randomInt unless given (tests inject their own). */
  draw?: (n: number) => number;
  /** Larger bodies, served or at the origin, are inconclusive; an origin fetch is aborted past it. */
  maxBytes: number;
  /** Longest an origin fetch may take, body included. */
  timeoutMs: number;
  /** The origin fetch: undici's request, the body hashed as it streams, unless given. */
  fetchImpl?: OriginFetch;
  /** Checks at once; more are inconclusive without fetching (4 unless given). */
  maxConcurrent?: number;
}

/** Request headers a check does not repeat: it wants the full, current representation. */
const NOT_REPEATED = new Set([
  "if-none-match",
  "if-modified-since",
  "if-match",
  "if-unmodified-since",
  "if-range",
  "range",
]);

/** The headers of a check's origin fetch: the host's request headers as the host forwards them, unconditional. */
export function checkHeaders(headers: Record<string, string>): Record<string, string> {
  const out = endToEnd(headers);
  for (const name of Object.keys(out)) if (NOT_REPEATED.has(name) || name === "content-length") delete out[name];
  return out;
}

const first = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

/**
 * The default origin fetch: GET with undici, no redirects followed, the body hashed while it streams; throws when
 * the origin announces or sends more than `maxBytes` (aborting the transfer there) or takes over `timeoutMs`.
 */
export function originFetch(maxBytes: number, timeoutMs: number): OriginFetch {
  return async (url, headers) => {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    try {
      const res = await request(url, { method: "GET", headers: checkHeaders(headers), signal: controller.signal });
      const tooLarge = () => {
        controller.abort();
        return new Error(`the origin's body is over ${maxBytes} bytes`);
      };
      if (Number(res.headers["content-length"] ?? 0) > maxBytes) throw tooLarge();
      const hash = createHash("sha256");
      let bytes = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > maxBytes) throw tooLarge();
        hash.update(chunk);
      }
      return {
        status: res.statusCode,
        etag: first(res.headers.etag),
        lastModified: first(res.headers["last-modified"]),
        sha256: hash.digest("hex"),
        bytes,
      };
    } catch (error) {
      throw timedOut ? new Error(`the origin took over ${timeoutMs} ms`) : error;
    } finally {
      clearTimeout(timer);
    }
  };
}

const inconclusive = (reason: string): Verdict => ({ outcome: "inconclusive", reason });
const mismatch = (reason: string): Verdict => ({ outcome: "mismatch", reason });
const strong = (etag: string | undefined): etag is string => etag !== undefined && !etag.startsWith("W/");
const describe = (a: { bytes: number; sha256: string }) => `${a.bytes} bytes, sha256 ${a.sha256.slice(0, 16)}…`;

export class ContentChecker {
  private oneIn: number;
  private readonly draw: (n: number) => number;
  private readonly maxBytes: number;
  private readonly fetchImpl: OriginFetch;
  private readonly maxConcurrent: number;
  private inFlight = 0;
  private readonly tally = { checked: 0, match: 0, mismatch: 0, inconclusive: 0 };

  constructor(opts: ContentCheckerOptions) {
    if (!Number.isSafeInteger(opts.oneIn) || opts.oneIn < 0) throw new RangeError("oneIn must be an integer >= 0");
    if (!(opts.maxBytes > 0) || !(opts.timeoutMs > 0)) throw new RangeError("maxBytes and timeoutMs must be > 0");
    this.oneIn = opts.oneIn;
    this.draw = opts.draw ?? randomInt;
    this.maxBytes = opts.maxBytes;
    this.fetchImpl = opts.fetchImpl ?? originFetch(opts.maxBytes, opts.timeoutMs);
    this.maxConcurrent = opts.maxConcurrent ?? 4;
  }

  /** Checks one response in `oneIn` from now on (0: none; a configuration's `dispatch.verifyOneIn`, D54). */
  setOneIn(oneIn: number): void {
    if (!Number.isSafeInteger(oneIn) || oneIn < 0) throw new RangeError("oneIn must be an integer >= 0");
    this.oneIn = oneIn;
  }

  get sampling(): number {
    return this.oneIn;
  }

  /** Whether to check the next response: one in `oneIn`, decided before dispatch. */
  sample(): boolean {
    return this.oneIn > 0 && this.draw(this.oneIn) === 0;
  }

  /** Checks, match, mismatch and inconclusive verdicts so far (for metrics). */
  get counts(): { checked: number; match: number; mismatch: number; inconclusive: number } {
    return { ...this.tally };
  }

  /** The verdict on a sampled response; never throws. */
  async check(s: ServedSample): Promise<Verdict> {
    this.tally.checked += 1;
    let verdict: Verdict;
    try {
      verdict = await this.judge(s);
    } catch (error) {
      verdict = inconclusive(`the check failed: ${messageOf(error)}`);
    }
    this.tally[verdict.outcome] += 1;
    return verdict;
  }

  private async judge(s: ServedSample): Promise<Verdict> {
    const method = (s.method ?? "GET").toUpperCase();
    if (method !== "GET") return inconclusive(`only answers to GET are checked (${method} ${s.status})`);
    const conditional = Object.keys(s.headers).some((name) => NOT_REPEATED.has(name.toLowerCase()));
    if (s.status !== 200 && conditional)
      return inconclusive(`a ${s.status} answer to a conditional or range request is not checked`);
    if (s.bytes > this.maxBytes)
      return inconclusive(`the served body (${s.bytes} bytes) is over ${this.maxBytes} bytes`);
    if (this.inFlight >= this.maxConcurrent) return inconclusive(`${this.inFlight} checks in flight already`);
    this.inFlight += 1;
    try {
      return await this.compare(s);
    } finally {
      this.inFlight -= 1;
    }
  }

  private async fetchOrigin(s: ServedSample): Promise<OriginAnswer | string> {
    try {
      return await this.fetchImpl(s.url, s.headers);
    } catch (error) {
      return `the origin fetch failed: ${messageOf(error)}`;
    }
  }

  private async compare(s: ServedSample): Promise<Verdict> {
    const origin = await this.fetchOrigin(s);
    if (typeof origin === "string") return inconclusive(origin);
    if (origin.status === s.status && origin.sha256 === s.sha256) return { outcome: "match" };
    if (origin.status !== 200) return inconclusive(`the origin answers ${origin.status} now`);
    if (s.status !== 200) return this.otherStatus(s, origin);
    const differ = `the host served ${describe(s)}, the origin ${describe(origin)}`;
    // (a) A strong ETag names one sequence of bytes: the origin vouches for the ETag the host sent.
    if (strong(s.etag) && origin.etag === s.etag) return mismatch(`${differ} under the same strong ETag ${s.etag}`);
    const again = await this.fetchOrigin(s);
    if (typeof again === "string") return inconclusive(again);
    if (again.status !== 200 || again.sha256 !== origin.sha256)
      return inconclusive("the origin's content is not stable: two fetches differ");
    // (b) Stable content; the validators the host served must be the origin's, else it may hold an older version.
    if (s.etag !== undefined && !strong(s.etag)) return inconclusive(`a weak ETag (${s.etag}) allows other bytes`);
    for (const [name, served, now, next] of [
      ["ETag", s.etag, origin.etag, again.etag],
      ["Last-Modified", s.lastModified, origin.lastModified, again.lastModified],
    ] as const) {
      if (served !== undefined && (served !== now || served !== next))
        return inconclusive(`the host served ${name} ${served}, the origin has ${now ?? "none"}: another version`);
    }
    if (!s.etag && !s.lastModified) {
      // No validators served. The origin has some: the host's cache keeps them, so it dropped them.
      if (strong(origin.etag) || origin.lastModified)
        return mismatch(`${differ} without the origin's validators, and the origin's content is stable`);
      // Neither has any: a copy kept for the site's defaultTtlSeconds may be an older version (not a cheat).
      if (s.cache === "hit" || s.cache === "revalidated")
        return inconclusive("a cached copy without validators may be an older version of stable content");
    }
    const validators = s.etag || s.lastModified ? ", same validators" : ", no validators";
    return mismatch(`${differ}, and the origin's content is stable (two fetches agree${validators})`);
  }

  /** The host answered `s.status` (not 200) where the origin answers 200: a mismatch once that content is stable. */
  private async otherStatus(s: ServedSample, origin: OriginAnswer): Promise<Verdict> {
    const again = await this.fetchOrigin(s);
    if (typeof again === "string") return inconclusive(again);
    if (again.status !== 200 || again.sha256 !== origin.sha256)
      return inconclusive("the origin's content is not stable: two fetches differ");
    return mismatch(`the host answered ${s.status}, the origin 200 with stable content (${describe(origin)})`);
  }
}
