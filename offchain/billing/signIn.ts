/**
 * Customers' sign-in with their wallet and their sessions: the EIP-4361 sign-in itself (single-use nonces, 5
 * minutes to sign, bounded against floods: D42, F6) is offchain/common/siwe.ts, shared with the stargates'
 * Network API; here are billing's codes for its refusals and the sessions it gives: a bearer token for
 * `tokenTtlMs`. Sessions live in memory: a restart signs everyone out. Time comes from the injected clock; no
 * HTTP here.
 *
 * Sessions have one lifetime, so they expire in insertion order: expiry looks at the oldest ones only.
 */
import { randomBytes } from "node:crypto";
import type { Hex } from "viem";

import { type NonceReply, type SignInRefusal, WalletSignIn, expireOldest } from "../common/siwe";
import { BILLING_ERRORS, billingError } from "./errors";

const BEARER = /^Bearer ([A-Za-z0-9_-]{20,100})$/;

/** Billing's code for each refusal of the shared sign-in (docs/errors.md). */
const REFUSAL_CODES: Record<SignInRefusal, keyof typeof BILLING_ERRORS> = {
  busy: "BILLING_SIGN_IN_BUSY",
  "rate-limited": "BILLING_NONCE_RATE_LIMITED",
  "bad-login": "BILLING_BAD_LOGIN",
  "nonce-used": "BILLING_NONCE_USED",
  "bad-signature": "BILLING_BAD_SIGNATURE",
};

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

export type { NonceReply };

export interface LoginReply {
  token: string;
  customer: string;
  expiresAt: string;
}

export class SignIn {
  private readonly wallet: WalletSignIn;
  /** token -> the customer (lowercase) and when the token expires; insertion order is expiry order */
  private readonly sessions = new Map<string, { customer: string; expiresAt: number }>();

  constructor(private readonly options: SignInOptions) {
    this.wallet = new WalletSignIn({
      ...options,
      statement: "Sign in to Edge Network billing to see your bills and usage.",
      noncePath: "/auth/nonce",
      error: (refusal, message) => billingError(REFUSAL_CODES[refusal], message),
    });
  }

  /** Nonces held now (expired ones are dropped at the next request). */
  get nonceCount(): number {
    return this.wallet.nonceCount;
  }

  /** Live sessions (expired ones are dropped at the next sign-in or use). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The message `address` signs to sign in, with a fresh single-use nonce; `client` is the caller (its IP). */
  issueNonce(address: string, client = ""): NonceReply {
    return this.wallet.issueNonce(address, client);
  }

  /** A signed message from issueNonce -> a bearer token; the nonce is used up. */
  async login(message: string, signature: Hex): Promise<LoginReply> {
    const customer = await this.wallet.verify(message, signature);
    const now = this.options.now();
    const token = randomBytes(32).toString("base64url");
    const expiresAt = now + this.options.tokenTtlMs;
    expireOldest(this.sessions, (s) => s.expiresAt <= now);
    this.sessions.set(token, { customer, expiresAt });
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
}
