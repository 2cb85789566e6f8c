/**
 * Child process of the node benchmark: syncs a chain view from scratch and reports its memory.
 *   node --expose-gc -r ts-node/register/transpile-only scripts/bench/viewMemory.ts <rpc> <stakeManager> <fromBlock>
 */
import { http, createPublicClient, type Address } from "viem";

import { ChainView } from "../../offchain/common/chainView";

async function main(): Promise<void> {
  const [rpc, stakeManager, fromBlock] = process.argv.slice(2);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc");
  const client = createPublicClient({ transport: http(rpc, { retryCount: 0, timeout: 60_000 }) });
  await client.getChainId(); // load and warm up everything but the map itself
  gc();
  const before = process.memoryUsage();
  const view = new ChainView({ client, stakeManager: stakeManager as Address, fromBlock: BigInt(fromBlock) });
  await view.syncOnce();
  gc();
  const after = process.memoryUsage();
  const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
  console.log(
    JSON.stringify({
      stakes: view.map.stakeCount,
      rssMb: mb(after.rss),
      heapUsedMb: mb(after.heapUsed),
      viewHeapMb: mb(after.heapUsed - before.heapUsed),
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
