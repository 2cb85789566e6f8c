/**
 * Edge Storage's client error codes and their HTTP status (docs/storage.md "Errors"); raised as EdgeErrors
 * through `storageError`, so a CLI exits 2 on the caller's fault (a 4xx) and a future gateway route answers them.
 */
import { errorFactory } from "../common/errors";

export const STORAGE_ERRORS = {
  /** The object is larger than STORAGE_MAX_OBJECT_BYTES. */
  STORAGE_OBJECT_TOO_LARGE: 413,
  /** k and n outside the codec's limits (1 <= k <= 24, 1 <= n - k <= 6). */
  STORAGE_BAD_PARAMETERS: 400,
  /** Fewer than k fragments passed their hash check: the object cannot be rebuilt. */
  STORAGE_NOT_ENOUGH_FRAGMENTS: 422,
  /** AES-GCM refused the ciphertext: a wrong key, or bytes altered (or an id/owner that is not the object's). */
  STORAGE_DECRYPT_FAILED: 422,
  /** The manifest is malformed, not signed canonically by its owner, or not for the expected owner. */
  STORAGE_MANIFEST_INVALID: 422,
  /** The key file is missing, not 32 bytes, or readable by group or others. */
  STORAGE_KEY_FILE_INVALID: 400,
  /** A wallet signature cannot derive a key: not the wallet's, or the wallet signs non-deterministically. */
  STORAGE_WALLET_KEY_INVALID: 400,
  /** The gateway did not answer: no connection, or no complete answer within the client's timeout. */
  STORAGE_GATEWAY_UNREACHABLE: 503,
  /** The gateway answered outside the API: an unexpected status or shape, a malformed frame, an answer too large. */
  STORAGE_GATEWAY_FAILED: 502,
} as const;

/**
 * A gateway's refusal (4xx/5xx) is raised with the gateway's own status and code (client.ts); this code stands in
 * when its answer names none (no JSON, no well-formed code). Not in the table: its status is the gateway's.
 */
export const STORAGE_GATEWAY_REFUSED = "STORAGE_GATEWAY_REFUSED";

export const storageError = errorFactory(STORAGE_ERRORS);
