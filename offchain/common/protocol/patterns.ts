/**
 * The wire formats' patterns as plain regular expressions, for checks outside a schema (address books, consents,
 * price lists, the Console's fields). No dependencies: the Console's browser bundle imports it.
 */
/** A 20-byte address, any letter case. */
export const ADDRESS_PATTERN = /^0x[0-9a-fA-F]{40}$/;
/** A 65-byte ECDSA signature (r, s, v) as 130 hex digits. */
export const SIGNATURE_PATTERN = /^0x[0-9a-fA-F]{130}$/;
/** A decimal integer below 10^15. */
export const SMALL_DECIMAL_PATTERN = /^\d{1,15}$/;
