/**
 * Network API bearer tokens (D56): what a token may do (its scopes) and the one check of a token, used by the
 * stargates' API and by every node's POST /admin/drain.
 *
 * Who may sign what (R17-1): a token whose scopes are all `sites:write` (a customer's wallet login, or a team user
 * with no scope) may be signed by any admitted stargate's device key; a token with any other scope (a "privileged"
 * token: config:publish, blocklist:write, tokens:revoke, node:drain) only by a key ConfigRegistry grants
 * DELTA_SIGNER_ROLE (the configuration authority's --config-key), read through `ConfigAnchorReader.isDeltaSigner`
 * (cached at most 2 s). A staked stargate's device key therefore cannot mint a privileged token.
 *
 * `TokenVerifier.verify` refuses, in this order, cheapest first: a header that is not `Bearer <token>` or is too
 * long, a token that does not decode (shape, claims), one expired, one promising to live longer than any token may
 * (`MAX_TOKEN_TTL_MS` + 60 s of clock skew), one revoked (the current configuration's `revoked`, a Set rebuilt
 * whenever the configuration changes), a customer token whose issuer is not an admitted stargate (a map lookup) when
 * no configuration anchor could vouch for it; a client whose failed checks used up its budget (R17-11: 429 before
 * any recovery); only then the signature recovery (the costly step), then for a privileged token (or a customer
 * token of a non-stargate issuer) the anchor's answer (after the recovery, so only a token really signed by its
 * issuer can cost a chain read), and last the scope (403 names it).
 */
import type { Address } from "viem";

import type { ConfigAnchorReader } from "../offchain/common/configAnchor";
import { EdgeError } from "../offchain/common/errors";
import { type TokenClaims, decodeToken, tokenSignedByIssuer } from "../offchain/common/protocol";
import { StakeType } from "../offchain/common/stakeMap";
import { KeyedLimiter, clientKey } from "../offchain/common/tokenBucket";
import { MAX_TOKEN_TTL_MS } from "./config";
import type { AppliedConfig } from "./context";
import { nodeError } from "./errors";

export const SCOPES = ["config:publish", "blocklist:write", "sites:write", "tokens:revoke", "node:drain"] as const;
export type Scope = (typeof SCOPES)[number];
/** The only scope an admitted stargate's device key may sign (a wallet login's); every other needs the config key. */
export const CUSTOMER_SCOPES: readonly Scope[] = ["sites:write"];

/** Whether a token with `scopes` must be signed by a configuration signer (a scope beyond a customer's). */
export const isPrivileged = (scopes: readonly string[]) =>
  scopes.some((s) => !(CUSTOMER_SCOPES as readonly string[]).includes(s));

/** The longest Authorization header looked at ("Bearer " and a token of MAX_TOKEN_LENGTH). */
const MAX_HEADER = 7 + 2048;
/** Clock skew allowed between the issuer and a verifier on top of the longest lifetime. */
const SKEW_MS = 60_000;
/** Failed checks tolerated per client a minute (its burst too) before 429 (R17-11). */
const DEFAULT_FAILURES_PER_MINUTE = 60;
/** The refusals that count against a client's budget of failed checks. */
const FAILURES = new Set(["EDGE_NODE_TOKEN_INVALID", "EDGE_NODE_TOKEN_EXPIRED", "EDGE_NODE_TOKEN_REVOKED"]);

export interface TokenVerifierOptions {
  chainId: number;
  /** Whether the chain view admits `device` with a stake of `type` now. */
  chainAdmits(device: string, type: StakeType): boolean;
  /** ConfigRegistry's reader: who holds DELTA_SIGNER_ROLE. Without one (no ConfigRegistry) privileged tokens fail. */
  anchor: Pick<ConfigAnchorReader, "isDeltaSigner"> | undefined;
  /** The configuration the node holds now (its `revoked` list), undefined before the first. */
  currentConfig(): AppliedConfig | undefined;
  /** Unix milliseconds. */
  now(): number;
  /** Failed checks one client (an IPv4 address or an IPv6 /64) may cause a minute (default 60). */
  failuresPerMinute?: number;
}

export class TokenVerifier {
  private revokedOf: AppliedConfig["document"] | undefined;
  private revoked = new Set<string>();
  private readonly failures: KeyedLimiter;

  constructor(private readonly options: TokenVerifierOptions) {
    this.failures = new KeyedLimiter(options.failuresPerMinute ?? DEFAULT_FAILURES_PER_MINUTE);
  }

