/**
 * The certificate service's rules over its database (D64), with no HTTP: challenge responses (one writer per
 * token, a TTL, per-gateway and global limits), order leases (one holder per domain, the holder may extend,
 * per-gateway limit), domains' backoff after failed orders (doubling from --backoff-seconds up to
 * --max-backoff-seconds), issued certificates (checked by ./chain, the key encrypted at rest with the data key)
 * and the gateways' query (keys sealed to the asking device). Every method is synchronous: no request can slip
 * between a check and the write it guards. Expired leases and challenges are swept here (and found expired on
 * access): each expired lease is counted once, as it is deleted.
 */
import type { X509Certificate } from "node:crypto";

import { recoverPublicKey } from "../common/crypto";
import {
  type CertificateEntry,
  type CertificatePut,
  type CertificateQuery,
  type CertificateQueryReply,
  type ChallengePut,
  type ChallengeReply,
  type LeaseReply,
  renewAt,
} from "../common/protocol/certs";
import { seal } from "../common/seal";
import type { SignedRequest } from "./auth";
import { checkCertificate } from "./chain";
import { decryptAtRest, encryptAtRest } from "./dataKey";
import { certsError } from "./errors";
import type { CertsMetrics } from "./metrics";
import type { CertsStore, LeaseRow } from "./store";

export interface CertsLimits {
  challengeTtlMs: number;
  backoffMs: number;
  maxBackoffMs: number;
  maxChallengesPerGateway: number;
  maxLeasesPerGateway: number;
  maxChallenges: number;
  /** The longest one holder keeps a domain's lease without a lapse, from its first take (R19-3). */
  maxLeaseHoldMs: number;
}

export interface BookOptions {
  store: CertsStore;
  dataKey: Buffer;
  /** Trusted roots: Node's public roots and --trust's (R19-1); an uploaded chain must verify to one. */
  roots: readonly X509Certificate[];
  limits: CertsLimits;
  metrics: Pick<CertsMetrics, "orders" | "failures">;
  now: () => number;
}

export interface FailureReply {
  domain: string;
  failures: number;
  backoffUntil: number;
}

export interface StoredReply {
  domain: string;
  fingerprint: string;
  notBefore: number;
  notAfter: number;
  renewAt: number;
}

export class CertsBook {
  constructor(private readonly options: BookOptions) {}

  putChallenge(device: string, token: string, body: ChallengePut): void {
    const { store, limits, now: clock } = this.options;
    if (!body.keyAuthorization.startsWith(`${token}.`))
      throw certsError("CERTS_BAD_REQUEST", "the key authorization is not this token's (token.thumbprint)");
    const now = clock();
    const held = store.challenge(token);
    const live = held !== undefined && held.expiresAt > now;
    if (live && held.writer !== device)
      throw certsError("CERTS_CHALLENGE_HELD", `challenge ${token} is held by another gateway`, {
        details: { writer: held.writer },
      });
    if (!live) {
      if (store.challengeCount(now, device) >= limits.maxChallengesPerGateway)
        throw certsError("CERTS_LIMIT", `this gateway holds ${limits.maxChallengesPerGateway} live challenges`, {
          details: { limit: limits.maxChallengesPerGateway },
        });
      if (store.challengeCount(now) >= limits.maxChallenges)
        throw certsError("CERTS_LIMIT", `the service holds ${limits.maxChallenges} live challenges: retry later`, {
          details: { limit: limits.maxChallenges },
        });
    }
    store.putChallenge({ token, ...body, writer: device, expiresAt: now + limits.challengeTtlMs });
  }

  /** Only the writer deletes; a token that is not there (any more) is already deleted. */
  deleteChallenge(device: string, token: string): void {
    const { store } = this.options;
    const held = store.challenge(token);
    if (held === undefined || held.expiresAt <= this.options.now()) return;
    if (held.writer !== device)
      throw certsError("CERTS_NOT_WRITER", `challenge ${token} was written by another gateway`);
    store.deleteChallenge(token);
  }

  getChallenge(token: string): ChallengeReply {
    const held = this.options.store.challenge(token);
    if (held === undefined || held.expiresAt <= this.options.now())
      throw certsError("CERTS_NOT_FOUND", `no challenge response for token ${token}`);
    return { token, keyAuthorization: held.keyAuthorization };
  }

  /**
   * A lease is granted only when the domain needs an order (R19-3): no live certificate stored, or the stored one
   * is at or past its renewal point. The holder may extend it by taking it again, up to maxLeaseHoldMs from its
   * first take; once there, a re-take is refused (CERTS_LEASE_CAPPED) until the lease lapses.
   */
  takeLease(device: string, domain: string, ttlSeconds: number): LeaseReply {
    const { store, limits } = this.options;
    const now = this.options.now();
    const backoff = store.backoff(domain);
    if (backoff && backoff.until > now)
      throw certsError("CERTS_BACKOFF", `${domain} backs off after ${backoff.failures} failed orders`, {
        details: { backoffUntil: backoff.until, failures: backoff.failures },
      });
    const lease = this.liveLease(domain, now);
    if (lease && lease.holder !== device)
      throw certsError("CERTS_LEASE_HELD", `another gateway is ordering ${domain}`, {
        details: { holder: lease.holder, expiresAt: lease.expiresAt },
      });
    const stored = store.certificate(domain);
    if (stored && stored.notAfter > now && now < renewAt(stored.notBefore, stored.notAfter))
      throw certsError("CERTS_NOT_DUE", `the certificate of ${domain} is not due for renewal`, {
        details: { fingerprint: stored.fingerprint, renewAt: renewAt(stored.notBefore, stored.notAfter) },
      });
    if (!lease && store.leaseCount(now, device) >= limits.maxLeasesPerGateway)
      throw certsError("CERTS_LIMIT", `this gateway holds ${limits.maxLeasesPerGateway} leases`, {
        details: { limit: limits.maxLeasesPerGateway },
      });
    const takenAt = lease ? lease.takenAt : now;
    const until = takenAt + limits.maxLeaseHoldMs;
    if (lease && lease.expiresAt >= until)
      throw certsError("CERTS_LEASE_CAPPED", `this gateway has held the lease on ${domain} as long as allowed`, {
        details: { holder: lease.holder, takenAt, until: lease.expiresAt },
      });
    const expiresAt = Math.min(now + ttlSeconds * 1000, until);
    store.putLease({ domain, holder: device, expiresAt, takenAt });
    return { domain, holder: device, expiresAt };
  }

