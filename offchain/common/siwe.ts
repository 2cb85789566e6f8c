/**
 * Wallet sign-in (EIP-4361, "Sign-In with Ethereum"), shared by billing's customers (offchain/billing/signIn.ts)
 * and the stargates' Network API (node/roles/stargate/api.ts): a single-use nonce inside a message naming the
 * service's domain and chain (5 minutes to sign it), then the address that signed it. What a sign-in gives (a
 * session, a token) is the caller's; so are its error codes: `error(kind, message)` builds each refusal.
 *
 * Bounded against floods (D42, F6): at most `maxNonces` nonces are held (then "busy"), each client (the caller's
 * IP) gets `noncesPerMinute` nonces as a refilling bucket (then "rate-limited"), and nonces and buckets have one
 * lifetime each, so they expire in insertion order: expiry looks at the oldest entries only, never scans the rest.
 * Nonces live in memory: a restart forgets those not used yet. Time comes from the injected clock; no HTTP here.
 */
import { type Address, type Hex, getAddress, recoverMessageAddress } from "viem";
import { createSiweMessage, generateSiweNonce, parseSiweMessage } from "viem/siwe";

import { TokenBucket } from "./tokenBucket";

const NONCE_TTL_MS = 5 * 60_000;
const MINUTE_MS = 60_000;

/** The refusals of a sign-in, mapped to each service's own codes. */
export type SignInRefusal =
  | "busy" // too many nonces held: 429
  | "rate-limited" // this client asked too many nonces: 429
  | "bad-login" // not a message of ours (domain, chain, expiry, address): 400
  | "nonce-used" // unknown, used or expired nonce: 409
  | "bad-signature"; // not signed by its address: 401

export interface WalletSignInOptions {
  /** The domain the messages must name. */
  domain: string;
  chainId: number;
  /** The message's statement (what the wallet shows the user). */
  statement: string;
  /** Where nonces come from, named in refusals ("/auth/nonce"). */
  noncePath: string;
  /** Nonces held at once (default 10,000). */
  maxNonces?: number;
  /** Nonces one client may ask for per minute, also its burst (default 10). */
  noncesPerMinute?: number;
  now: () => number;
  /** Builds the error thrown for each refusal (the service's code and status). */
  error: (refusal: SignInRefusal, message: string) => Error;
  /** Told of every sign-in accepted or refused (a metric). */
  onLogin?: (outcome: "accepted" | "rejected") => void;
}

export interface NonceReply {
  message: string;
  nonce: string;
  expiresAt: string;
}

/** Drops the entries of an insertion-ordered map from the oldest while `expired` says so; stops at the first live one. */
export function expireOldest<V>(map: Map<string, V>, expired: (value: V) => boolean): void {
  for (const [key, value] of map) {
    if (!expired(value)) return;
    map.delete(key);
  }
}

export class WalletSignIn {
  /** nonce -> its address (lowercase) and expiry; insertion order is expiry order (one lifetime) */
  private readonly nonces = new Map<string, { address: string; expiresAt: number }>();
  /** client -> its bucket of nonces; moved to the end on each use, so the front is the longest idle */
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly maxNonces: number;
  private readonly perMinute: number;

  constructor(private readonly options: WalletSignInOptions) {
    this.maxNonces = options.maxNonces ?? 10_000;
    this.perMinute = options.noncesPerMinute ?? 10;
  }

  /** Nonces held now (expired ones are dropped at the next request). */
  get nonceCount(): number {
    return this.nonces.size;
  }

  /** The message `address` signs to sign in, with a fresh single-use nonce; `client` is the caller (its IP). */
  issueNonce(address: string, client = ""): NonceReply {
    const { domain, chainId, statement } = this.options;
    const now = this.options.now();
    expireOldest(this.nonces, (entry) => entry.expiresAt <= now);
    if (this.nonces.size >= this.maxNonces) {
      const retry = Math.ceil((this.nonces.values().next().value!.expiresAt - now) / 1000);
      throw this.options.error("busy", `too many sign-ins in progress: retry in ${retry} s`);
    }
    this.takeToken(client, now);
    const nonce = generateSiweNonce();
    const expiresAt = now + NONCE_TTL_MS;
    this.nonces.set(nonce, { address: address.toLowerCase(), expiresAt });
    const message = createSiweMessage({
      domain,
      address: getAddress(address),
      statement,
      uri: `https://${domain}`,
      version: "1",
      chainId,
      nonce,
      issuedAt: new Date(now),
      expirationTime: new Date(expiresAt),
    });
    return { message, nonce, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** A signed message from issueNonce -> the address that signed it in (lowercase); the nonce is used up. */
  async verify(message: string, signature: Hex): Promise<string> {
    const { domain, chainId, noncePath } = this.options;
    const refuse = (refusal: SignInRefusal, why: string) => {
      this.options.onLogin?.("rejected");
      return this.options.error(refusal, why);
    };
    const fields = parseSiweMessage(message);
    if (!fields.address || !fields.nonce || !fields.domain || !fields.expirationTime)
      throw refuse("bad-login", `not a sign-in message from ${noncePath}`);
    if (fields.domain !== domain) throw refuse("bad-login", `the message is for ${fields.domain}, not ${domain}`);
    if (fields.chainId !== chainId)
      throw refuse("bad-login", `the message is for chain ${fields.chainId}, not ${chainId}`);
    const now = this.options.now();
    if (fields.expirationTime.getTime() <= now) throw refuse("bad-login", "the message has expired");
    const usedUp = `unknown, used or expired nonce: ask ${noncePath} for a new one`;
    const nonce = this.nonces.get(fields.nonce);
    if (!nonce || nonce.expiresAt <= now) throw refuse("nonce-used", usedUp);
    if (nonce.address !== fields.address.toLowerCase())
      throw refuse("bad-login", "the nonce was issued to another address");
    let signer: Address;
    try {
      signer = await recoverMessageAddress({ message, signature });
    } catch {
      signer = "0x0000000000000000000000000000000000000000";
    }
    if (signer !== getAddress(fields.address))
      throw refuse("bad-signature", "the message is not signed by its address");
    // Single use, decided after the await: of two identical logins in flight, only the first to get here wins.
    if (!this.nonces.delete(fields.nonce)) throw refuse("nonce-used", usedUp);
    this.options.onLogin?.("accepted");
    return fields.address.toLowerCase();
  }

  /** One nonce from `client`'s bucket (`perMinute` a minute, at most `perMinute` saved), or "rate-limited". */
  private takeToken(client: string, now: number): void {
    // A bucket idle a full minute is full again: forgetting it changes nothing.
    expireOldest(this.buckets, (b) => now - b.lastUsed >= MINUTE_MS);
    const bucket = this.buckets.get(client) ?? new TokenBucket(this.perMinute / 60, this.perMinute, now);
    this.buckets.delete(client);
    this.buckets.set(client, bucket);
    if (!bucket.take(now)) {
      const retry = Math.ceil(bucket.waitMs() / 1000);
      throw this.options.error("rate-limited", `too many sign-in nonces from ${client}: retry in ${retry} s`);
    }
  }
}
