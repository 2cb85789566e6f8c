/**
 * One object through the client (docs/storage.md): `sealObject` encrypts it with the owner's key, erasure-codes the
 * ciphertext into n fragments, hashes each (sha256) and has the owner sign the manifest; `openObject` checks the
 * manifest's signature, drops every fragment whose length or sha256 does not match, rebuilds the ciphertext from
 * k good ones and decrypts it. Nothing here talks to the network: putting fragments on hosts comes later.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Hex, LocalAccount } from "viem";

import {
  STORAGE_CIPHER,
  STORAGE_GCM_TAG_BYTES,
  STORAGE_KDF,
  STORAGE_MANIFEST_VERSION,
  STORAGE_MAX_OBJECT_BYTES,
  type StorageManifest,
  checkStorageManifest,
  signStorageManifest,
  storageObjectId,
} from "../common/protocol/storageManifest";
import { decryptObject, encryptObject } from "./cipher";
import { decodeFragments, encodeFragments } from "../common/erasure";
import { storageError } from "./errors";
import type { StorageKey } from "./keys";

/**
 * The defaults (docs/storage.md "Why k = 10 of n = 16"): ten data fragments of ~205 KiB for a 2 MiB object and
 * six parity fragments, so any six hosts may be lost; 1.6 times the object stored.
 */
export const DEFAULT_DATA_FRAGMENTS = 10;
export const DEFAULT_TOTAL_FRAGMENTS = 16;

export interface SealOptions {
  /** Data fragments (default 10). */
  k?: number;
  /** All fragments, data and parity (default 16). */
  n?: number;
  /** The client's 32 random bytes the object id derives from (tests pass a fixed one). */
  nonce?: Buffer;
  /** Creation time, unix ms (default now). */
  now?: number;
}

export interface SealedObject {
  manifest: StorageManifest;
  /** Fragment i is the manifest's fragment i. */
  fragments: Buffer[];
}

export const sha256Hex = (bytes: Uint8Array): Hex => `0x${createHash("sha256").update(bytes).digest("hex")}`;

/** Throws STORAGE_OBJECT_TOO_LARGE (413) for an object over 2 MiB. */
export function checkObjectSize(size: number): void {
  if (size > STORAGE_MAX_OBJECT_BYTES)
    throw storageError(
      "STORAGE_OBJECT_TOO_LARGE",
      `the object is ${size} bytes; Edge Storage takes objects of at most ${STORAGE_MAX_OBJECT_BYTES} bytes (2 MiB)`,
      { details: { size, maximum: STORAGE_MAX_OBJECT_BYTES } },
    );
}

/**
 * Encrypts and erasure-codes `plaintext` as a new object of `owner` (the wallet that signs its manifest), with
 * the storage key `key` (from a key file, or derived from a wallet: not necessarily the owner's).
 */
export async function sealObject(
  key: StorageKey,
  owner: Pick<LocalAccount, "address" | "signTypedData">,
  chainId: number,
  plaintext: Uint8Array,
  options: SealOptions = {},
): Promise<SealedObject> {
  checkObjectSize(plaintext.length);
  const k = options.k ?? DEFAULT_DATA_FRAGMENTS;
  const n = options.n ?? DEFAULT_TOTAL_FRAGMENTS;
  const nonce = options.nonce ?? randomBytes(32);
  if (nonce.length !== 32) throw new TypeError("the object nonce is 32 bytes");
  const nonceHex: Hex = `0x${nonce.toString("hex")}`;
  const objectId = storageObjectId(owner.address, nonceHex);
  const { iv, payload } = encryptObject(key, { objectId, owner: owner.address }, plaintext);
  const { fragmentSize, fragments } = await encodeFragments(payload, k, n);
  const manifest = await signStorageManifest(owner, chainId, {
    version: STORAGE_MANIFEST_VERSION,
    objectId,
    owner: owner.address,
    nonce: nonceHex,
    size: plaintext.length,
    cipherSize: plaintext.length + STORAGE_GCM_TAG_BYTES,
    k,
    n,
    fragmentSize,
    fragments: fragments.map(sha256Hex),
    encryption: { cipher: STORAGE_CIPHER, kdf: STORAGE_KDF, iv: `0x${iv.toString("hex")}` },
    createdAt: String(options.now ?? Date.now()),
    placement: [],
  });
  return { manifest, fragments };
}

/** The fragment slots after the hash check: the ones that match, and the indexes that were given but failed. */
export function checkFragments(
  manifest: Pick<StorageManifest, "n" | "fragmentSize" | "fragments">,
  fragments: ReadonlyArray<Uint8Array | undefined>,
): { good: Array<Uint8Array | undefined>; corrupt: number[] } {
  const corrupt: number[] = [];
  const good = Array.from({ length: manifest.n }, (_, i) => {
    const fragment = fragments[i];
    if (fragment === undefined) return undefined;
    if (fragment.length === manifest.fragmentSize && sha256Hex(fragment) === manifest.fragments[i]) return fragment;
    corrupt.push(i);
    return undefined;
  });
  return { good, corrupt };
}

export interface OpenOptions {
  /** Refuse a manifest of another owner (what a reader expects, e.g. from its own listing). */
  owner?: string;
}

/**
 * The plaintext of the object `manifest` describes, from its fragments (`fragments[i]` fragment i, or undefined
 * when missing). The manifest must be signed canonically by its owner (STORAGE_MANIFEST_INVALID); fragments that
 * fail their sha256 are dropped and reported in `corrupt`; fewer than k left: STORAGE_NOT_ENOUGH_FRAGMENTS; a
 * wrong key: STORAGE_DECRYPT_FAILED.
 */
export async function openObject(
  key: StorageKey,
  chainId: number,
  manifest: unknown,
  fragments: ReadonlyArray<Uint8Array | undefined>,
  options: OpenOptions = {},
): Promise<{ plaintext: Buffer; corrupt: number[] }> {
  const check = checkStorageManifest(chainId, manifest);
  if (!check.ok) throw storageError("STORAGE_MANIFEST_INVALID", `refused manifest: ${check.message}`);
  const m = manifest as StorageManifest;
  if (options.owner !== undefined && options.owner.toLowerCase() !== m.owner.toLowerCase())
    throw storageError("STORAGE_MANIFEST_INVALID", `the manifest is ${m.owner}'s, not ${options.owner}'s`);
  const { good, corrupt } = checkFragments(m, fragments);
  const usable = good.filter((f) => f !== undefined).length;
  if (usable < m.k)
    throw storageError(
      "STORAGE_NOT_ENOUGH_FRAGMENTS",
      `${usable} of ${m.n} fragments of object ${m.objectId} passed their sha256 check ` +
        `(${corrupt.length} corrupt${corrupt.length ? `: ${corrupt.join(", ")}` : ""}, ` +
        `${m.n - usable - corrupt.length} missing); ${m.k} are needed`,
      { details: { usable, needed: m.k, corrupt } },
    );
  const payload = await decodeFragments(good, m.k, m.n, m.fragmentSize, m.cipherSize);
  const iv = Buffer.from(m.encryption.iv.slice(2), "hex");
  const plaintext = decryptObject(key, { objectId: m.objectId as Hex, owner: m.owner }, iv, payload);
  return { plaintext, corrupt };
}
