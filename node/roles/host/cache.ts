/**
 * A host's content cache: HTTP caching semantics (RFC 9111, as a shared cache, through http-cache-semantics) over two
 * size-bounded tiers, memory (an LRU of whole bodies) and disk (diskTier.ts). Memory evictions go to disk; a disk
 * hit is promoted to memory; `close()` writes what only memory holds to disk, so a restart keeps the cache.
 *
 * - Only GET and HEAD are served from the cache; they share the GET entry (a HEAD miss fetches with GET, as nginx
 *   does, and answers without a body). Other methods and Range requests go to the origin untouched ("bypass"); an
 *   unsafe method that succeeds drops the URL's entries (RFC 9111 4.4).
 * - Keys are `${site}\nGET\n${url}`, plus the values of the request headers the response varies on: up to 8 variants
 *   per URL (the oldest goes first). `Vary: *`, `private`, `no-store`, Set-Cookie and Authorization (unless the
 *   origin allows it) are never stored.
 * - Freshness is the origin's (s-maxage, max-age, Expires). When it states none, `rules.defaultTtlSeconds` is used as
 *   if it had said `max-age` (the policy sees that header; clients get the origin's own Cache-Control), and 0 stores
 *   nothing; the Last-Modified heuristic is never used. A stale entry is revalidated with its ETag / Last-Modified;
 *   a 304 refreshes it ("revalidated"). `stale-while-revalidate` answers from the stale entry and revalidates in the
 *   background. A client's If-None-Match / If-Modified-Since is answered 304 from a fresh entry.
 * - A miss streams the origin's body to the caller as it arrives and keeps a copy when storable; a body over
 *   `rules.maxObjectBytes`, one that errors, or a caller that goes away stores nothing. Concurrent misses for one URL
 *   share one origin fetch: followers wait for the leader's body and are served from its stored copy (or fetch
 *   themselves if it was not stored; an origin error is theirs too). A URL whose answer could not be stored is
 *   not coalesced for PASS_MS ("hit for pass"): live content is never made to wait on another request.
 */
import CachePolicy from "http-cache-semantics";
import { LRUCache } from "lru-cache";
import { PassThrough, Readable } from "node:stream";

import { isEdgeError } from "../../../offchain/common/errors";
import { CacheStore, type Entry } from "./cacheStore";
import {
  cachedAnswer,
  type CacheRules,
  type Fill,
  fillPolicy,
  flatten,
  refreshedPolicy,
  variantKey,
  withoutConditionals,
} from "./cacheRules";
import { originError, type OriginFetcher, type OriginResponse } from "./origin";

export type { CacheRules };

/** How long a URL whose answer could not be stored skips coalescing ("hit for pass", as Varnish calls it). */
export const PASS_MS = 30_000;

export interface CacheRequest {
  /** Site id: partitions the cache. */
  site: string;
  method: string;
  /** Absolute origin URL, with path and query. */
  url: string;
  /** The client's request headers as forwarded, lower-case names. */
  headers: Record<string, string>;
  body?: Readable;
  rules: CacheRules;
  signal?: AbortSignal;
}

export type CacheOutcome = "hit" | "miss" | "revalidated" | "bypass";

export interface Served {
  status: number;
  headers: Record<string, string | string[]>;
  /** Empty for HEAD and 304. */
  body: Readable;
  cache: CacheOutcome;
  /** Body bytes when known before streaming: the entry's length on a hit, the origin's Content-Length otherwise. */
  bytes?: number;
}

export interface HostCacheStats {
  hits: number;
  misses: number;
  revalidated: number;
  bypass: number;
  memoryBytes: number;
  diskBytes: number;
  entries: number;
}

export interface HostCacheOptions {
  /** Not closed by the cache: its owner closes it. */
  origin: OriginFetcher;
  /** Directory of the disk tier (created if missing). */
  dir: string;
  memoryBytes: number;
  diskBytes: number;
  log: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
  /** Clock in ms (tests); Date.now unless given. */
  now?: () => number;
}

interface Outcome {
  stored: boolean;
  error?: unknown;
}

type Policy = typeof CachePolicy;

export class HostCache {
  private readonly store: CacheStore;
  private readonly flights = new Map<string, Promise<Outcome>>();
  /** URLs whose last answer could not be stored (no-store, private, too large), for PASS_MS: never coalesced. */
  private readonly passes = new LRUCache<string, true>({ max: 10_000, ttl: PASS_MS });
  private readonly counts = { hits: 0, misses: 0, revalidated: 0, bypass: 0 };
  private readonly Policy: Policy;

  constructor(private readonly opts: HostCacheOptions) {
    const now = opts.now ?? Date.now;
    // http-cache-semantics reads the time through its `now()` method (documented as the hook for tests).
    this.Policy = class extends CachePolicy {
      now(): number {
        return now();
      }
    };
    const { dir, memoryBytes, diskBytes, log } = opts;
    this.store = new CacheStore({ dir, memoryBytes, diskBytes, log, Policy: this.Policy });
    this.store.ready.catch((error) => log.warn({ err: error, dir }, "host cache: the disk tier cannot open"));
  }

