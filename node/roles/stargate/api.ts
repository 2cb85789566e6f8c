/**
 * The Network API (D56), Vault's replacement, on the stargate's HTTP app: team users log in with a password
 * (users.ts), customers with their wallet (EIP-4361, offchain/common/siwe.ts); both get a bearer token
 * (issueToken) which every admitted node checks by itself (node/tokens.ts). A wallet's token (sites:write only) is
 * signed by this stargate's device key; a password login's by the configuration key (`--config-key`, which
 * ConfigRegistry grants DELTA_SIGNER_ROLE), so a stargate's device key can never mint a privileged token (R17-1): a
 * stargate without the configuration key forwards password logins to its first reachable peer, as writes. Changes
 * (blocklist, sites, revocations) become configuration deltas through the authority (`--config-key`); a stargate
 * without it forwards them, with the caller's Authorization header, to its first reachable peer (`--peers`).
 *
 * What each route needs is in apiRoutes.ts; the decisions (who may write which site, what a revocation names) are
 * here.
 */
import { randomBytes } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { type Hex, type LocalAccount, getAddress } from "viem";

import type { ConfigAnchorReader } from "../../../offchain/common/configAnchor";
import { type DeltaOp, type NetworkConfig, type TokenClaims, issueToken } from "../../../offchain/common/protocol";
import { TokenBucket } from "../../../offchain/common/tokenBucket";
import { type SignInRefusal, WalletSignIn } from "../../../offchain/common/siwe";
import { MAX_TOKEN_TTL_MS } from "../../config";
import type { AppliedConfig, Catalogue, StargateContext } from "../../context";
import { type NodeErrorCode, nodeError } from "../../errors";
import { type Scope, TokenVerifier, isSubject } from "../../tokens";
import { parseSites } from "../gateway/parseSites";
import { illFormedString } from "./configCheck";
import { type PasswordLoginOptions, PasswordLogin, loadUsers } from "./users";
import { ApexHolds, zoneHolding } from "./zoneRules";

/** The longest a token can live (config.ts bounds --token-ttl-ms to a day): what a revocation by id covers. */
export const MAX_TOKEN_TTL_S = MAX_TOKEN_TTL_MS / 1000;
/** Marks a request one stargate forwarded to another: it is never forwarded again. */
export const FORWARDED_HEADER = "x-edge-forwarded-by";
const FORWARD_TIMEOUT_MS = 5000;

const REFUSAL_CODES: Record<SignInRefusal, NodeErrorCode> = {
  busy: "EDGE_NODE_SIGN_IN_BUSY",
  "rate-limited": "EDGE_NODE_NONCE_RATE_LIMITED",
  "bad-login": "EDGE_NODE_BAD_LOGIN",
  "nonce-used": "EDGE_NODE_NONCE_USED",
  "bad-signature": "EDGE_NODE_BAD_SIGNATURE",
};

/** What a write changes: an operation, or one made from the configuration in force under the authority's lock. */
export type WriteOp = DeltaOp | ((current: NetworkConfig) => DeltaOp);

/** What signs a token. */
type Signer = Pick<LocalAccount, "address" | "signTypedData">;

export interface Authority {
  append(op: WriteOp): Promise<{ base: number; seq: number }>;
}

/** Sites one owner may hold (R17-2): a wallet is free to make, so no one fills the 10,000 sites of a document. */
export const MAX_SITES_PER_OWNER = 100;
/** Writes (sites, blocklist, revocations) per token subject: a burst of this many, refilled at WRITES_PER_SECOND. */
export const WRITE_BURST = 120;
export const WRITES_PER_SECOND = 2;

export interface NetworkApiOptions {
  ctx: Pick<StargateContext, "signer" | "log" | "chainAdmits">;
  /** The users file (`--users`); without one, password login answers 404. */
  users: string | undefined;
  tokenTtlMs: number;
  /** Other stargates' base URLs, tried in order for writes when this one has no authority. */
  peers: readonly string[];
  /** The stargate's public URL (known once it listens): its host is the domain wallet sign-in messages name. */
  publicUrl: () => string;
  /** The configuration authority (with --config-key), when this stargate has one. */
  authority(): Authority | undefined;
  /** The configuration key's account (--config-key), which signs password logins' tokens; undefined without it. */
  configSigner(): Signer | undefined;
  /** ConfigRegistry's reader (who holds DELTA_SIGNER_ROLE); without one, privileged tokens are refused. */
  anchor: Pick<ConfigAnchorReader, "isDeltaSigner"> | undefined;
  /** The stargate's effective configuration (anchored version + deltas). */
  effectiveConfig(): AppliedConfig | undefined;
  /** The stargate's catalogue of endpoints (node drain routes, R18-14); none: a drain is not checked against it. */
  catalogue?: () => Catalogue | undefined;
  now?: () => number;
  /** Login limits (tests and the benchmark set them). */
  login?: Omit<PasswordLoginOptions, "users" | "now">;
}

