/**
 * Network API bearer tokens (D56): what a token may do (its scopes) and the one check of a token, used by the
 * stargates' API and by every node's POST /admin/drain.
 *
 * `TokenVerifier.verify` refuses, in this order, cheapest first: a header that is not `Bearer <token>` or is too
 * long, a token that does not decode (shape, claims), one expired, one revoked (the current configuration's
 * `revoked`, a Set rebuilt whenever the configuration changes), one whose issuer is not an admitted stargate; only
 * then is the signature recovered (the one costly step), and last the scope is checked (403 names it).
 */
import type { Address } from "viem";

import { type TokenClaims, decodeToken, tokenSignedByIssuer } from "../offchain/common/protocol";
import { StakeType } from "../offchain/common/stakeMap";
import type { AppliedConfig } from "./context";
import { nodeError } from "./errors";

export const SCOPES = ["config:publish", "blocklist:write", "sites:write", "tokens:revoke", "node:drain"] as const;
export type Scope = (typeof SCOPES)[number];

/** The longest Authorization header looked at ("Bearer " and a token of MAX_TOKEN_LENGTH). */
const MAX_HEADER = 7 + 2048;

export interface TokenVerifierOptions {
  chainId: number;
  /** Whether the chain view admits `device` with a stake of `type` now. */
  chainAdmits(device: string, type: StakeType): boolean;
  /** The configuration the node holds now (its `revoked` list), undefined before the first. */
  currentConfig(): AppliedConfig | undefined;
  /** Unix milliseconds. */
  now(): number;
}

export class TokenVerifier {
  private revokedOf: AppliedConfig["document"] | undefined;
  private revoked = new Set<string>();

  constructor(private readonly options: TokenVerifierOptions) {}

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

  /** The claims of the bearer token in `authorization` if it is valid now and carries `scope`; else 401 or 403. */
  async verify(authorization: string | undefined, scope?: Scope): Promise<TokenClaims> {
    const claims = await this.authenticate(authorization);
    if (scope !== undefined && !claims.scopes.includes(scope))
      throw nodeError("EDGE_NODE_SCOPE_MISSING", `the token lacks the scope ${scope}`, { details: { scope } });
    return claims;
  }

  /** The claims of a valid token (any scope), or 401. */
  async authenticate(authorization: string | undefined): Promise<TokenClaims> {
    if (authorization === undefined || !authorization.startsWith("Bearer "))
      throw nodeError("EDGE_NODE_UNAUTHORIZED", "a bearer token is required (Authorization: Bearer <token>)");
    if (authorization.length > MAX_HEADER) throw invalid("the token is too long");
    const decoded = decodeToken(authorization.slice(7));
    if (typeof decoded === "string") throw invalid(decoded);
    const { claims, signature } = decoded;
    if (claims.expiresAt * 1000 <= this.options.now())
      throw nodeError("EDGE_NODE_TOKEN_EXPIRED", "the token has expired: log in again");
    if (this.revokedIds().has(claims.id)) throw nodeError("EDGE_NODE_TOKEN_REVOKED", "the token was revoked");
    if (!this.options.chainAdmits(claims.issuer, StakeType.Stargate))
      throw invalid(`the issuer ${claims.issuer} is not an admitted stargate`);
    if (!(await tokenSignedByIssuer(this.options.chainId, claims, signature)))
      throw invalid("the token is not signed by its issuer");
    return claims;
  }
}

const invalid = (why: string) => nodeError("EDGE_NODE_TOKEN_INVALID", why);

/** Whether `claims` name `wallet` as their subject (a wallet login's token). */
export const isSubject = (claims: TokenClaims, wallet: Address | string) =>
  claims.subject.toLowerCase() === wallet.toLowerCase();
