/**
 * ACME HTTP-01 challenges at the gateway's plain HTTP front door (D65): GET /.well-known/acme-challenge/<token>
 * for a Host that is one of the gateway's sites (R19-2: any other Host is 404 with no fetch), taken before the
 * site's own handling (and before the blocklist: the CA must reach it), answered from the certificate service, so
 * a challenge written by the gateway that ordered is answered by whichever gateway the CA reaches.
 *
 * Cheap first: the token's shape (ACME_TOKEN_PATTERN) before anything else (a malformed one is 404 with no fetch);
 * the Host; then the cache (answers kept 30 s, misses 1 s, at most 10,000 tokens, least recently used out first);
 * then a per-client budget of fetches (R19-2: 120 a minute per client address, IPv6 by /64, at most 10,000
 * addresses kept; over it 429 with no fetch, so a flood of random tokens cannot spend the service's per-address
 * budget of this gateway); then one fetch per token at a time (others asking for it wait on the same fetch), at
 * most 32 fetches in flight (503 beyond, the CA retries). Without --certs the path is 404.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

import { messageOf } from "../../../offchain/common/errors";
import { KeyedLimiter, clientKey } from "../../../offchain/common/tokenBucket";
import { ACME_TOKEN_PATTERN, type ChallengeReply } from "../../../offchain/common/protocol/certs";
import type { GatewayContext } from "../../context";
import type { CertMetrics } from "./certMetrics";

export const CHALLENGE_PREFIX = "/.well-known/acme-challenge/";

const LIMITED = Symbol("limited");

export interface ChallengeLimits {
  positiveMs: number;
  negativeMs: number;
  maxEntries: number;
  maxInFlight: number;
  /** Fetches from the service one client address may cause a minute (also the burst). */
  fetchesPerClientPerMinute: number;
  /** Client addresses whose fetch budget is kept (the longest idle forgotten first). */
  maxClients: number;
}

export const CHALLENGE_LIMITS: ChallengeLimits = {
  positiveMs: 30_000,
  negativeMs: 1_000,
  maxEntries: 10_000,
  maxInFlight: 32,
  fetchesPerClientPerMinute: 120,
  maxClients: 10_000,
};

interface Entry {
  keyAuthorization: string | null;
  expires: number;
}

export class ChallengeResponder {
  private readonly cache = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<string | null>>();
  private readonly clients: KeyedLimiter;
  /** Fetches made from the service (for status and tests). */
  fetches = 0;

  /** `isSite(host)`: whether a Host header names one of the gateway's sites (only theirs are answered). */
  constructor(
    private readonly source: { getChallenge(token: string): Promise<ChallengeReply | undefined> } | undefined,
    private readonly metrics: Pick<CertMetrics, "challenges">,
    private readonly log: Pick<GatewayContext["log"], "warn">,
    private readonly isSite: (host: string | undefined) => boolean,
    private readonly limits: ChallengeLimits = CHALLENGE_LIMITS,
  ) {
    this.clients = new KeyedLimiter(limits.fetchesPerClientPerMinute, limits.maxClients);
  }

  /** True when the request is a challenge's (and is answered here); false: the front door's to serve. */
  handle(request: IncomingMessage, response: ServerResponse): boolean {
    const path = challengePath(request.url);
    if (path === undefined) return false;
    const token = path.slice(CHALLENGE_PREFIX.length);
    if (request.method !== "GET" && request.method !== "HEAD") {
      this.answer(response, 405, "only GET or HEAD", "malformed", request.method);
      return true;
    }
    if (!this.source) {
      this.answer(response, 404, "no certificate service", "disabled", request.method);
      return true;
    }
    if (!ACME_TOKEN_PATTERN.test(token)) {
      this.answer(response, 404, "not an ACME token", "malformed", request.method);
      return true;
    }
    if (!this.isSite(request.headers.host)) {
      this.answer(response, 404, "not a site of this gateway", "unknown_host", request.method);
      return true;
    }
    const client = clientKey(request.socket.remoteAddress ?? "");
    this.lookup(token, client).then(
      (keyAuthorization) =>
        keyAuthorization === LIMITED
          ? this.answer(response, 429, "too many challenge lookups from this address", "limited", request.method)
          : keyAuthorization === undefined
            ? this.answer(response, 503, "too many challenges are being fetched: retry", "busy", request.method)
            : keyAuthorization === null
              ? this.answer(response, 404, "no such challenge", "not_found", request.method)
              : this.answer(response, 200, keyAuthorization, "served", request.method),
      (error: Error) => {
        this.log.warn({ err: messageOf(error) }, "could not read an ACME challenge from the certificate service");
        this.answer(response, 503, "the certificate service is unavailable: retry", "failed", request.method);
      },
    );
    return true;
  }

  get cached(): number {
    return this.cache.size;
  }

  /**
   * The key authorization, null when the service has none, undefined when over the in-flight cap, LIMITED when
   * `client` has used its fetches (hits from the cache and joining a fetch under way cost nothing).
   */
  private async lookup(token: string, client: string): Promise<string | null | undefined | typeof LIMITED> {
    const now = Date.now();
    const hit = this.cache.get(token);
    if (hit && hit.expires > now) {
      this.cache.delete(token); // least recently used goes first: re-insert at the end
      this.cache.set(token, hit);
      return hit.keyAuthorization;
    }
    const pending = this.inFlight.get(token);
    if (pending) return pending;
    if (this.clients.take(client, now) !== undefined) return LIMITED;
    if (this.inFlight.size >= this.limits.maxInFlight) return undefined;
    const fetching = this.fetch(token).finally(() => this.inFlight.delete(token));
    this.inFlight.set(token, fetching);
    return fetching;
  }

  private async fetch(token: string): Promise<string | null> {
    this.fetches++;
    const reply = await this.source!.getChallenge(token);
    // A reply for another token, or not `token.thumbprint`, is not this challenge's.
    const keyAuthorization =
      reply && reply.token === token && reply.keyAuthorization.startsWith(`${token}.`) ? reply.keyAuthorization : null;
    this.remember(token, keyAuthorization);
    return keyAuthorization;
  }

  private remember(token: string, keyAuthorization: string | null): void {
    this.cache.delete(token);
    const ttl = keyAuthorization === null ? this.limits.negativeMs : this.limits.positiveMs;
    this.cache.set(token, { keyAuthorization, expires: Date.now() + ttl });
    while (this.cache.size > this.limits.maxEntries) this.cache.delete(this.cache.keys().next().value!);
  }

  private answer(response: ServerResponse, status: number, body: string, outcome: string, method?: string): void {
    this.metrics.challenges.inc({ outcome });
    if (response.destroyed) return;
    response.writeHead(status, {
      "content-type": "text/plain",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
    });
    response.end(method === "HEAD" ? undefined : body);
  }
}

/** The request's path when it is a challenge's (origin or absolute form, query ignored); otherwise undefined. */
export function challengePath(url: string | undefined): string | undefined {
  let raw = url ?? "/";
  if (!raw.startsWith("/")) {
    try {
      raw = new URL(raw).pathname;
    } catch {
      return undefined;
    }
  }
  const path = raw.split("?", 1)[0];
  return path.startsWith(CHALLENGE_PREFIX) ? path : undefined;
}