export interface TokenReply {
  token: string;
  expiresAt: string;
  subject: string;
  scopes: string[];
}

/** A site as written through the API: the id comes from the path. */
export interface SiteInput {
  hostname: string;
  origin: string;
  owner?: string;
  cache?: { defaultTtlSeconds?: number; maxObjectBytes?: number };
}

export class NetworkApi {
  readonly verifier: TokenVerifier;
  private walletSignIn: WalletSignIn | undefined;
  readonly passwords: PasswordLogin | undefined;
  private readonly now: () => number;
  private issued = 0;
  private forwarded = 0;

  constructor(private readonly options: NetworkApiOptions) {
    this.now = options.now ?? Date.now;
    this.apexHolds = new ApexHolds(this.now);
    const { ctx } = options;
    this.verifier = new TokenVerifier({
      chainId: ctx.signer.chainId,
      chainAdmits: (device, type) => ctx.chainAdmits(device, type),
      anchor: options.anchor,
      currentConfig: () => options.effectiveConfig(),
      now: this.now,
    });
    this.passwords = options.users
      ? new PasswordLogin({ ...options.login, users: loadUsers(options.users), now: this.now })
      : undefined;
  }

  /** Whether the chain admits `device` for `type` now (node drain routes, apiNodes.ts). */
  readonly chainAdmits: NetworkApiOptions["ctx"]["chainAdmits"] = (device, type) =>
    this.options.ctx.chainAdmits(device, type);

  /** Removed apexes held for their last owner (R18-4, zoneRules.ts). */
  readonly apexHolds: ApexHolds;

  /** The catalogue of endpoints, if the stargate has one (node drain routes, apiNodes.ts). */
  readonly catalogue = (): Catalogue | undefined => this.options.catalogue?.();

  /** The wallet sign-in, made at first use (the daemon learns its public URL's port when it listens). */
  get wallet(): WalletSignIn {
    this.walletSignIn ??= new WalletSignIn({
      domain: new URL(this.options.publicUrl()).host,
      chainId: this.options.ctx.signer.chainId,
      statement: "Sign in to the Edge Network API to manage your sites.",
      noncePath: "/api/nonce",
      now: this.now,
      error: (refusal, message) => nodeError(REFUSAL_CODES[refusal], message),
    });
    return this.walletSignIn;
  }

  status(): Record<string, unknown> {
    return {
      tokensIssued: this.issued,
      writesForwarded: this.forwarded,
      users: this.passwords !== undefined,
      authority: this.options.authority() !== undefined,
      signsPasswordTokens: this.options.configSigner() !== undefined,
    };
  }

  /**
   * A password login (`request` carries `{ name, password }` and the client's address): the token is signed by the
   * configuration key (R17-1). Without that key the login is forwarded to the first peer that answers (after this
   * stargate's own limits by client and name, when it has a users file), or 503 EDGE_NODE_NO_AUTHORITY.
   */
  async passwordLogin(
    request: FastifyRequest,
    name: string,
    password: string,
  ): Promise<{ status: number; body: unknown }> {
    const signer = this.options.configSigner();
    if (!signer) {
      this.passwords?.limit(name, request.ip);
      return this.toPeer(request, "password logins");
    }
    if (!this.passwords) throw nodeError("EDGE_NODE_LOGIN_DISABLED", "this stargate has no users file (--users)");
    const user = await this.passwords.login(name, password, request.ip);
    return { status: 200, body: await this.issue(signer, user.name, user.scopes) };
  }

  /** A wallet's token: sites:write only, signed by this stargate's device key. */
  async walletLogin(message: string, signature: Hex): Promise<TokenReply> {
    const wallet = await this.wallet.verify(message, signature);
    return this.issue(this.options.ctx.signer.account, wallet, ["sites:write"]);
  }

