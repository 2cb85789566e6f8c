/**
 * Reed-Solomon erasure coding of an object's ciphertext (docs/storage.md "Erasure coding") with
 * @ronomon/reed-solomon, a native Cauchy Reed-Solomon codec that runs in libuv's thread pool: the payload is
 * zero-padded to k fragments of `fragmentSize` bytes (storageFragmentSize: a multiple of 8, the codec's unit), and
 * n - k parity fragments are computed from them; any k of the n rebuild the payload, whose length the manifest
 * records. This module knows nothing of hashes: the caller drops a fragment that fails its sha256 before it gets
 * here, so every fragment handed in is trusted to be the one encoded. In common/: clients seal and open objects with
 * it, gateways rebuild lost fragments (repair) with it.
 */
import * as ReedSolomon from "@ronomon/reed-solomon";

import {
  STORAGE_MAX_DATA_FRAGMENTS,
  STORAGE_MAX_PARITY_FRAGMENTS,
  storageFragmentSize,
} from "./protocol/storageManifest";
import { errorFactory } from "./errors";

/** The codec's error codes: part of Edge Storage's table (offchain/storage/errors.ts), thrown by the gateway too. */
export const ERASURE_ERRORS = {
  /** k and n outside the codec's limits (1 <= k <= 24, 1 <= n - k <= 6). */
  STORAGE_BAD_PARAMETERS: 400,
  /** Fewer than k fragments passed their hash check: the object cannot be rebuilt. */
  STORAGE_NOT_ENOUGH_FRAGMENTS: 422,
} as const;
const storageError = errorFactory(ERASURE_ERRORS);

const contexts = new Map<string, ReedSolomon.Context>();

/** Throws STORAGE_BAD_PARAMETERS unless 1 <= k <= 24 and 1 <= n - k <= 6 (integers). */
export function checkCodingParameters(k: number, n: number): void {
  if (
    !Number.isInteger(k) ||
    !Number.isInteger(n) ||
    k < 1 ||
    k > STORAGE_MAX_DATA_FRAGMENTS ||
    n - k < 1 ||
    n - k > STORAGE_MAX_PARITY_FRAGMENTS
  )
    throw storageError(
      "STORAGE_BAD_PARAMETERS",
      `k = ${k} of n = ${n} is outside the codec's limits: 1 <= k <= ${STORAGE_MAX_DATA_FRAGMENTS} data fragments ` +
        `and 1 <= n - k <= ${STORAGE_MAX_PARITY_FRAGMENTS} parity fragments`,
    );
}

function context(k: number, n: number): ReedSolomon.Context {
  const key = `${k}/${n}`;
  let found = contexts.get(key);
  if (found === undefined) {
    found = ReedSolomon.create(k, n - k);
    contexts.set(key, found);
  }
  return found;
}

/**
 * Runs the codec over `shards`: n fragments of `fragmentSize` bytes back to back, data then parity (one buffer for
 * both halves: one allocation per object, and no zeroing of what is about to be written).
 */
function run(k: number, n: number, sources: number, targets: number, shards: Buffer, fragmentSize: number) {
  const dataSize = fragmentSize * k;
  return new Promise<void>((resolve, reject) => {
    ReedSolomon.encode(
      context(k, n),
      sources,
      targets,
      shards,
      0,
      dataSize,
      shards,
      dataSize,
      fragmentSize * (n - k),
      (error) => (error ? reject(error) : resolve()),
    );
  });
}

/** Bits 0..count-1 of the shard indexes in `indexes`. */
const bits = (indexes: Iterable<number>): number => {
  let mask = 0;
  for (const i of indexes) mask |= 1 << i;
  return mask;
};
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * Splits `payload` into k data fragments (the last zero-padded) and n - k parity fragments, all `fragmentSize`
 * bytes; fragment i is data for i < k, parity after. The fragments are views of one fresh buffer.
 */
export async function encodeFragments(
  payload: Uint8Array,
  k: number,
  n: number,
): Promise<{ fragmentSize: number; fragments: Buffer[] }> {
  checkCodingParameters(k, n);
  const fragmentSize = storageFragmentSize(payload.length, k);
  // Not zeroed: the payload and its zero padding fill the data half, and the codec writes all of the parity half.
  const shards = Buffer.allocUnsafeSlow(fragmentSize * n);
  shards.set(payload);
  shards.fill(0, payload.length, fragmentSize * k);
  await run(k, n, bits(range(0, k)), bits(range(k, n)), shards, fragmentSize);
  const fragments = range(0, n).map((i) => shards.subarray(i * fragmentSize, (i + 1) * fragmentSize));
  return { fragmentSize, fragments };
}

/**
 * Rebuilds the first `payloadLength` bytes from the fragments present (`fragments[i]` is fragment i, or undefined
 * when missing; a fragment of the wrong length counts as missing). Fewer than k present:
 * STORAGE_NOT_ENOUGH_FRAGMENTS. Only missing data fragments are computed; parity is read, never rebuilt.
 */
export async function decodeFragments(
  fragments: ReadonlyArray<Uint8Array | undefined>,
  k: number,
  n: number,
  fragmentSize: number,
  payloadLength: number,
): Promise<Buffer> {
  checkCodingParameters(k, n);
  if (fragments.length !== n) throw new TypeError(`${fragments.length} fragment slots for n = ${n}`);
  if (payloadLength > fragmentSize * k) throw new RangeError(`${payloadLength} bytes do not fit k = ${k} fragments`);
  const present = range(0, n).filter((i) => fragments[i]?.length === fragmentSize);
  if (present.length < k)
    throw storageError(
      "STORAGE_NOT_ENOUGH_FRAGMENTS",
      `${present.length} of ${n} fragments are usable and ${k} are needed to rebuild the object`,
      { details: { usable: present.length, needed: k, total: n } },
    );
  // Not zeroed: every slot is a fragment copied in, a data fragment the codec rebuilds, or a missing parity
  // fragment zeroed here (the codec neither reads nor returns it).
  const shards = Buffer.allocUnsafeSlow(fragmentSize * n);
  for (let i = 0; i < n; i++) {
    if (present.includes(i)) shards.set(fragments[i]!, i * fragmentSize);
    else if (i >= k) shards.fill(0, i * fragmentSize, (i + 1) * fragmentSize);
  }
  const missingData = range(0, k).filter((i) => !present.includes(i));
  if (missingData.length > 0) await run(k, n, bits(present), bits(missingData), shards, fragmentSize);
  return shards.subarray(0, payloadLength);
}
