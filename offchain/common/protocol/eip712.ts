/**
 * The EIP-712 side of the wire protocol: domain "Edge Network" v1 on the protocol's chain, no verifying
 * contract (messages are checked off-chain), one typed struct per signed message. The daemon that signs and
 * the oracle and billing services that verify use these same definitions.
 */
import {
  type Address,
  type Hex,
  type LocalAccount,
  type MessageDefinition,
  type TypedDataDomain,
  hashTypedData,
} from "viem";

import { recoverAddress } from "../crypto";

export function messageDomain(chainId: number): TypedDataDomain {
  return { name: "Edge Network", version: "1", chainId };
}

export const MESSAGE_TYPES = {
  /** A gateway's count of jobs each host returned in an epoch; the highest sequence of an epoch wins. */
  JobReport: [
    { name: "gateway", type: "address" },
    { name: "epoch", type: "uint256" },
    { name: "sequence", type: "uint256" },
    { name: "entriesHash", type: "bytes32" },
  ],
  /**
   * A host's own cumulative count of the jobs it returned at one gateway in an epoch (Revision 2). `sequence`
   * strictly increases over all the host's tallies; the count never goes down.
   */
  HostTally: [
    { name: "host", type: "address" },
    { name: "gateway", type: "address" },
    { name: "epoch", type: "uint256" },
    { name: "jobs", type: "uint256" },
    { name: "sequence", type: "uint256" },
  ],
  /** A stargate's sign of life in an epoch. */
  Heartbeat: [
    { name: "stargate", type: "address" },
    { name: "epoch", type: "uint256" },
    { name: "timestamp", type: "uint256" },
  ],
  /** A gateway's batch of usage records for billing. */
  UsageBatch: [
    { name: "gateway", type: "address" },
    { name: "sequence", type: "uint256" },
    { name: "recordsHash", type: "bytes32" },
  ],
  /**
   * A host asking a gateway to route jobs to it (or, with `leaving`, to stop); timestamp in milliseconds;
   * `country` and `region` where it says it runs (D68; both "" when undeclared).
   */
  HostRegistration: [
    { name: "host", type: "address" },
    { name: "gateway", type: "address" },
    { name: "url", type: "string" },
    { name: "country", type: "string" },
    { name: "region", type: "string" },
    { name: "leaving", type: "bool" },
    { name: "timestamp", type: "uint256" },
  ],
  /** A customer's job request to a gateway; timestamp in seconds. */
  JobRequest: [
    { name: "customer", type: "address" },
    { name: "gateway", type: "address" },
    { name: "bodyHash", type: "bytes32" },
    { name: "timestamp", type: "uint256" },
  ],
  /**
   * A change to the network configuration between anchored versions (D51): `seq` counts from 1 per `base`
   * version; `bodyHash` is keccak256 of the delta body's canonical JSON. Signed by a DELTA_SIGNER_ROLE key.
   */
  ConfigDelta: [
    { name: "base", type: "uint256" },
    { name: "seq", type: "uint256" },
    { name: "bodyHash", type: "bytes32" },
  ],
  /**
   * A node subscribing to a stargate's configuration stream, over the stargate's fresh challenge; `country` and
   * `region` are where it says it runs (D68; both "" when undeclared).
   */
  ConfigHello: [
    { name: "node", type: "address" },
    { name: "stargate", type: "address" },
    { name: "role", type: "string" },
    { name: "url", type: "string" },
    { name: "country", type: "string" },
    { name: "region", type: "string" },
    { name: "version", type: "uint256" },
    { name: "seq", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
  /**
   * A Network API bearer token (D51): issued by an admitted stargate to `subject` (a user name, or a wallet
   * address) with space-separated `scopes`, until `expiresAt` (unix seconds); `id` is what a revocation names.
   */
  AccessToken: [
    { name: "issuer", type: "address" },
    { name: "id", type: "bytes32" },
    { name: "subject", type: "string" },
    { name: "scopes", type: "string" },
    { name: "expiresAt", type: "uint256" },
  ],
  /**
   * A stargate's health verdicts on the endpoints it checks (D55), as served at GET /health/verdicts: `atMs` when
   * it signed them (unix milliseconds), `verdictsHash` keccak256 of the verdicts' canonical JSON.
   */
  HealthVerdicts: [
    { name: "stargate", type: "address" },
    { name: "atMs", type: "uint256" },
    { name: "verdictsHash", type: "bytes32" },
  ],
  /**
   * A gateway's request to the certificate service (D64): `action` names the operation (CERT_ACTIONS), `subject`
   * the domain or challenge token it is about, `bodyHash` keccak256 of the body's RFC 8785 canonical JSON (of
   * `null` without a body), `timestamp` unix milliseconds. The replay key is the digest.
   */
  CertRequest: [
    { name: "gateway", type: "address" },
    { name: "action", type: "string" },
    { name: "subject", type: "string" },
    { name: "bodyHash", type: "bytes32" },
    { name: "timestamp", type: "uint256" },
  ],
  /**
   * An owner's request to a gateway's Edge Storage API (D75): `action` one of STORAGE_ACTIONS, `objectId` the
   * object (zero for `list`), `bodyHash` sha256 of the raw request body (of no bytes without one), `nonce` 32 random
   * bytes (two requests in one second differ), `timestamp` unix seconds. The gateway's replay guard keys on the digest.
   */
  StorageRequest: [
    { name: "owner", type: "address" },
    { name: "gateway", type: "address" },
    { name: "action", type: "string" },
    { name: "objectId", type: "bytes32" },
    { name: "bodyHash", type: "bytes32" },
    { name: "nonce", type: "bytes32" },
    { name: "timestamp", type: "uint256" },
  ],
} as const;

export type MessageType = keyof typeof MESSAGE_TYPES;

/** The typed message of `T`, as signed: addresses, bigints for uint256, `0x` hex for bytes32. */
export type Message<T extends MessageType> = MessageDefinition<typeof MESSAGE_TYPES, T>["message"];

/** Signs `message` as `type` in the protocol's message domain. */
export function signMessage<T extends MessageType>(
  account: Pick<LocalAccount, "signTypedData">,
  chainId: number,
  type: T,
  message: Message<T>,
): Promise<Hex> {
  // The public signature types the message per T; viem cannot narrow a generic T, hence the cast.
  return account.signTypedData({
    domain: messageDomain(chainId),
    types: MESSAGE_TYPES,
    primaryType: type,
    message,
  } as never);
}

/** Half the secp256k1 group order: a canonical signature's s is at most this (EIP-2). */
const HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
const SIGNATURE_HEX = /^0x[0-9a-fA-F]{130}$/;

/**
 * Why `signature` is not in the one canonical form receivers accept, or undefined when it is: 65 bytes as hex
 * (letter case free: it is the same bytes), v 27 or 28 (what every wallet and viem sign), s in the lower half of
 * the group order (EIP-2). Each signature has exactly one canonical twin (v 0/1 -> 27/28, high s -> n - s with
 * v flipped), so the check is a courtesy that names the problem; replay protection never relies on it and keys
 * on the signed digest instead ({messageDigest}).
 */
export function signatureProblem(signature: string): string | undefined {
  if (!SIGNATURE_HEX.test(signature)) return "the signature is not 65 bytes of 0x-prefixed hex";
  const v = Number.parseInt(signature.slice(130, 132), 16);
  if (v !== 27 && v !== 28) return `the signature's v is ${v}: only 27 or 28 is accepted`;
  if (BigInt(`0x${signature.slice(66, 130)}`) > HALF_ORDER)
    return "the signature's s is in the upper half of the curve order: only the low-s form is accepted (EIP-2)";
  return undefined;
}

/** The EIP-712 digest of `message` as `type`: what is signed, and the key of every replay guard; undefined when the message does not encode. */
export function messageDigest<T extends MessageType>(chainId: number, type: T, message: Message<T>): Hex | undefined {
  try {
    return hashTypedData({ domain: messageDomain(chainId), types: MESSAGE_TYPES, primaryType: type, message } as never);
  } catch {
    return undefined;
  }
}

/**
 * Recovers who signed `message` as `type`; a malformed or non-canonical signature ({signatureProblem}) recovers
 * nobody (undefined).
 */
export async function recoverSigner<T extends MessageType>(
  chainId: number,
  type: T,
  message: Message<T>,
  signature: Hex,
): Promise<Address | undefined> {
  const digest = messageDigest(chainId, type, message);
  if (digest === undefined || signatureProblem(signature) !== undefined) return undefined;
  return recoverAddress(digest, signature);
}

/** A checked signature: its digest (the replay key), or why it was refused. */
export type SignatureCheck =
  { ok: true; digest: Hex } | { ok: false; reason: "malformed" | "non-canonical" | "wrong-signer"; message: string };

/**
 * Checks that `signature` over `message` is canonical and recovers to `claimed` (any letter case), and returns
 * the digest it signs: receivers that remember what they served key on it, never on the signature's text.
 */
export async function checkSignature<T extends MessageType>(
  chainId: number,
  type: T,
  message: Message<T>,
  signature: Hex,
  claimed: string,
): Promise<SignatureCheck> {
  const digest = messageDigest(chainId, type, message);
  if (digest === undefined) return { ok: false, reason: "malformed", message: `the ${type} message does not encode` };
  const problem = signatureProblem(signature);
  if (problem !== undefined) return { ok: false, reason: "non-canonical", message: problem };
  const signer = recoverAddress(digest, signature);
  if (signer === undefined || signer.toLowerCase() !== claimed.toLowerCase())
    return { ok: false, reason: "wrong-signer", message: `the ${type} is not signed by ${claimed}` };
  return { ok: true, digest };
}

/**
 * True when `signature` over `message` is canonical and recovers to `claimed` (any letter case). A malformed or
 * non-canonical signature, a message that does not encode, or another signer: false.
 */
export async function isSignedBy<T extends MessageType>(
  chainId: number,
  type: T,
  message: Message<T>,
  signature: Hex,
  claimed: string,
): Promise<boolean> {
  return (await checkSignature(chainId, type, message, signature, claimed)).ok;
}
