/**
 * Edge Storage's object manifest (issue 21, docs/storage.md): what an owner publishes about one encrypted,
 * erasure-coded object, signed by the owner's wallet key as EIP-712 `StorageManifest` in the protocol's message
 * domain. It says how to rebuild the object (k of n fragments of `fragmentSize` bytes, each with its sha256, the
 * ciphertext's length and the AES-256-GCM nonce) and never carries a key.
 *
 * Identity: `objectId` = keccak256("edge-storage/object/v1" || owner (20 bytes) || nonce (32 bytes)), the nonce
 * being the client's random 32 bytes. The verifier recomputes it, and the owner is part of both the id and the
 * signed message, so nobody else can sign a manifest under an id that is someone else's: their id would differ.
 *
 * Placement (fragment index -> host) is NOT covered by the owner's signature: gateways decide it and repair moves
 * fragments while the owner is offline. A fragment is checked against its signed sha256 wherever it is found, so
 * a wrong placement can withhold an object but never substitute its bytes. The fragment hashes enter the signed
 * message as one keccak256 over the n digests (index order) to keep the typed message small.
 *
 * The typed struct lives here rather than in eip712.ts's MESSAGE_TYPES (as creditQuery.ts's): only owners sign it
 * and only storage verifies it. Canonical signatures only (eip712.ts `signatureProblem`: 65 bytes, v 27/28, low s).
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import { Value } from "typebox/value";
import { type Address, type Hex, type LocalAccount, hashTypedData } from "viem";

import { keccak256, recoverAddress } from "../crypto";
import { type SignatureCheck, messageDomain, signatureProblem } from "./eip712";
import { AddressSchema, SignatureSchema, SmallDecimalSchema } from "./primitives";

/** The largest object (plaintext bytes) Edge Storage takes: 2 MiB. */
export const STORAGE_MAX_OBJECT_BYTES = 2 * 1024 * 1024;
/** AES-256-GCM's tag, appended to the ciphertext before erasure coding. */
export const STORAGE_GCM_TAG_BYTES = 16;
/** At most this many data fragments (k) and parity fragments (n - k): the Reed-Solomon codec's limits. */
export const STORAGE_MAX_DATA_FRAGMENTS = 24;
export const STORAGE_MAX_PARITY_FRAGMENTS = 6;
export const STORAGE_MAX_FRAGMENTS = STORAGE_MAX_DATA_FRAGMENTS + STORAGE_MAX_PARITY_FRAGMENTS;
export const STORAGE_MANIFEST_VERSION = 1;
export const STORAGE_CIPHER = "AES-256-GCM";
export const STORAGE_KDF = "HKDF-SHA256";

const ID_DOMAIN = Buffer.from("edge-storage/object/v1", "utf8");

const Bytes32Hex = Type.String({ pattern: "^0x[0-9a-f]{64}$" });
const MAX_CIPHER_BYTES = STORAGE_MAX_OBJECT_BYTES + STORAGE_GCM_TAG_BYTES;

export const StoragePlacementSchema = Type.Object(
  { fragment: Type.Integer({ minimum: 0, maximum: STORAGE_MAX_FRAGMENTS - 1 }), host: AddressSchema },
  { additionalProperties: false },
);
export type StoragePlacement = Static<typeof StoragePlacementSchema>;

