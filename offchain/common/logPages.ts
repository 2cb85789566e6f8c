/**
 * Paging eth_getLogs the way public providers accept it: pages sized by the density of logs seen so far (about
 * `targetLogsPerPage`, growing at most fourfold per page) and halved when the provider refuses one as too large
 * or too wide. The chain view (chainView.ts) pages this way; so does the Console, which reads through the user's
 * own wallet provider, where one getLogs from the deployment block is refused once history is long.
 * Dependency-free: the Console's bundle takes it.
 */

export interface PagingOptions {
  initialPageSize: number;
  maxPageSize: number;
  targetLogsPerPage: number;
}

export const DEFAULT_PAGING: PagingOptions = { initialPageSize: 10, maxPageSize: 100_000, targetLogsPerPage: 5_000 };

/** A provider refusing a getLogs response as too large or too wide: shrink the page, do not back off. */
export function isTooLargeError(error: unknown): boolean {
  const text = `${(error as Error)?.message ?? ""} ${(error as { details?: string })?.details ?? ""}`.toLowerCase();
  return /size limit|too large|too many|more than \d+|response size|block range|limit exceeded|-32005|query returned/.test(
    text,
  );
}

/** The next page's size after one of `blocks` blocks held `logs` logs, with the current size `pageSize`. */
export function nextPageSize(options: PagingOptions, pageSize: number, blocks: number, logs: number): number {
  const byDensity = logs === 0 ? Infinity : Math.floor((blocks * options.targetLogsPerPage) / logs);
  return Math.max(1, Math.min(options.maxPageSize, pageSize * 4, byDensity));
}

/** The page size after the provider refused the page [start, end] as too large. */
export const shrunkPageSize = (start: bigint, end: bigint): number =>
  Math.max(1, Math.floor(Number(end - start + 1n) / 2));

/**
 * Every log in [fromBlock, toBlock], read in adaptive pages with `fetch(from, to)`, in block order. A page
 * refused as too large is split; one refused at a single block, or any other error, is thrown.
 */
export async function getLogsPaged<T>(
  fetch: (from: bigint, to: bigint) => Promise<T[]>,
  fromBlock: bigint,
  toBlock: bigint,
  options: PagingOptions = DEFAULT_PAGING,
): Promise<T[]> {
  const out: T[] = [];
  let pageSize = options.initialPageSize;
  // A refusal teaches the provider's limit: pages stay under it for the rest of the read instead of growing
  // into it again.
  let limits = options;
  for (let from = fromBlock; from <= toBlock;) {
    const to = from + BigInt(pageSize) - 1n < toBlock ? from + BigInt(pageSize) - 1n : toBlock;
    let logs: T[];
    try {
      logs = await fetch(from, to);
    } catch (error) {
      if (!isTooLargeError(error) || to === from) throw error;
      pageSize = shrunkPageSize(from, to);
      limits = { ...limits, maxPageSize: pageSize };
      continue;
    }
    out.push(...logs);
    pageSize = nextPageSize(limits, pageSize, Number(to - from) + 1, logs.length);
    from = to + 1n;
  }
  return out;
}
