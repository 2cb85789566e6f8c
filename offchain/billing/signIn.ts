/**
 * Customers' sign-in with their wallet (EIP-4361, "Sign-In with Ethereum") and their sessions: a single-use
 * nonce inside a message naming our domain and chain (5 minutes to sign it), then a bearer token for
 * `tokenTtlMs`. Nonces and sessions live in memory: a restart signs everyone out. Time comes from the injected
 * clock; no HTTP here.
 *
 * Bounded against floods (D42, F6): at most `maxNonces` nonces are held (then 429 BILLING_SIGN_IN_BUSY), each
 * client address (the caller's IP) gets `noncesPerMinute` nonces as a refilling bucket (then 429
 * BILLING_NONCE_RATE_LIMITED), and nonces, sessions and buckets all have one lifetime each, so they expire in
 * insertion order: expiry looks at the oldest entries only, never scans the rest.
 */
import { randomBytes } from "node:crypto";
import { type Address, type Hex, getAddress, recoverMessageAddress } from "viem";
import { createSiweMessage, generateSiweNonce, parseSiweMessage } from "viem/siwe";

import { TokenBucket } from "../common/tokenBucket";
import { billingError } from "./errors";

const NONCE_TTL_MS = 5 * 60_000;
const MINUTE_MS = 60_000;
const BEARER = /^Bearer ([A-Za-z0-9_-]{20,100})$/;

export interface SignInOptions {
  /** The domain the messages must name. */
  domain: string;
  chainId: number;
  tokenTtlMs: number;
  /** Nonces held at once (default 10,000). */
  maxNonces?: number;
  /** Nonces one client may ask for per minute, also its burst (default 10). */
  noncesPerMinute?: number;
  now: () => number;
  /** Told of every sign-in accepted or refused (a metric). */
  onLogin?: (outcome: "accepted" | "rejected") => void;
}

export interface NonceReply {
  message: string;
  nonce: string;
  expiresAt: string;
}

export interface LoginReply {
  token: string;
  customer: string;
  expiresAt: string;
}

/** Drops the entries of an insertion-ordered map from the oldest while `expired` says so; stops at the first live one. */
function expireOldest<V>(map: Map<string, V>, expired: (value: V) => boolean): void {
  for (const [key, value] of map) {
    if (!expired(value)) return;
    map.delete(key);
  }
}

export class SignIn {
  /** nonce -> its address (lowercase) and expiry; insertion order is expiry order (one lifetime) */
  private readonly nonces = new Map<string, { address: string; expiresAt: number }>();
  /** token -> the customer (lowercase) and when the token expires; insertion order is expiry order */
  private readonly sessions = new Map<string, { customer: string; expiresAt: number }>();
  /** client -> its bucket of nonces; moved to the end on each use, so the front is the longest idle */
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly maxNonces: number;
  private readonly perMinute: number;

  constructor(private readonly options: SignInOptions) {
    this.maxNonces = options.maxNonces ?? 10_000;
    this.perMinute = options.noncesPerMinute ?? 10;
  }

  /** Nonces held now (expired ones are dropped at the next request). */
  get nonceCount(): number {
    return this.nonces.size;
  }