export const StorageManifestSchema = Type.Object(
  {
    version: Type.Literal(STORAGE_MANIFEST_VERSION),
    /** Lowercase hex: ids are compared and stored as text. */
    objectId: Bytes32Hex,
    owner: AddressSchema,
    /** The client's random 32 bytes the id derives from (lowercase hex). */
    nonce: Bytes32Hex,
    /** Plaintext bytes. */
    size: Type.Integer({ minimum: 0, maximum: STORAGE_MAX_OBJECT_BYTES }),
    /** Ciphertext plus the 16-byte tag: size + 16. */
    cipherSize: Type.Integer({ minimum: STORAGE_GCM_TAG_BYTES, maximum: MAX_CIPHER_BYTES }),
    k: Type.Integer({ minimum: 1, maximum: STORAGE_MAX_DATA_FRAGMENTS }),
    n: Type.Integer({ minimum: 2, maximum: STORAGE_MAX_FRAGMENTS }),
    /** Bytes per fragment: storageFragmentSize(cipherSize, k). */
    fragmentSize: Type.Integer({ minimum: 8, maximum: MAX_CIPHER_BYTES + 8 }),
    /** sha256 of each fragment, by index (data fragments 0..k-1, then parity). */
    fragments: Type.Array(Bytes32Hex, { minItems: 2, maxItems: STORAGE_MAX_FRAGMENTS }),
    encryption: Type.Object(
      {
        cipher: Type.Literal(STORAGE_CIPHER),
        kdf: Type.Literal(STORAGE_KDF),
        /** The 12-byte GCM nonce (lowercase hex); the key is the owner's, derived per object, never here. */
        iv: Type.String({ pattern: "^0x[0-9a-f]{24}$" }),
      },
      { additionalProperties: false },
    ),
    /** Unix milliseconds when the owner made the object. */
    createdAt: SmallDecimalSchema,
    /** Where fragments are held; empty until a gateway places them. Not signed by the owner (see above). */
    placement: Type.Array(StoragePlacementSchema, { maxItems: STORAGE_MAX_FRAGMENTS }),
    signature: SignatureSchema,
  },
  { additionalProperties: false },
);
export type StorageManifest = Static<typeof StorageManifestSchema>;
export type UnsignedStorageManifest = Omit<StorageManifest, "signature">;

const STORAGE_TYPES = {
  StorageManifest: [
    { name: "owner", type: "address" },
    { name: "objectId", type: "bytes32" },
    { name: "nonce", type: "bytes32" },
    { name: "version", type: "uint256" },
    { name: "size", type: "uint256" },
    { name: "cipherSize", type: "uint256" },
    { name: "k", type: "uint256" },
    { name: "n", type: "uint256" },
    { name: "fragmentSize", type: "uint256" },
    { name: "fragmentsHash", type: "bytes32" },
    { name: "scheme", type: "string" },
    { name: "iv", type: "bytes12" },
    { name: "createdAt", type: "uint256" },
  ],
} as const;

/** The object id of `owner`'s object made with the client nonce `nonce` (32 bytes). */
export function storageObjectId(owner: string, nonce: Hex): Hex {
  const ownerBytes = Buffer.from(owner.slice(2), "hex");
  const nonceBytes = Buffer.from(nonce.slice(2), "hex");
  if (ownerBytes.length !== 20 || nonceBytes.length !== 32) throw new TypeError("owner is 20 bytes, nonce 32 bytes");
  return keccak256(Buffer.concat([ID_DOMAIN, ownerBytes, nonceBytes]));
}

/** Bytes per fragment for `cipherSize` bytes over k data fragments: ceil(cipherSize / k), rounded up to 8 (the codec's unit). */
export function storageFragmentSize(cipherSize: number, k: number): number {
  return Math.max(8, Math.ceil(Math.ceil(cipherSize / k) / 8) * 8);
}

/** keccak256 over the fragments' 32-byte sha256 digests in index order: what the owner's signature covers. */
export function storageFragmentsHash(fragments: readonly string[]): Hex {
  return keccak256(Buffer.concat(fragments.map((h) => Buffer.from(h.slice(2), "hex"))));
}

const typed = (m: UnsignedStorageManifest) => ({
  types: STORAGE_TYPES,
  primaryType: "StorageManifest" as const,
  message: {
    // Lowercase: the same bytes, and a mixed-case address with a bad EIP-55 checksum is not an error.
    owner: m.owner.toLowerCase() as Address,
    objectId: m.objectId as Hex,
    nonce: m.nonce as Hex,
    version: BigInt(m.version),
    size: BigInt(m.size),
    cipherSize: BigInt(m.cipherSize),
    k: BigInt(m.k),
    n: BigInt(m.n),
    fragmentSize: BigInt(m.fragmentSize),
    fragmentsHash: storageFragmentsHash(m.fragments),
    scheme: `${m.encryption.cipher}/${m.encryption.kdf}`,
    iv: m.encryption.iv as Hex,
    createdAt: BigInt(m.createdAt),
  },
});

