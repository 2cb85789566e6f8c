/**
 * AES-256-GCM of one object (docs/storage.md "Encryption"): the object's own key (StorageKey.objectKey: HKDF of
 * the owner's root key over the object id and owner), a random 12-byte nonce per encryption, and additional data
 * that binds the ciphertext to its object id and owner, so fragments of one object never decrypt as another's.
 * The output is ciphertext || 16-byte tag: what erasure coding splits. Keys never leave this module's callers.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { Hex } from "viem";

import { STORAGE_GCM_TAG_BYTES } from "../common/protocol/storageManifest";
import { storageError } from "./errors";
import type { StorageKey } from "./keys";

export const STORAGE_IV_BYTES = 12;
const AAD_DOMAIN = Buffer.from("edge-storage/v1/aes-256-gcm", "utf8");

/** Which object a ciphertext belongs to: its id and owner, bound as additional authenticated data. */
export interface ObjectIdentity {
  objectId: Hex;
  owner: string;
}

function additionalData({ objectId, owner }: ObjectIdentity): Buffer {
  return Buffer.concat([
    AAD_DOMAIN,
    Buffer.from(objectId.slice(2), "hex"),
    Buffer.from(owner.slice(2).toLowerCase(), "hex"),
  ]);
}

/** Encrypts `plaintext` as `object`; returns the nonce and ciphertext || tag. */
export function encryptObject(
  key: StorageKey,
  object: ObjectIdentity,
  plaintext: Uint8Array,
  iv: Buffer = randomBytes(STORAGE_IV_BYTES),
): { iv: Buffer; payload: Buffer } {
  if (iv.length !== STORAGE_IV_BYTES) throw new TypeError(`the nonce is ${STORAGE_IV_BYTES} bytes`);
  const objectKey = key.objectKey(object.objectId, object.owner);
  try {
    const cipher = createCipheriv("aes-256-gcm", objectKey, iv, { authTagLength: STORAGE_GCM_TAG_BYTES });
    cipher.setAAD(additionalData(object));
    const payload = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return { iv, payload };
  } finally {
    objectKey.fill(0);
  }
}

/**
 * Decrypts ciphertext || tag of `object`; a wrong key, altered bytes, or another object's id or owner fail GCM's
 * check: STORAGE_DECRYPT_FAILED, and no plaintext is returned.
 */
export function decryptObject(key: StorageKey, object: ObjectIdentity, iv: Buffer, payload: Buffer): Buffer {
  if (payload.length < STORAGE_GCM_TAG_BYTES)
    throw storageError("STORAGE_DECRYPT_FAILED", "the ciphertext is shorter than its authentication tag");
  const objectKey = key.objectKey(object.objectId, object.owner);
  try {
    const decipher = createDecipheriv("aes-256-gcm", objectKey, iv, { authTagLength: STORAGE_GCM_TAG_BYTES });
    decipher.setAAD(additionalData(object));
    decipher.setAuthTag(payload.subarray(payload.length - STORAGE_GCM_TAG_BYTES));
    const body = payload.subarray(0, payload.length - STORAGE_GCM_TAG_BYTES);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (error) {
    throw storageError(
      "STORAGE_DECRYPT_FAILED",
      `object ${object.objectId} does not authenticate: a wrong key (the key file or wallet it was stored with?) ` +
        "or altered ciphertext",
      { cause: error },
    );
  } finally {
    objectKey.fill(0);
  }
}