  /** Live sessions (expired ones are dropped at the next sign-in or use). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The message `address` signs to sign in, with a fresh single-use nonce; `client` is the caller (its IP). */
  issueNonce(address: string, client = ""): NonceReply {
    const { domain, chainId } = this.options;
    const now = this.options.now();
    expireOldest(this.nonces, (entry) => entry.expiresAt <= now);
    if (this.nonces.size >= this.maxNonces) {
      const retry = Math.ceil((this.nonces.values().next().value!.expiresAt - now) / 1000);
      throw billingError("BILLING_SIGN_IN_BUSY", `too many sign-ins in progress: retry in ${retry} s`);
    }
    this.takeToken(client, now);
    const nonce = generateSiweNonce();
    const expiresAt = now + NONCE_TTL_MS;
    this.nonces.set(nonce, { address: address.toLowerCase(), expiresAt });
    const message = createSiweMessage({
      domain,
      address: getAddress(address),
      statement: "Sign in to Edge Network billing to see your bills and usage.",
      uri: `https://${domain}`,
      version: "1",
      chainId,
      nonce,
      issuedAt: new Date(now),
      expirationTime: new Date(expiresAt),
    });
    return { message, nonce, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** A signed message from issueNonce -> a bearer token; the nonce is used up. */
  async login(message: string, signature: Hex): Promise<LoginReply> {
    const { domain, chainId } = this.options;
    const refuse = (code: "BILLING_BAD_LOGIN" | "BILLING_NONCE_USED" | "BILLING_BAD_SIGNATURE", why: string) => {
      this.options.onLogin?.("rejected");
      return billingError(code, why);
    };
    const fields = parseSiweMessage(message);
    if (!fields.address || !fields.nonce || !fields.domain || !fields.expirationTime)
      throw refuse("BILLING_BAD_LOGIN", "not a sign-in message from /auth/nonce");
    if (fields.domain !== domain)
      throw refuse("BILLING_BAD_LOGIN", `the message is for ${fields.domain}, not ${domain}`);
    if (fields.chainId !== chainId)
      throw refuse("BILLING_BAD_LOGIN", `the message is for chain ${fields.chainId}, not ${chainId}`);
    const now = this.options.now();
    if (fields.expirationTime.getTime() <= now) throw refuse("BILLING_BAD_LOGIN", "the message has expired");
    const nonce = this.nonces.get(fields.nonce);
    if (!nonce || nonce.expiresAt <= now)
      throw refuse("BILLING_NONCE_USED", "unknown, used or expired nonce: ask /auth/nonce for a new one");
    if (nonce.address !== fields.address.toLowerCase())
      throw refuse("BILLING_BAD_LOGIN", "the nonce was issued to another address");
    let signer: Address;
    try {
      signer = await recoverMessageAddress({ message, signature });
    } catch {
      signer = "0x0000000000000000000000000000000000000000";
    }
    if (signer !== getAddress(fields.address))
      throw refuse("BILLING_BAD_SIGNATURE", "the message is not signed by its address");
    // Single use, decided after the await: of two identical logins in flight, only the first to get here wins.
    if (!this.nonces.delete(fields.nonce))
      throw refuse("BILLING_NONCE_USED", "unknown, used or expired nonce: ask /auth/nonce for a new one");
    const token = randomBytes(32).toString("base64url");
    const expiresAt = now + this.options.tokenTtlMs;
    const customer = fields.address.toLowerCase();
    expireOldest(this.sessions, (s) => s.expiresAt <= now);
    this.sessions.set(token, { customer, expiresAt });
    this.options.onLogin?.("accepted");
    return { token, customer, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** Passes when `authorization` carries a live token of `customer`: 401 without one, 403 for another customer. */
  authorize(authorization: string | undefined, customer: string): void {
    const match = BEARER.exec(authorization ?? "");
    const session = match ? this.sessions.get(match[1]) : undefined;
    if (!session || session.expiresAt <= this.options.now()) {
      if (match && session) this.sessions.delete(match[1]);
      throw billingError("BILLING_UNAUTHORIZED", "sign in first: Authorization: Bearer <token> from /auth/login");
    }
    if (session.customer !== customer.toLowerCase())
      throw billingError("BILLING_FORBIDDEN", "this token belongs to another customer");
  }

  /** Ends the session of the token in `authorization`; 401 if there is none. */
  logout(authorization: string | undefined): void {
    const token = /^Bearer (.+)$/.exec(authorization ?? "")?.[1];
    const existed = token !== undefined && this.sessions.delete(token);
    if (!existed) throw billingError("BILLING_UNAUTHORIZED", "no session for this token");
  }

  /** One nonce from `client`'s bucket (`perMinute` a minute, at most `perMinute` saved), or 429. */
  private takeToken(client: string, now: number): void {
    // A bucket idle a full minute is full again: forgetting it changes nothing.
    expireOldest(this.buckets, (b) => now - b.lastUsed >= MINUTE_MS);
    const bucket = this.buckets.get(client) ?? new TokenBucket(this.perMinute / 60, this.perMinute, now);
    this.buckets.delete(client);
    this.buckets.set(client, bucket);
    if (!bucket.take(now)) {
      const retry = Math.ceil(bucket.waitMs() / 1000);
      throw billingError("BILLING_NONCE_RATE_LIMITED", `too many sign-in nonces from ${client}: retry in ${retry} s`);
    }
  }
}
