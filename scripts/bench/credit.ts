/**
 * Credit benchmark (decision D43): how far past its credit a customer is served. Two edge-node gateways with
 * the default credit refresh (2 s) and usage flush serve one customer (100 tokens deposited, the 1-token free
 * buffer; jobs of 2.3 tokens), 2 at a time over both gateways, 300 ms apart (~6 jobs a second: the credit lasts
 * about 7 s, several refresh intervals), until both have refused it for 3 s
 * (scripts/lib/creditScenario.ts). Two gateways are the worst case: each sees the other's usage only through
 * billing. Measures, after the served total passed the credit:
 *   - credit.overdraftSeconds: seconds of service (last job served past the credit - last job within it);
 *   - credit.overdraftTokens: the price of that service, in tokens; credit.overdraftJobs: how many jobs.
 * Checks that billing recorded every served job. Merges its keys into bench/billing.json (re-read right before
 * writing: bench:billing owns the other keys).
 *
 *   npm run bench:credit
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre from "hardhat";
import { JsonRpcServer } from "hardhat/internal/hardhat-network/jsonrpc/server";

import { ONE } from "../lib/billingFixture";
import { driveCustomer, measureOverdraft, startCreditNetwork } from "../lib/creditScenario";

const OUT = join(__dirname, "..", "..", "bench", "billing.json");

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "edge-bench-credit-"));
  const server = new JsonRpcServer({ hostname: "127.0.0.1", port: 0, provider: hre.network.provider });
  const { port } = await server.listen();
  const net = await startCreditNetwork({ dir, rpcUrl: `http://127.0.0.1:${port}`, gateways: 2, deposit: 100n * ONE });
  try {
    const outcomes = await driveCustomer(net, { concurrency: 2, pauseMs: 300, tailMs: 3_000, maxMs: 120_000 });
    const o = await measureOverdraft(net, outcomes);
    if (o.billedJobs !== BigInt(o.served))
      throw new Error(`billing recorded ${o.billedJobs} jobs, the gateways served ${o.served}`);
    console.table({
      credit: Number(o.credit) / Number(ONE),
      served: o.served,
      refused: o.refused,
      overdraftJobs: o.overdraftJobs,
      overdraftTokens: o.overdraftTokens,
      overdraftSeconds: o.overdraftSeconds,
    });
    const results = JSON.parse(readFileSync(OUT, "utf8")) as Record<string, number>;
    results["credit.overdraftSeconds"] = Math.round(o.overdraftSeconds * 1000) / 1000;
    results["credit.overdraftTokens"] = Math.round(o.overdraftTokens * 1000) / 1000;
    results["credit.overdraftJobs"] = o.overdraftJobs;
    const sorted = Object.fromEntries(Object.entries(results).sort(([a], [b]) => a.localeCompare(b)));
    writeFileSync(OUT, JSON.stringify(sorted, null, 2) + "\n");
  } finally {
    await net.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    console.error(error.stack ?? error);
    process.exit(1);
  },
);