  private async issue(account: Signer, subject: string, scopes: readonly Scope[]): Promise<TokenReply> {
    const expiresAt = Math.floor((this.now() + this.options.tokenTtlMs) / 1000);
    const { chainId } = this.options.ctx.signer;
    const id = `0x${randomBytes(32).toString("hex")}` as Hex;
    const token = await issueToken(account, chainId, { id, subject, scopes, expiresAt });
    this.issued += 1;
    return { token, expiresAt: new Date(expiresAt * 1000).toISOString(), subject, scopes: [...scopes] };
  }

  /** The revocation of token `id` by the holder of `claims`: their own token, or any with tokens:revoke. */
  revocation(claims: TokenClaims, id: string): DeltaOp {
    if (id === claims.id) return { kind: "token.revoke", token: { id, expiresAt: claims.expiresAt } };
    if (!claims.scopes.includes("tokens:revoke"))
      throw nodeError("EDGE_NODE_SCOPE_MISSING", "revoking another's token needs the scope tokens:revoke", {
        details: { scope: "tokens:revoke" },
      });
    // The token is not known here: no token issued before now lives past now + the longest TTL.
    const expiresAt = Math.floor(this.now() / 1000) + MAX_TOKEN_TTL_S;
    return { kind: "token.revoke", token: { id: id.toLowerCase(), expiresAt } };
  }

  /** The sites `claims` may see: their own (a wallet's), or all of them with config:publish. */
  sitesOf(claims: TokenClaims): unknown[] {
    const sites = this.options.effectiveConfig()?.document.sites ?? [];
    if (claims.scopes.includes("config:publish")) return sites;
    return sites.filter((s) => typeof ownerOf(s) === "string" && isSubject(claims, ownerOf(s)!));
  }

  /**
   * The site.put of `input` as site `id`, if `claims` may write it (sites:write on their own, or config:publish).
   * The input is checked here; who holds the id, the hostname and the owner's quota are checked against the
   * configuration in force under the authority's lock (R17-2). The site stored is the one parseSites returns.
   */
  sitePut(claims: TokenClaims, id: string, input: SiteInput): WriteOp {
    const team = this.mayWriteAny(claims);
    const owner = input.owner ?? (team ? undefined : claims.subject);
    if (owner === undefined) throw nodeError("EDGE_NODE_SITES_INVALID", "the site needs an owner (an address)");
    if (!team && !isSubject(claims, owner))
      throw nodeError("EDGE_NODE_SITE_NOT_OWNED", "a customer may only write sites it owns (owner = its wallet)");
    if (illFormedString(input)) throw nodeError("EDGE_NODE_SITES_INVALID", "the site has text that is not Unicode");
    const [site] = parseSites({ sites: [{ ...input, id, owner }] });
    return (current) => {
      const existing = current.sites.find((s) => idOf(s) === id);
      this.checkOwner(claims, existing, id, team);
      const clash = current.sites.find(
        (s) => idOf(s) !== id && (s as { hostname?: unknown }).hostname === site.hostname,
      );
      if (clash) throw nodeError("EDGE_NODE_SITES_INVALID", `the hostname ${site.hostname} belongs to another site`);
      const zone = zoneHolding(current, site.hostname, site.owner);
      if (zone)
        throw nodeError(
          "EDGE_NODE_SITE_IN_ZONE",
          `the hostname ${site.hostname} is in ${zone.name}, another owner's zone`,
        );
      const held = current.sites.filter(
        (s) => idOf(s) !== id && ownerOf(s)?.toLowerCase() === site.owner.toLowerCase(),
      );
      if (held.length >= MAX_SITES_PER_OWNER)
        throw nodeError("EDGE_NODE_SITE_QUOTA", `${site.owner} holds ${held.length} sites, the most one owner may`);
      return { kind: "site.put", site: { ...site, cache: { ...site.cache } } };
    };
  }

  /** The site.remove of site `id`, if it exists and `claims` may write it (checked under the authority's lock). */
  siteRemove(claims: TokenClaims, id: string): WriteOp {
    const team = this.mayWriteAny(claims);
    return (current) => {
      const existing = current.sites.find((s) => idOf(s) === id);
      if (!existing) throw nodeError("EDGE_NODE_UNKNOWN_SITE", `no site ${id}`);
      this.checkOwner(claims, existing, id, team);
      return { kind: "site.remove", id, owner: getAddress(ownerOf(existing)!) };
    };
  }