/**
 * Why `value` is not a well-formed manifest, or undefined: its schema, then what a schema cannot say (n - k
 * parity fragments within the codec's limit, one hash per fragment, sizes that agree, the id derived from owner
 * and nonce, placement indexes below n and each at most once). The signature is checked by checkStorageManifest.
 */
export function storageManifestProblem(value: unknown): string | undefined {
  if (!Value.Check(StorageManifestSchema, value)) {
    const first = Value.Errors(StorageManifestSchema, value)[0] as { instancePath?: string; message?: string };
    const at = first?.instancePath ? ` at ${first.instancePath}` : "";
    return `the manifest${at}: ${first?.message ?? "does not match its schema"}`;
  }
  const m = value as StorageManifest;
  const parity = m.n - m.k;
  if (parity < 1 || parity > STORAGE_MAX_PARITY_FRAGMENTS)
    return `n - k is ${parity}: between 1 and ${STORAGE_MAX_PARITY_FRAGMENTS} parity fragments`;
  if (m.fragments.length !== m.n) return `the manifest lists ${m.fragments.length} fragment hashes for n = ${m.n}`;
  if (m.cipherSize !== m.size + STORAGE_GCM_TAG_BYTES)
    return `cipherSize ${m.cipherSize} is not size ${m.size} + ${STORAGE_GCM_TAG_BYTES}`;
  const expected = storageFragmentSize(m.cipherSize, m.k);
  if (m.fragmentSize !== expected) return `fragmentSize ${m.fragmentSize} is not ${expected} for k = ${m.k}`;
  if (storageObjectId(m.owner, m.nonce as Hex) !== m.objectId)
    return `objectId ${m.objectId} is not derived from owner ${m.owner} and nonce ${m.nonce}`;
  const placed = new Set<number>();
  for (const { fragment } of m.placement) {
    if (fragment >= m.n) return `placement names fragment ${fragment}; the object has ${m.n}`;
    if (placed.has(fragment)) return `placement names fragment ${fragment} twice`;
    placed.add(fragment);
  }
  return undefined;
}

/** The EIP-712 digest the owner signs (placement excluded). */
export function storageManifestDigest(chainId: number, manifest: UnsignedStorageManifest): Hex {
  return hashTypedData({ ...typed(manifest), domain: messageDomain(chainId) });
}

/** Signs `manifest` (its owner must be `account`) and returns it with the signature. */
export async function signStorageManifest(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  chainId: number,
  manifest: UnsignedStorageManifest,
): Promise<StorageManifest> {
  if (manifest.owner.toLowerCase() !== account.address.toLowerCase())
    throw new TypeError(`the manifest's owner ${manifest.owner} is not the signer ${account.address}`);
  const signature = await account.signTypedData({ ...typed(manifest), domain: messageDomain(chainId) });
  return { ...manifest, signature };
}

/**
 * Checks `value` is a well-formed manifest (storageManifestProblem) signed canonically by its owner, and returns
 * the digest it signs; or why not ("malformed", "non-canonical", "wrong-signer"), never throwing.
 */
export function checkStorageManifest(chainId: number, value: unknown): SignatureCheck {
  const problem = storageManifestProblem(value);
  if (problem !== undefined) return { ok: false, reason: "malformed", message: problem };
  const manifest = value as StorageManifest;
  const sigProblem = signatureProblem(manifest.signature);
  if (sigProblem !== undefined) return { ok: false, reason: "non-canonical", message: sigProblem };
  const digest = storageManifestDigest(chainId, manifest);
  const signer = recoverAddress(digest, manifest.signature as Hex);
  if (signer === undefined || signer.toLowerCase() !== manifest.owner.toLowerCase())
    return { ok: false, reason: "wrong-signer", message: `the manifest is not signed by its owner ${manifest.owner}` };
  return { ok: true, digest };
}

/** Whether `value` is a well-formed manifest signed (canonically) by its owner. */
export const verifyStorageManifest = (chainId: number, value: unknown): boolean =>
  checkStorageManifest(chainId, value).ok;