  async serve(req: CacheRequest): Promise<Served> {
    const method = req.method.toUpperCase();
    await this.store.ready;
    const primary = `${req.site}\nGET\n${req.url}`;
    if ((method !== "GET" && method !== "HEAD") || req.headers.range !== undefined)
      return this.bypass(req, method, primary);
    const found = await this.store.find(primary, req.headers);
    if (found) {
      const verdict = found.policy.evaluateRequest(this.policyRequest(req));
      if (!verdict.revalidation) return this.hit(found, req, "hit");
      if (verdict.response && !verdict.revalidation.synchronous) {
        if (!this.flights.has(primary)) this.revalidateInBackground(req, primary, found);
        return this.hit(found, req, "hit");
      }
    }
    // A URL whose last answer could not be stored is not coalesced: its requests go to the origin side by side.
    const flight = this.passes.has(primary) ? undefined : this.flights.get(primary);
    if (flight) {
      const outcome = await (req.signal ? untilAborted(flight, req.signal) : flight);
      if (isEdgeError(outcome.error)) throw outcome.error;
      const stored = outcome.stored ? await this.store.find(primary, req.headers) : undefined;
      if (stored) return this.hit(stored, req, "hit");
    }
    return this.lead(req, primary, found, false);
  }

  /** Resolves when the disk tier is open and indexed; rejects when its directory cannot be used (a start check). */
  get ready(): Promise<void> {
    return this.store.ready;
  }

  stats(): HostCacheStats {
    const { memoryBytes, diskBytes, entries } = this.store;
    return { ...this.counts, memoryBytes, diskBytes, entries };
  }

  /** Writes what only memory holds to disk and waits for the disk tier (the origin fetcher is its owner's). */
  close(): Promise<void> {
    return this.store.close();
  }

  /**
   * The request as CachePolicy sees it: GET (HEAD shares its entry), and the site id as Host, since the key is
   * (site, URL) and a site's aliases share its entries (CachePolicy matches stored responses on Host).
   */
  private policyRequest(req: CacheRequest): CachePolicy.Request {
    return { url: req.url, method: "GET", headers: { ...req.headers, host: req.site } };
  }

  /** Fetches from the origin (revalidating `stale` if given), registering the fetch for followers when first. */
  private async lead(req: CacheRequest, primary: string, stale: Entry | undefined, quiet: boolean): Promise<Served> {
    let settle: ((outcome: Outcome) => void) | undefined;
    if (!this.flights.has(primary) && !this.passes.has(primary))
      this.flights.set(primary, new Promise<Outcome>((resolve) => (settle = resolve)));
    const done = (outcome: Outcome) => {
      if (!settle) return;
      this.flights.delete(primary);
      settle(outcome);
      settle = undefined;
    };
    try {
      return await this.fetchOrigin(req, primary, stale, quiet, done);
    } catch (error) {
      done({ stored: false, error });
      throw error;
    }
  }

  private revalidateInBackground(req: CacheRequest, primary: string, stale: Entry): void {
    const background = { ...req, method: "HEAD", signal: undefined };
    this.lead(background, primary, stale, true).catch((error) =>
      this.opts.log.warn({ err: error, url: req.url }, "host cache: a background revalidation failed"),
    );
  }

  private async fetchOrigin(
    req: CacheRequest,
    primary: string,
    stale: Entry | undefined,
    quiet: boolean,
    done: (outcome: Outcome) => void,
  ): Promise<Served> {
    const policyReq = this.policyRequest(req);
    // A GET to fill the cache carries no body: a client's Content-Length would make undici refuse it.
    const { "content-length": _length, ...headers } = withoutConditionals(req.headers);
    const sent = stale ? revalidation(stale, policyReq, headers) : headers;
    let res: OriginResponse;
    try {
      res = await this.opts.origin.fetch({ method: "GET", url: req.url, headers: sent, signal: req.signal });
    } catch (error) {
      throw originError(error, req.url);
    }
    const flat = flatten(res.headers);
    if (stale && res.status === 304) {
      discard(res.body, false);
      const { policy, originalCc } = refreshedPolicy(stale, policyReq, flat, req.rules);
      const fresh = this.store.entry(
        stale.key,
        stale.primary,
        stale.vary,
        stale.status,
        policy,
        originalCc,
        stale.body,
      );
      this.store.admit(fresh);
      done({ stored: true });
      if (!quiet) this.counts.revalidated++;
      return this.hit(fresh, req, "revalidated");
    }
    if (stale) this.store.remove(stale.primary, stale.key);
    if (!quiet) this.counts.misses++;
    const fill = fillPolicy(this.Policy, policyReq, res.status, flat, req.rules);
    return this.stream(req, primary, res, fill, done);
  }

