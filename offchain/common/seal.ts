/**
 * Sealed boxes to a device key (ECIES over secp256k1): how a certificate's private key travels from the
 * certificate service to an admitted gateway (D64). Only the holder of the device's private key can open one, so
 * the key is confidential even where the channel is plain HTTP or passes a logging proxy, and a copy replayed to
 * anyone else is useless.
 *
 * Construction (node:crypto only): a fresh ephemeral secp256k1 key per box; ECDH with the recipient's public key;
 * HKDF-SHA256 over the shared x coordinate, salted with the ephemeral public key, info "edge-seal-v1" -> a 32-byte
 * key; AES-256-GCM with a random 12-byte IV, the recipient's public key and `context` (for example the domain) as
 * additional data, so a box made for one domain or one device does not open as another.
 */
import { createCipheriv, createDecipheriv, createECDH, hkdfSync, randomBytes } from "node:crypto";

import { type Static, Type } from "@fastify/type-provider-typebox";

const B64 = (maxLength: number) => Type.String({ pattern: "^[A-Za-z0-9+/]*={0,2}$", maxLength });

export const SealedSchema = Type.Object(
  {
    /** The ephemeral public key, uncompressed (65 bytes), base64. */
    ephemeral: B64(100),
    iv: B64(20),
    tag: B64(30),
    ciphertext: B64(65_536),
  },
  { additionalProperties: false },
);
export type Sealed = Static<typeof SealedSchema>;

const INFO = Buffer.from("edge-seal-v1");

function deriveKey(shared: Buffer, ephemeral: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", shared, ephemeral, INFO, 32));
}

function additionalData(recipient: Buffer, context: string): Buffer {
  return Buffer.concat([recipient, Buffer.from(context, "utf8")]);
}

/** Seals `plaintext` to the uncompressed secp256k1 public key `recipient` (65 bytes, 0x04 first). */
export function seal(recipient: Buffer, plaintext: Buffer, context: string): Sealed {
  if (recipient.length !== 65 || recipient[0] !== 4)
    throw new TypeError("expected an uncompressed secp256k1 public key");
  const ecdh = createECDH("secp256k1");
  const ephemeral = ecdh.generateKeys();
  const key = deriveKey(ecdh.computeSecret(recipient), ephemeral);
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(additionalData(recipient, context));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    ephemeral: ephemeral.toString("base64"),
    iv: iv.toString("base64"),
    tag: cipher.getAuthTag().toString("base64"),
    ciphertext: ciphertext.toString("base64"),
  };
}

/** Opens a box sealed to the public key of `privateKey` (0x + 64 hex digits); throws when it does not open. */
export function unseal(privateKey: string, sealed: Sealed, context: string): Buffer {
  const ecdh = createECDH("secp256k1");
  ecdh.setPrivateKey(Buffer.from(privateKey.replace(/^0x/, ""), "hex"));
  const recipient = ecdh.getPublicKey();
  const ephemeral = Buffer.from(sealed.ephemeral, "base64");
  const key = deriveKey(ecdh.computeSecret(ephemeral), ephemeral);
  const iv = Buffer.from(sealed.iv, "base64");
  if (iv.length !== 12) throw new TypeError("a sealed box's IV is 12 bytes");
  // The full 16-byte tag only: GCM would otherwise accept a truncated one (down to 4 bytes), far easier to forge.
  const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: 16 });
  decipher.setAAD(additionalData(recipient, context));
  decipher.setAuthTag(Buffer.from(sealed.tag, "base64"));
  return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, "base64")), decipher.final()]);
}
