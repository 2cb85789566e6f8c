/**
 * The checks a job passes first, at the gateway's front door and again at the host; and the gateway's check of
 * a host's result before it is counted, billed or returned (F9).
 */
import { randomInt } from "node:crypto";

import { nodeError } from "../errors";
import { runJobAsync } from "./host/compute";

/** Refuses new work while the node does not serve (not admitted, draining or closing). */
export function assertServing(serving: boolean, role: "gateway" | "host"): void {
  if (!serving) throw nodeError("EDGE_NODE_NOT_SERVING", `this ${role} is not serving (not admitted or draining)`);
}

/** Refuses a job above the node's --max-job-rounds. */
export function assertJobSize(rounds: number, maxRounds: number): void {
  if (rounds > maxRounds) throw nodeError("EDGE_NODE_JOB_TOO_LARGE", `rounds ${rounds} exceeds ${maxRounds}`);
}

/**
 * Results of jobs of at most this many rounds are always recomputed by the gateway: measured at ~3 us a round
 * on the CI machines (test/node/gatewaySecurity.test.ts prints it), 1,000 rounds cost ~3 ms, of the order of
 * the request's own signature check and HTTP work.
 */
export const VERIFY_ALL_ROUNDS = 1_000;
/**
 * Larger jobs: one result in VERIFY_ONE_IN is recomputed, chosen by a CSPRNG after the host has answered (so a
 * host cannot tell which ones). Recomputing every result would double the network's CPU for the compute job
 * (there is no shortcut to iterated SHA-256); one in 8 adds at most 12.5%. A host that fakes k results is
 * caught with probability 1 - (7/8)^k (over 99% by k = 35) and banned at the first; the results it faked before
 * being caught, unsampled, are served and billed.
 */
export const VERIFY_ONE_IN = 8;

const RESULT_PATTERN = /^0x[0-9a-f]{64}$/;

/** Whether the gateway recomputes the result of a job of `rounds` rounds: all small jobs, a sample of larger ones. */
export function shouldVerify(rounds: number, draw: (n: number) => number = randomInt): boolean {
  return rounds <= VERIFY_ALL_ROUNDS || draw(VERIFY_ONE_IN) === 0;
}

/**
 * Checks a host's `result` for the compute job: always that it is a 32-byte digest in lower-case hex (the one
 * form hosts answer), and, when `verify`, that it is the digest {runJobAsync} computes. Returns why it is wrong,
 * or undefined.
 */
export async function wrongResult(
  job: { payload: string; rounds: number },
  result: string,
  verify: boolean,
): Promise<string | undefined> {
  if (!RESULT_PATTERN.test(result)) return "the result is not a 32-byte digest in lower-case hex";
  if (verify && (await runJobAsync(job.payload, job.rounds)) !== result) return "the result is not the job's digest";
  return undefined;
}
