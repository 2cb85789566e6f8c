/**
 * The owner's own storage key (docs/storage.md "Keys"): 32 secret bytes from which every object's AES-256 key is
 * derived with HKDF-SHA256 (node:crypto). It comes from one of two places and is never sent anywhere:
 *
 * - a key file: 32 random bytes as 64 hex digits and a newline, written by `keygen` with mode 0600 (never over an
 *   existing file) and refused when group or others may read or write it, or when another user owns it;
 * - a wallet signature over a fixed personal message (EIP-191) naming the wallet's address. ECDSA signatures are
 *   deterministic only when the signer follows RFC 6979 without extra entropy (viem, ethers, Ledger, Trezor and
 *   MetaMask do); a signer that randomises its nonce would give a new key each time, so `walletStorageKey` signs
 *   twice and refuses a wallet whose two signatures differ. The signature is normalised first (v 27/28, low s), so
 *   a wallet returning the other valid encoding of the same signature derives the same key.
 *
 * A StorageKey never prints: util.inspect, JSON and String show "[redacted]".
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { hkdfSync, randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { type Hex, type LocalAccount, hashMessage } from "viem";

import { recoverAddress } from "../common/crypto";
import { storageError } from "./errors";

export const STORAGE_KEY_BYTES = 32;
const KEY_FILE_TEXT = /^[0-9a-f]{64}\n?$/;
/** Salts and infos of the derivations: a key derived for one purpose is useless for another. */
const KEY_FILE_SALT = "edge-storage/v1/key-file";
const WALLET_SALT = "edge-storage/v1/wallet";
const ROOT_INFO = "edge-storage/v1/root";
const OBJECT_INFO = "edge-storage/v1/object-key";
const HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
const CURVE_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

const hkdf = (ikm: Uint8Array, salt: string | Uint8Array, info: string | Uint8Array): Buffer =>
  Buffer.from(hkdfSync("sha256", ikm, salt, info, STORAGE_KEY_BYTES));

/** The owner's root storage key. Holds its bytes privately; nothing prints them. */
export class StorageKey {
  readonly #root: Buffer;

  /** `root` is copied; `source` says where it came from (for messages only). */
  constructor(
    root: Uint8Array,
    readonly source: "key-file" | "wallet",
  ) {
    if (root.length !== STORAGE_KEY_BYTES) throw new TypeError(`a storage key is ${STORAGE_KEY_BYTES} bytes`);
    this.#root = Buffer.from(root);
  }