  /** Streams a miss to the caller, keeping a copy when `fill` allows and the body stays within the rules. */
  private stream(
    req: CacheRequest,
    primary: string,
    res: OriginResponse,
    fill: Fill | undefined,
    done: (outcome: Outcome) => void,
  ): Served {
    const max = req.rules.maxObjectBytes;
    const declared = Number(flatten(res.headers)["content-length"] ?? NaN);
    const bytes = Number.isSafeInteger(declared) ? declared : undefined;
    let chunks: Buffer[] | undefined = fill && !(declared > max) ? [] : undefined;
    const head = req.method.toUpperCase() === "HEAD";
    const served = { status: res.status, headers: res.headers, cache: "miss" as const, bytes: head ? 0 : bytes };
    if (head && !chunks) {
      discard(res.body, true);
      done({ stored: false });
      return { ...served, body: Readable.from([]) };
    }
    if (!chunks) {
      this.passes.set(primary, true); // "hit for pass": the next requests for it do not wait on each other
      done({ stored: false }); // followers need not wait for a body that will not be kept
    }
    const out = head ? undefined : new PassThrough();
    let size = 0;
    let ended = false;
    res.body.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (chunks && size > max) {
        chunks = undefined;
        done({ stored: false });
      } else chunks?.push(chunk);
      if (!out) {
        if (!chunks) res.body.destroy();
        return;
      }
      // While a copy is kept the chunks are held anyway: read at the origin's pace, so followers wait for the
      // origin rather than for this caller; after that, the caller's pace.
      if (!out.destroyed && !out.write(chunk) && !chunks) {
        res.body.pause();
        out.once("drain", () => res.body.resume());
      }
    });
    res.body.once("end", () => {
      ended = true;
      out?.end();
      const whole = chunks && (bytes === undefined || bytes === size);
      if (whole && fill) {
        const body = Buffer.concat(chunks!, size);
        const key = variantKey(primary, fill.vary, req.headers);
        this.store.admit(this.store.entry(key, primary, fill.vary, res.status, fill.policy, fill.originalCc, body));
        this.passes.delete(primary);
      }
      done({ stored: Boolean(whole && fill) });
    });
    res.body.once("error", (error) => {
      chunks = undefined;
      out?.destroy(originError(error, req.url) as Error);
      done({ stored: false });
    });
    res.body.once("close", () => {
      if (ended) return;
      chunks = undefined;
      if (out && !out.destroyed) out.destroy(new Error("the origin's body ended early"));
      done({ stored: false });
    });
    out?.once("close", () => {
      if (ended) return;
      chunks = undefined;
      res.body.destroy();
    });
    return { ...served, body: out ?? Readable.from([]) };
  }

  private hit(entry: Entry, req: CacheRequest, cache: "hit" | "revalidated"): Served {
    if (cache === "hit") this.counts.hits++;
    const { status, headers } = cachedAnswer(entry, req.headers);
    if (status === 304 || req.method.toUpperCase() === "HEAD")
      return { status, headers, body: Readable.from([]), cache, bytes: 0 };
    return {
      status,
      headers,
      body: Readable.from([entry.body], { objectMode: false }),
      cache,
      bytes: entry.body.length,
    };
  }

  private async bypass(req: CacheRequest, method: string, primary: string): Promise<Served> {
    this.counts.bypass++;
    let res: OriginResponse;
    try {
      res = await this.opts.origin.fetch({
        method,
        url: req.url,
        headers: req.headers,
        body: req.body,
        signal: req.signal,
      });
    } catch (error) {
      throw originError(error, req.url);
    }
    const unsafe = !["GET", "HEAD", "OPTIONS", "TRACE"].includes(method);
    if (unsafe && res.status < 400) this.store.removeAll(primary);
    const declared = Number(flatten(res.headers)["content-length"] ?? NaN);
    const bytes = Number.isSafeInteger(declared) ? declared : undefined;
    return { status: res.status, headers: res.headers, body: res.body, cache: "bypass", bytes };
  }
}

/** Drops a body nobody will read; undici's body emits an error when destroyed early, which nobody else handles. */
function discard(body: Readable, destroy: boolean): void {
  body.on("error", () => undefined);
  if (destroy) body.destroy();
  else body.resume();
}

/** The headers of a revalidation: the client's, without its validators, with the entry's (Host as it came). */
function revalidation(stale: Entry, policyReq: CachePolicy.Request, headers: Record<string, string>) {
  const sent = stale.policy.revalidationHeaders({
    ...policyReq,
    headers: { ...headers, host: policyReq.headers.host },
  });
  const { host: _site, ...rest } = sent as Record<string, string>;
  return headers.host === undefined ? rest : { ...rest, host: headers.host };
}

/** `promise`, or the signal's reason as soon as it aborts (a follower's client that goes away stops waiting). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    void promise.then((value) => {
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    });
  });
}
