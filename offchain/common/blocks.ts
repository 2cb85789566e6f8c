/** Finding blocks by time. */
import type { PublicClient } from "viem";

/**
 * The number of the last block whose timestamp is before `timestamp` (unix seconds), or -1 if none is: the
 * block at which an epoch ending at `timestamp` closes. Binary search, O(log head) header reads; `low` can
 * start the search higher (the last answer, when times only move forward).
 */
export async function lastBlockBefore(
  client: Pick<PublicClient, "getBlock" | "getBlockNumber">,
  timestamp: bigint,
  low = 0n,
): Promise<bigint> {
  let high = await client.getBlockNumber();
  const time = async (n: bigint) => (await client.getBlock({ blockNumber: n })).timestamp;
  if ((await time(high)) < timestamp) return high;
  if ((await time(low)) >= timestamp) {
    if (low === 0n) return -1n;
    low = 0n;
    if ((await time(0n)) >= timestamp) return -1n;
  }
  // Invariant: time(low) < timestamp <= time(high).
  while (high - low > 1n) {
    const mid = (low + high) / 2n;
    if ((await time(mid)) < timestamp) low = mid;
    else high = mid;
  }
  return low;
}
