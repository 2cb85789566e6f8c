/**
 * The control plane's signed messages (D51): configuration deltas (signed by a key ConfigRegistry grants
 * DELTA_SIGNER_ROLE), a subscriber's hello over a stargate's challenge, and Network API access tokens (signed by
 * the admitted stargate that issued them). Recovering a signer here proves who signed; whether that signer may
 * (the role on-chain, the stargate admitted) is the receiver's check.
 */
import { type Address, type Hex, type LocalAccount, domainSeparator, keccak256, toHex } from "viem";

import { keccak256 as nativeKeccak, recoverAddress } from "../crypto";
import { messageDomain, recoverSigner, signMessage, signatureProblem } from "./eip712";
import { type DeltaBody, canonicalBytes } from "./netConfig";

type Account = Pick<LocalAccount, "address" | "signTypedData">;

export interface SignedDelta {
  body: Buffer /* canonical JSON of a DeltaBody */;
  signature: Hex;
}

export async function signDelta(account: Account, chainId: number, delta: DeltaBody): Promise<SignedDelta> {
  const body = canonicalBytes(delta);
  const message = { base: BigInt(delta.base), seq: BigInt(delta.seq), bodyHash: keccak256(body) };
  return { body, signature: await signMessage(account, chainId, "ConfigDelta", message) };
}

const DELTA_TYPE_HASH = Buffer.from(
  keccak256(toHex("ConfigDelta(uint256 base,uint256 seq,bytes32 bodyHash)")).slice(2),
  "hex",
);
const separators = new Map<number, Buffer>();

/**
 * The EIP-712 digest of a delta (what its signature signs), built with native keccak: every node verifies every
 * delta, and viem's pure-JS typed-data hashing cost most of a verification (D53). Equal to
 * `messageDigest(chainId, "ConfigDelta", …)` (property-tested in test/offchain/common/configMessages.test.ts).
 */
export function configDeltaDigest(chainId: number, base: number, seq: number, body: Uint8Array): Hex {
  let separator = separators.get(chainId);
  if (!separator) {
    separator = Buffer.from(domainSeparator({ domain: messageDomain(chainId) }).slice(2), "hex");
    separators.set(chainId, separator);
  }
  if (!Number.isSafeInteger(base) || base < 0 || !Number.isSafeInteger(seq) || seq < 0)
    throw new RangeError(`base ${base} and seq ${seq} must be non-negative safe integers`);
  const struct = Buffer.alloc(4 * 32);
  DELTA_TYPE_HASH.copy(struct, 0);
  struct.write(base.toString(16).padStart(64, "0"), 32, 32, "hex");
  struct.write(seq.toString(16).padStart(64, "0"), 64, 32, "hex");
  Buffer.from(nativeKeccak(body).slice(2), "hex").copy(struct, 96);
  const outer = Buffer.alloc(66);
  outer[0] = 0x19;
  outer[1] = 0x01;
  separator.copy(outer, 2);
  Buffer.from(nativeKeccak(struct).slice(2), "hex").copy(outer, 34);
  return nativeKeccak(outer);
}

/**
 * Who signed the delta whose body (already parsed to `delta`) is `bytes`; undefined for a malformed or
 * non-canonical signature (the same rule as every signed message, eip712.ts `signatureProblem`).
 */
export async function recoverDeltaSigner(
  chainId: number,
  delta: Pick<DeltaBody, "base" | "seq">,
  bytes: Uint8Array,
  signature: Hex,
): Promise<Address | undefined> {
  if (signatureProblem(signature) !== undefined) return undefined;
  return recoverAddress(configDeltaDigest(chainId, delta.base, delta.seq, bytes), signature);
}

export interface Hello {
  node: Address;
  role: string;
  url: string;
  /** Where the node says it runs (D68, regions.ts `regionFields`): both "" when undeclared. */
  country: string;
  region: string;
  version: number;
  seq: number;
}

/** The hello a subscriber sends over a stargate's challenge (`nonce`: 32 bytes). */
export function signHello(
  account: Account,
  chainId: number,
  hello: Omit<Hello, "node">,
  challenge: { stargate: Address; nonce: Hex },
): Promise<Hex> {
  return signMessage(account, chainId, "ConfigHello", helloMessage({ ...hello, node: account.address }, challenge));
}