  /**
   * The AES-256 key of one object: HKDF-SHA256 with the object id as salt and the owner's address in the info,
   * so every object has its own key and a key never serves another owner's id.
   */
  objectKey(objectId: Hex, owner: string): Buffer {
    const info = Buffer.concat([Buffer.from(OBJECT_INFO, "utf8"), Buffer.from(owner.slice(2).toLowerCase(), "hex")]);
    return hkdf(this.#root, Buffer.from(objectId.slice(2), "hex"), info);
  }

  toJSON(): string {
    return "[redacted]";
  }

  toString(): string {
    return "[redacted]";
  }

  [inspect.custom](): string {
    return `StorageKey(${this.source}) [redacted]`;
  }
}

/** Writes a new key file of 32 random bytes (mode 0600; never over an existing file), flushed to disk. */
export function generateKeyFile(path: string): void {
  const text = randomBytes(STORAGE_KEY_BYTES).toString("hex") + "\n";
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "EEXIST" ? "it exists; a key file is never overwritten" : (error as Error).message;
    throw storageError("STORAGE_KEY_FILE_INVALID", `cannot create key file ${path}: ${why}`, { cause: error });
  }
  try {
    writeSync(fd, text);
    // Objects sealed with a key that a crash then loses are lost for good: the key reaches the disk first.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Why the file's owner and mode make it unfit to hold a key, or undefined (POSIX only; Windows has no such bits). */
export function keyFileModeProblem(mode: number, uid: number): string | undefined {
  if (process.platform === "win32") return undefined;
  if ((mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(3, "0");
    return `it is open to group or others (mode ${octal}): chmod 600 it`;
  }
  const me = process.getuid?.();
  if (me !== undefined && uid !== me && uid !== 0) return `it is owned by uid ${uid}, not by this user (${me})`;
  return undefined;
}

/** The storage key in the key file at `path`, checked for its mode and owner before it is read. */
export function readKeyFile(path: string): StorageKey {
  const invalid = (why: string, cause?: unknown) =>
    storageError("STORAGE_KEY_FILE_INVALID", `key file ${path}: ${why}`, { cause });
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    throw invalid((error as Error).message, error);
  }
  try {
    // fstat on the open descriptor: the file checked is the file read.
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw invalid("not a regular file");
    const problem = keyFileModeProblem(stat.mode, stat.uid);
    if (problem !== undefined) throw invalid(problem);
    if (stat.size > 128) throw invalid("not a key file (too long)");
    const buffer = Buffer.alloc(128);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    const text = buffer.subarray(0, length).toString("latin1");
    buffer.fill(0);
    if (!KEY_FILE_TEXT.test(text)) throw invalid("not a key file (64 lowercase hex digits and a newline expected)");
    const ikm = Buffer.from(text.slice(0, 64), "hex");
    const key = new StorageKey(hkdf(ikm, KEY_FILE_SALT, ROOT_INFO), "key-file");
    ikm.fill(0);
    return key;
  } finally {
    closeSync(fd);
  }
}

/** The fixed message a wallet signs to derive its storage key (EIP-191 personal message). */
export function walletKeyMessage(address: string): string {
  return (
    "Edge Storage encryption key, version 1.\n\n" +
    "Signing this derives the key that encrypts your Edge Storage objects. " +
    "Sign it only in an Edge Storage client: whoever holds this signature can read your objects.\n\n" +
    `Wallet: ${address.toLowerCase()}`
  );
}

/**
 * r || s of a 65-byte signature in its canonical form (low s, EIP-2): the two valid encodings of one signature
 * give the same bytes. Undefined when it is not 65 bytes with v in {0, 1, 27, 28}.
 */
function canonicalSignature(signature: Hex): { rs: Buffer; sig: Hex } | undefined {
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) return undefined;
  const bytes = Buffer.from(signature.slice(2), "hex");
  let v = bytes[64] >= 27 ? bytes[64] - 27 : bytes[64];
  if (v !== 0 && v !== 1) return undefined;
  let s = BigInt(`0x${bytes.subarray(32, 64).toString("hex")}`);
  if (s > HALF_ORDER) {
    s = CURVE_ORDER - s;
    v ^= 1;
  }
  const rs = Buffer.concat([bytes.subarray(0, 32), Buffer.from(s.toString(16).padStart(64, "0"), "hex")]);
  return { rs, sig: `0x${rs.toString("hex")}${(27 + v).toString(16)}` };
}

/**
 * The storage key from `signature`, the wallet `address`'s signature over walletKeyMessage(address) (made
 * anywhere: a browser wallet, a hardware wallet). Refused when it is not that wallet's signature of that message.
 */
export function storageKeyFromWalletSignature(address: string, signature: Hex): StorageKey {
  const canonical = canonicalSignature(signature);
  const signer = canonical && recoverAddress(hashMessage(walletKeyMessage(address)), canonical.sig);
  if (signer === undefined || signer.toLowerCase() !== address.toLowerCase())
    throw storageError("STORAGE_WALLET_KEY_INVALID", `the signature is not ${address}'s over the storage key message`);
  const info = Buffer.concat([Buffer.from(ROOT_INFO, "utf8"), Buffer.from(address.slice(2).toLowerCase(), "hex")]);
  return new StorageKey(hkdf(canonical!.rs, WALLET_SALT, info), "wallet");
}

/**
 * Asks `account` to sign the storage key message twice and derives its storage key; refuses a wallet whose two
 * signatures differ (it does not sign deterministically, RFC 6979, and would lose the key on the next run).
 */
export async function walletStorageKey(account: Pick<LocalAccount, "address" | "signMessage">): Promise<StorageKey> {
  const message = walletKeyMessage(account.address);
  const first = await account.signMessage({ message });
  const second = await account.signMessage({ message });
  const a = canonicalSignature(first);
  const b = canonicalSignature(second);
  if (a === undefined || b === undefined || !a.rs.equals(b.rs))
    throw storageError(
      "STORAGE_WALLET_KEY_INVALID",
      `wallet ${account.address} signed the storage key message twice with different signatures: it does not sign ` +
        "deterministically (RFC 6979), so it cannot derive a stable storage key; use a key file instead",
    );
  return storageKeyFromWalletSignature(account.address, first);
}