  private readonly writeBuckets = new Map<string, TokenBucket>();

  /** One write of `subject` per token of its bucket (R17-2); 429 when it has none left. */
  private limitWrites(subject: string): void {
    const now = this.now();
    const key = subject.toLowerCase();
    let bucket = this.writeBuckets.get(key);
    if (!bucket) {
      if (this.writeBuckets.size >= 100_000) sweep(this.writeBuckets, now);
      this.writeBuckets.set(key, (bucket = new TokenBucket(WRITES_PER_SECOND, WRITE_BURST, now)));
    }
    if (!bucket.take(now))
      throw nodeError("EDGE_NODE_WRITE_RATE_LIMITED", `too many writes by ${subject}: retry in ${bucket.waitMs()} ms`);
  }

  /** The configuration document in force (the zones' routes, apiZones.ts). */
  readonly currentConfig = (): NetworkConfig | undefined => this.options.effectiveConfig()?.document;

  /** Whether `claims` may write anyone's sites and zones (config:publish), or only their own (sites:write); else 403. */
  mayWriteAny(claims: TokenClaims): boolean {
    if (claims.scopes.includes("config:publish")) return true;
    if (claims.scopes.includes("sites:write")) return false;
    throw nodeError("EDGE_NODE_SCOPE_MISSING", "the token lacks the scope sites:write", {
      details: { scope: "sites:write" },
    });
  }

  private checkOwner(claims: TokenClaims, existing: unknown, id: string, team: boolean): void {
    if (existing === undefined || team) return;
    const owner = ownerOf(existing);
    if (owner === undefined || !isSubject(claims, owner))
      throw nodeError("EDGE_NODE_SITE_NOT_OWNED", `the site ${id} belongs to another owner`);
  }

  /**
   * Applies `op` through the authority; without one, forwards the request to the first peer that answers (its
   * answer is the caller's) or 503 when none does. A forwarded request is never forwarded again.
   */
  async write(request: FastifyRequest, claims: TokenClaims, op: WriteOp): Promise<{ status: number; body: unknown }> {
    this.limitWrites(claims.subject);
    const authority = this.options.authority();
    if (authority) return { status: 200, body: { applied: await authority.append(op) } };
    // Refused early on what this stargate holds; the peer checks again under its authority's lock.
    const current = this.options.effectiveConfig()?.document;
    if (typeof op === "function" && current) op(current);
    return this.toPeer(request, "writes");
  }

  /** `request` forwarded to the first peer that answers (its answer is the caller's); else 503 naming `what`. */
  private async toPeer(request: FastifyRequest, what: string): Promise<{ status: number; body: unknown }> {
    if (request.headers[FORWARDED_HEADER] !== undefined)
      throw nodeError(
        "EDGE_NODE_NO_AUTHORITY",
        `${what} need the configuration key, and the stargate this was forwarded to has none either`,
      );
    for (const peer of this.options.peers) {
      const answer = await forward(peer, request, this.options.ctx.signer.account.address).catch(() => undefined);
      if (!answer) continue;
      this.forwarded += 1;
      return answer;
    }
    throw nodeError(
      "EDGE_NODE_NO_AUTHORITY",
      `${what} need the configuration key: this stargate has none and none of its ${this.options.peers.length} peers answered`,
    );
  }
}

/** Forgets buckets idle long enough to be full again. */
function sweep(buckets: Map<string, TokenBucket>, now: number): void {
  const idleMs = (WRITE_BURST / WRITES_PER_SECOND) * 1000;
  for (const [key, bucket] of buckets) if (now - bucket.lastUsed > idleMs) buckets.delete(key);
}

async function forward(
  peer: string,
  request: FastifyRequest,
  self: string,
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { [FORWARDED_HEADER]: self };
  if (request.headers.authorization) headers.authorization = request.headers.authorization;
  const hasBody = request.body !== undefined && request.body !== null;
  if (hasBody) headers["content-type"] = "application/json";
  const response = await fetch(new URL(request.url, peer), {
    method: request.method,
    headers,
    body: hasBody ? JSON.stringify(request.body) : undefined,
    signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
  });
  return { status: response.status, body: await response.json() };
}

const idOf = (s: unknown) => (s as { id?: unknown } | null)?.id;
function ownerOf(s: unknown): string | undefined {
  const owner = (s as { owner?: unknown } | null)?.owner;
  return typeof owner === "string" ? owner : undefined;
}