export function recoverHelloSigner(
  chainId: number,
  hello: Hello,
  challenge: { stargate: Address; nonce: Hex },
  signature: Hex,
): Promise<Address | undefined> {
  return recoverSigner(chainId, "ConfigHello", helloMessage(hello, challenge), signature);
}

function helloMessage(hello: Hello, challenge: { stargate: Address; nonce: Hex }) {
  return {
    node: hello.node,
    stargate: challenge.stargate,
    role: hello.role,
    url: hello.url,
    country: hello.country,
    region: hello.region,
    version: BigInt(hello.version),
    seq: BigInt(hello.seq),
    nonce: challenge.nonce,
  };
}

export interface TokenClaims {
  issuer: Address;
  /** 32 random bytes, 0x lower-case hex: what a revocation names. */
  id: Hex;
  subject: string;
  scopes: readonly string[];
  /** Unix seconds. */
  expiresAt: number;
}

const tokenMessage = (claims: TokenClaims) => ({
  issuer: claims.issuer,
  id: claims.id,
  subject: claims.subject,
  scopes: claims.scopes.join(" "),
  expiresAt: BigInt(claims.expiresAt),
});

/** A bearer token: base64url of the claims' JSON, a dot, and the issuer's signature over them. */
export async function issueToken(
  account: Account,
  chainId: number,
  claims: Omit<TokenClaims, "issuer">,
): Promise<string> {
  const full: TokenClaims = { ...claims, issuer: account.address };
  const signature = await signMessage(account, chainId, "AccessToken", tokenMessage(full));
  return `${Buffer.from(JSON.stringify(full)).toString("base64url")}.${signature}`;
}

/** The most a token's text may be (checked before anything is decoded). */
export const MAX_TOKEN_LENGTH = 2048;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{1,1900}\.0x[0-9a-fA-F]{130}$/;

/**
 * The claims a token names and its signature, without checking the signature (no key recovery: cheap), or the
 * reason it is not a token. Receivers check what they can from the claims (expiry, revocation, issuer) before
 * paying for `readToken`'s recovery.
 */
export function decodeToken(token: string): { claims: TokenClaims; signature: Hex } | string {
  if (token.length > MAX_TOKEN_LENGTH || !TOKEN_SHAPE.test(token)) return "the token is malformed";
  const [payload, signature] = token.split(".") as [string, Hex];
  let claims: TokenClaims;
  try {
    claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as TokenClaims;
  } catch {
    return "the token is malformed";
  }
  if (
    typeof claims !== "object" ||
    claims === null ||
    typeof claims.issuer !== "string" ||
    !/^0x[0-9a-fA-F]{40}$/.test(claims.issuer) ||
    typeof claims.id !== "string" ||
    !/^0x[0-9a-f]{64}$/.test(claims.id) ||
    typeof claims.subject !== "string" ||
    !Array.isArray(claims.scopes) ||
    !claims.scopes.every((s) => typeof s === "string" && /^[a-z:]{1,64}$/.test(s)) ||
    !Number.isSafeInteger(claims.expiresAt)
  )
    return "the token is malformed";
  return { claims, signature };
}

/** Whether the decoded token's signature recovers to the issuer it names. */
export async function tokenSignedByIssuer(chainId: number, claims: TokenClaims, signature: Hex): Promise<boolean> {
  const signer = await recoverSigner(chainId, "AccessToken", tokenMessage(claims), signature).catch(() => undefined);
  return signer !== undefined && signer.toLowerCase() === claims.issuer.toLowerCase();
}

/**
 * The claims of a token whose signature recovers to the issuer it names, or the reason it is not one. Expiry,
 * revocation and whether the issuer is an admitted stargate are the caller's checks (they need a clock and the
 * chain).
 */
export async function readToken(chainId: number, token: string): Promise<TokenClaims | string> {
  const decoded = decodeToken(token);
  if (typeof decoded === "string") return decoded;
  if (!(await tokenSignedByIssuer(chainId, decoded.claims, decoded.signature)))
    return "the token is not signed by its issuer";
  return decoded.claims;
}
