/** Signature encodings for the tests of canonical-signature checks. */
import type { Hex } from "viem";

/** secp256k1's group order. */
export const ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** Every other encoding of a signature's bytes that secp256k1 recovery accepts: v 0/1, and the high-s twin. */
export function twins(signature: string): Hex[] {
  const r = signature.slice(2, 66);
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130), 16);
  const hex = (n: bigint | number, width: number) => n.toString(16).padStart(width, "0");
  return [`0x${r}${hex(s, 64)}${hex(v - 27, 2)}`, `0x${r}${hex(ORDER - s, 64)}${hex(v === 27 ? 28 : 27, 2)}`];
}