  /** The ids revoked in the current configuration (rebuilt when it changed since the last call). */
  revokedIds(): ReadonlySet<string> {
    // Keyed on the document: holders hand out a new AppliedConfig per call, but a new document only per change.
    const document = this.options.currentConfig()?.document;
    if (document !== this.revokedOf) {
      this.revokedOf = document;
      this.revoked = new Set(document?.revoked.map((r) => r.id) ?? []);
    }
    return this.revoked;
  }

  /**
   * The claims of the bearer token in `authorization` if it is valid now and carries `scope`; else 401 or 403.
   * `client` (the request's address) is charged for a failed check and refused with 429 once its budget is spent.
   */
  async verify(authorization: string | undefined, scope?: Scope, client?: string): Promise<TokenClaims> {
    const claims = await this.authenticate(authorization, client);
    if (scope !== undefined && !claims.scopes.includes(scope))
      throw nodeError("EDGE_NODE_SCOPE_MISSING", `the token lacks the scope ${scope}`, { details: { scope } });
    return claims;
  }

  /** The claims of a valid token (any scope), or 401 (429 for a client past its budget of failed checks). */
  async authenticate(authorization: string | undefined, client?: string): Promise<TokenClaims> {
    try {
      return await this.check(authorization, client === undefined ? undefined : clientKey(client));
    } catch (error) {
      if (client !== undefined && error instanceof EdgeError && FAILURES.has(error.code))
        this.failures.take(clientKey(client), this.options.now());
      throw error;
    }
  }

  private async check(authorization: string | undefined, client: string | undefined): Promise<TokenClaims> {
    if (authorization === undefined || !authorization.startsWith("Bearer "))
      throw nodeError("EDGE_NODE_UNAUTHORIZED", "a bearer token is required (Authorization: Bearer <token>)");
    if (authorization.length > MAX_HEADER) throw invalid("the token is too long");
    const decoded = decodeToken(authorization.slice(7));
    if (typeof decoded === "string") throw invalid(decoded);
    const { claims, signature } = decoded;
    const now = this.options.now();
    if (claims.expiresAt * 1000 <= now)
      throw nodeError("EDGE_NODE_TOKEN_EXPIRED", "the token has expired: log in again");
    if (claims.expiresAt * 1000 > now + MAX_TOKEN_TTL_MS + SKEW_MS)
      throw invalid(`the token claims to live past ${MAX_TOKEN_TTL_MS / 1000} s from now, longer than any token may`);
    if (this.revokedIds().has(claims.id)) throw nodeError("EDGE_NODE_TOKEN_REVOKED", "the token was revoked");
    const privileged = isPrivileged(claims.scopes);
    const needsSigner = privileged || !this.options.chainAdmits(claims.issuer, StakeType.Stargate);
    const anchor = this.options.anchor;
    if (needsSigner && !anchor)
      throw invalid(
        privileged
          ? "the token's scopes need a configuration signer and this node reads no ConfigRegistry"
          : `the issuer ${claims.issuer} is not an admitted stargate`,
      );
    if (client !== undefined && !this.failures.allows(client, now))
      throw nodeError("EDGE_NODE_TOKEN_RATE_LIMITED", `too many failed token checks from ${client}: retry shortly`);
    if (!(await tokenSignedByIssuer(this.options.chainId, claims, signature)))
      throw invalid("the token is not signed by its issuer");
    if (needsSigner && !(await this.isSigner(anchor!, claims.issuer)))
      throw invalid(
        privileged
          ? `the issuer ${claims.issuer} holds no DELTA_SIGNER_ROLE, which every scope but sites:write needs`
          : `the issuer ${claims.issuer} is not an admitted stargate`,
      );
    return claims;
  }

  private async isSigner(anchor: Pick<ConfigAnchorReader, "isDeltaSigner">, issuer: string): Promise<boolean> {
    try {
      return await anchor.isDeltaSigner(issuer);
    } catch (error) {
      throw nodeError("EDGE_NODE_CONFIG_UNAVAILABLE", "ConfigRegistry could not be read to check the token's issuer", {
        cause: error,
      });
    }
  }
}

const invalid = (why: string) => nodeError("EDGE_NODE_TOKEN_INVALID", why);

/** Whether `claims` name `wallet` as their subject (a wallet login's token). */
export const isSubject = (claims: TokenClaims, wallet: Address | string) =>
  claims.subject.toLowerCase() === wallet.toLowerCase();
