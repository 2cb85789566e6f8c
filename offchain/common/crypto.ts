/**
 * Native keccak-256 and ECDSA public key recovery for the services' hot paths.
 *
 * viem's pure-JS primitives are exact but slow at ingestion rates: on these machines keccak-256 over the 52 KB
 * of a 1,000-entry job report costs ~7 ms and a recovery ~2.7 ms. The `keccak` and `secp256k1` packages ship
 * prebuilt native binaries in their npm tarballs (and fall back to JS when those do not load): 0.34 ms and
 * 0.1 ms. test/offchain/common/crypto.test.ts checks both against viem.
 */
import createKeccakHash from "keccak";
import secp256k1 from "secp256k1";
import { type Address, type Hex, getAddress } from "viem";

const HEX = /^0x(?:[0-9a-fA-F]{2})*$/;

function toBuffer(data: Uint8Array | Hex): Buffer {
  if (typeof data === "string") {
    if (!HEX.test(data)) throw new TypeError("expected 0x-prefixed hex with an even number of digits");
    return Buffer.from(data.slice(2), "hex");
  }
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function keccak256(data: Uint8Array | Hex): Hex {
  return `0x${createKeccakHash("keccak256").update(toBuffer(data)).digest("hex")}`;
}

/**
 * The address that signed the 32-byte `hash` with a 65-byte signature (r || s || v, v in {0, 1, 27, 28}), or
 * undefined when the signature is malformed or recovers no key.
 */
export function recoverAddress(hash: Hex, signature: Hex): Address | undefined {
  const lower = recoverLowerAddress(hash, signature);
  return lower === undefined ? undefined : getAddress(lower);
}

/**
 * recoverAddress in lowercase, without the checksum's extra (JS) keccak: for hot paths that compare addresses
 * case-insensitively (host tallies at ingestion).
 */
export function recoverLowerAddress(hash: Hex, signature: Hex): Hex | undefined {
  const publicKey = recoverPublicKey(hash, signature);
  return publicKey === undefined ? undefined : `0x${keccak256(publicKey.subarray(1)).slice(-40)}`;
}

/**
 * The uncompressed public key (65 bytes, 0x04 || x || y) that signed the 32-byte `hash`, or undefined when the
 * signature is malformed or recovers no key: what a receiver seals a reply to (offchain/common/seal.ts).
 */
export function recoverPublicKey(hash: Hex, signature: Hex): Buffer | undefined {
  if (!HEX.test(hash) || hash.length !== 66 || !HEX.test(signature) || signature.length !== 132) return undefined;
  const sig = Buffer.from(signature.slice(2), "hex");
  const v = sig[64];
  const recovery = v >= 27 ? v - 27 : v;
  if (recovery !== 0 && recovery !== 1) return undefined;
  try {
    return Buffer.from(secp256k1.ecdsaRecover(sig.subarray(0, 64), recovery, Buffer.from(hash.slice(2), "hex"), false));
  } catch {
    return undefined;
  }
}
