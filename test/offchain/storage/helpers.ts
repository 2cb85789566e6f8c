/** Shared by Edge Storage's client tests: deterministic object bytes and an error-code matcher. */
import { expect } from "chai";
import { createCipheriv, createHash } from "node:crypto";

import { isEdgeError } from "../../../offchain/common/errors";

export const CHAIN_ID = 31337;

/** `size` pseudo-random bytes from `seed` (AES-128-CTR of zeros): large objects without a large generator. */
export function objectBytes(size: number, seed: number): Buffer {
  const key = createHash("sha256").update(`object ${seed}`).digest().subarray(0, 16);
  return createCipheriv("aes-128-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/** Runs `run` and checks it throws an EdgeError with `code` whose message matches `message` (when given). */
export async function expectEdgeError(run: () => unknown, code: string, message?: RegExp): Promise<Error> {
  let thrown: unknown;
  try {
    await run();
  } catch (error) {
    thrown = error;
  }
  expect(isEdgeError(thrown), `expected an EdgeError ${code}, got ${String(thrown)}`).to.equal(true);
  const error = thrown as Error & { code: string };
  expect(error.code).to.equal(code);
  if (message) expect(error.message).to.match(message);
  return error;
}
