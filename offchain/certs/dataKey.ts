/**
 * The data key (D64): 32 random bytes in `--data-key-file`, created 0600 on first start, that encrypt
 * certificates' private keys at rest (AES-256-GCM, a random 12-byte IV per key, the domain as additional data, so
 * a row copied to another domain does not open). A key file that is the wrong size or readable by others stops
 * the start: the database alone must not be enough to read the keys.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";

import { EdgeError } from "../common/errors";

export const DATA_KEY_BYTES = 32;

export interface SealedAtRest {
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

/** Reads the data key from `file`, creating it (0600, exclusively) when absent. */
export function loadDataKey(file: string): Buffer {
  mkdirSync(dirname(file), { recursive: true });
  try {
    const fd = openSync(file, "wx", 0o600);
    try {
      writeSync(fd, randomBytes(DATA_KEY_BYTES));
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077)
    throw new EdgeError(
      "CONFIG_INVALID",
      `the data key file ${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it`,
    );
  const key = readFileSync(file);
  if (key.length !== DATA_KEY_BYTES)
    throw new EdgeError("CONFIG_INVALID", `the data key file ${file} holds ${key.length} bytes, not ${DATA_KEY_BYTES}`);
  return key;
}

export function encryptAtRest(key: Buffer, plaintext: Buffer, domain: string): SealedAtRest {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(domain, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), ciphertext };
}

/** Throws when the box does not open with `key` for `domain`. */
export function decryptAtRest(key: Buffer, sealed: SealedAtRest, domain: string): Buffer {
  const decipher = createDecipheriv("aes-256-gcm", key, sealed.iv);
  decipher.setAAD(Buffer.from(domain, "utf8"));
  decipher.setAuthTag(sealed.tag);
  return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
}

const CHECK_TEXT = Buffer.from("edge-certs data key");
const CHECK_CONTEXT = "data-key-check";

/**
 * A box the database keeps to tell whether `key` is the one it was written with: made on first start, opened on
 * every later one. A start with another key stops here rather than failing each certificate read.
 */
export function dataKeyCheck(key: Buffer, stored: string | undefined, file: string): string | undefined {
  if (stored === undefined) {
    const box = encryptAtRest(key, CHECK_TEXT, CHECK_CONTEXT);
    return JSON.stringify({
      iv: box.iv.toString("base64"),
      tag: box.tag.toString("base64"),
      ciphertext: box.ciphertext.toString("base64"),
    });
  }
  try {
    const box = JSON.parse(stored) as Record<"iv" | "tag" | "ciphertext", string>;
    const opened = decryptAtRest(
      key,
      {
        iv: Buffer.from(box.iv, "base64"),
        tag: Buffer.from(box.tag, "base64"),
        ciphertext: Buffer.from(box.ciphertext, "base64"),
      },
      CHECK_CONTEXT,
    );
    if (opened.equals(CHECK_TEXT)) return undefined;
  } catch {
    // Falls through to the error below.
  }
  throw new EdgeError(
    "CONFIG_INVALID",
    `the data key in ${file} is not the key this database's private keys were encrypted with`,
  );
}
