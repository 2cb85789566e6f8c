/**
 * The shared building blocks of every wire message's schema: what an address, a signature, a decimal integer
 * and a URL look like on the wire. Strings for every integer that may pass 2^53 (and for epochs, sequences
 * and timestamps, so a signed value is never rounded by a JSON parser).
 */
import { Type } from "@fastify/type-provider-typebox";

import { ADDRESS_PATTERN, SIGNATURE_PATTERN, SMALL_DECIMAL_PATTERN } from "./patterns";

/** A 20-byte address, any letter case (checksums are not enforced: signatures bind the address itself). */
export const AddressSchema = Type.String({ pattern: ADDRESS_PATTERN.source });
/**
 * A 65-byte ECDSA signature (r, s, v) as 130 hex digits, any letter case; verifiers accept only the canonical
 * v (27/28) and low s (eip712.ts `signatureProblem`) and key replay guards on the signed digest.
 */
export const SignatureSchema = Type.String({ pattern: SIGNATURE_PATTERN.source });
/** A decimal integer below 10^15 (epochs, sequences, timestamps): fits a double exactly. */
export const SmallDecimalSchema = Type.String({ pattern: SMALL_DECIMAL_PATTERN.source });
/** A decimal integer of up to 78 digits (a uint256; the range is checked where it matters). */
export const Uint256DecimalSchema = Type.String({ pattern: "^\\d{1,78}$" });
/** An http(s) URL of at most 512 characters. */
export const HttpUrlSchema = Type.String({ pattern: "^https?://[^\\s]+$", maxLength: 512 });
/** A service's answer to a refused request (docs/errors.md). */
export const ErrorReplySchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
});

const LEADING_ZEROS = /^0+(?=\d)/;

/** A decimal string without leading zeros ("007" -> "7", "0" stays), the form receivers store and publish. */
export function canonicalDecimal(text: string): string {
  return text.length > 1 ? text.replace(LEADING_ZEROS, "") : text;
}

/** `Date.now()` in whole seconds, as the uint256 timestamps of customer-signed messages count. */
export const unixSeconds = (ms = Date.now()): bigint => BigInt(Math.floor(ms / 1000));