  releaseLease(device: string, domain: string): void {
    this.requireHolder(device, domain);
    this.options.store.deleteLease(domain, device);
  }

  /** The holder's order failed: the lease ends and the domain backs off, twice as long as after the last failure. */
  orderFailed(device: string, domain: string, reason: string): FailureReply {
    const { store, limits, metrics } = this.options;
    this.requireHolder(device, domain);
    const now = this.options.now();
    const failures = (store.backoff(domain)?.failures ?? 0) + 1;
    const waitMs = Math.min(limits.backoffMs * 2 ** Math.min(failures - 1, 30), limits.maxBackoffMs);
    const reply = { domain, failures, backoffUntil: now + waitMs };
    store.transaction(() => {
      store.deleteLease(domain, device);
      store.putBackoff({ domain, failures, until: reply.backoffUntil }, reason);
    });
    metrics.orders.inc({ outcome: "failed" });
    metrics.failures.inc();
    return reply;
  }

  /** The holder's issued certificate, checked, stored (key encrypted), its lease released, its backoff reset. */
  putCertificate(device: string, domain: string, body: CertificatePut): StoredReply {
    const { store, dataKey, roots, metrics } = this.options;
    this.requireHolder(device, domain);
    const now = this.options.now();
    const checked = checkCertificate(domain, body.chain, body.privateKey, now, roots);
    // Never replaced by one that ends no later (R19-1): the same certificate again is a no-op retry.
    const held = store.certificate(domain);
    if (held && held.fingerprint !== checked.fingerprint && checked.notAfter <= held.notAfter)
      throw certsError("CERTS_NOT_NEWER", `the stored certificate of ${domain} ends no earlier than this one`, {
        details: { storedNotAfter: held.notAfter, notAfter: checked.notAfter },
      });
    const key = encryptAtRest(dataKey, Buffer.from(checked.keyPem, "utf8"), domain);
    const { chain, fingerprint, notBefore, notAfter } = checked;
    store.transaction(() => {
      store.putCertificate({ domain, chain, fingerprint, notBefore, notAfter, key }, device, now);
      store.deleteLease(domain, device);
      store.clearBackoff(domain);
    });
    metrics.orders.inc({ outcome: "issued" });
    return { domain, fingerprint, notBefore, notAfter, renewAt: renewAt(notBefore, notAfter) };
  }

  /** Each domain's certificate for the asking gateway: none, current (it has it) or issued (sealed to it). */
  query(request: SignedRequest, body: CertificateQuery): CertificateQueryReply {
    const { store, dataKey } = this.options;
    const now = this.options.now();
    const have = new Set(body.have ?? []);
    let recipient: Buffer | undefined;
    const certificates = body.domains.map((domain): CertificateEntry => {
      const lease = this.liveLease(domain, now);
      const backoff = store.backoff(domain);
      const state = {
        ...(lease ? { leasedUntil: lease.expiresAt } : {}),
        ...(backoff && backoff.until > now ? { backoffUntil: backoff.until } : {}),
      };
      const row = store.certificate(domain);
      if (!row || row.notAfter <= now) return { domain, status: "none", ...state };
      const { fingerprint, notBefore, notAfter } = row;
      const dates = { fingerprint, notBefore, notAfter, renewAt: renewAt(notBefore, notAfter) };
      if (have.has(fingerprint)) return { domain, status: "current", ...dates, ...state };
      recipient ??= recoverPublicKey(request.digest, request.signature);
      if (!recipient) throw certsError("CERTS_BAD_SIGNATURE", "the request's signature recovers no key");
      const keyPem = decryptAtRest(dataKey, row.key, domain);
      return {
        domain,
        status: "issued",
        ...dates,
        chain: row.chain,
        sealedKey: seal(recipient, keyPem, domain),
        ...state,
      };
    });
    return { certificates };
  }

  /** Deletes expired challenges and leases (each expired lease counted once); the counts. */
  sweep(): { challenges: number; leases: number } {
    const { store, metrics } = this.options;
    const now = this.options.now();
    const challenges = store.sweepChallenges(now);
    const leases = store.sweepLeases(now);
    if (leases > 0) metrics.orders.inc({ outcome: "lease_expired" }, leases);
    return { challenges, leases };
  }

  /** `domain`'s lease if it has not expired; an expired one is deleted (and counted) here. */
  private liveLease(domain: string, now: number): LeaseRow | undefined {
    const { store, metrics } = this.options;
    const lease = store.lease(domain);
    if (!lease || lease.expiresAt > now) return lease;
    if (store.deleteLease(domain, lease.holder)) metrics.orders.inc({ outcome: "lease_expired" });
    return undefined;
  }

  private requireHolder(device: string, domain: string): void {
    const lease = this.liveLease(domain, this.options.now());
    if (!lease || lease.holder !== device)
      throw certsError("CERTS_NOT_HOLDER", `this gateway holds no lease on ${domain}`, {
        details: lease ? { holder: lease.holder, expiresAt: lease.expiresAt } : {},
      });
  }
}
