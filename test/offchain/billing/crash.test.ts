import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ethers, network } from "hardhat";
import fc from "fast-check";

import { type RpcServer, startRpcServer } from "../../shared/rpc";
import { type Child, dropPendingTransactions, spawnServe } from "../../shared/spawn";
import { waitFor } from "../oracle/helpers";
import { BILLER, BILLER_KEY, ONE, billingArgs, customerAccount, deployForBilling, record, signUsage } from "./helpers";

const CUSTOMERS = 30;
const BATCH_SIZE = 3;
const BATCHES = CUSTOMERS / BATCH_SIZE;
// Long enough for the first instance to start (ts-node, on a loaded 2-core machine) inside period 0.
const PERIOD_SECONDS = 8;

/** `npm run billing -- serve` as its own process. */
const spawnBilling = (args: string[]): Child =>
  spawnServe("offchain/billing/cli.ts", args, { EDGE_BILLING_BILLER_KEY: BILLER_KEY }, "billing started");

describe("billing crash safety", function () {
  this.timeout(300_000);
  let rpc: RpcServer;
  let dir: string;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-billing-crash-"));
    rpc = await startRpcServer();
  });

  after(async function () {
    await network.provider.send("evm_setIntervalMining", [0]);
    await network.provider.send("evm_setAutomine", [true]);
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("charges each bill exactly once when killed (SIGKILL) at random points while settling", async function () {
    const p = await deployForBilling({
      dir,
      deposits: Array.from({ length: CUSTOMERS }, () => 1000n * ONE),
    });
    const db = join(dir, "billing.db");
    // Short fixed periods on the wall clock: period 0 is under way when the first instance starts.
    const start = Date.now() - 500;
    const args = billingArgs(rpc.url, p, db, [
      ...["--period-seconds", String(PERIOD_SECONDS), "--period-start", String(start), "--grace-seconds", "0"],
      ...["--batch-size", String(BATCH_SIZE), "--log-level", "info"],
    ]);
    const startNonce = await ethers.provider.getTransactionCount(BILLER);

    const first = spawnBilling(args);
    const url = await first.url;
    const records = Array.from({ length: CUSTOMERS }, (_, i) => record(1, i, `u${i}`, "jobs", 1 + i, Date.now()));
    const reply = await fetch(`${url}/usage`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(await signUsage(1, 1n, records)),
    });
    expect(await reply.json()).to.deep.equal({ accepted: CUSTOMERS, duplicates: 0 });
    // Otherwise the usage fell in period 1 and period 0 has nothing to settle.
    expect(Date.now(), "the first instance started after period 0 ended").to.be.below(start + PERIOD_SECONDS * 1000);
    first.process.kill("SIGKILL");
    await first.exited;
    await new Promise((r) => setTimeout(r, Math.max(0, start + PERIOD_SECONDS * 1000 - Date.now() + 50)));

    // Blocks every 200 ms, so transactions sit in the mempool for a while and kills land between sending,
    // mining and bookkeeping.
    await network.provider.send("evm_setAutomine", [false]);
    await network.provider.send("evm_setIntervalMining", [200]);
    const settledOnChain = async () => {
      let n = 0;
      for (let i = 0; i < CUSTOMERS; i++) if (await p.vault.isSettled(customerAccount(i).address, 0n)) n += 1;
      return n;
    };
    const delays = fc.sample(fc.integer({ min: 0, max: 1200 }), { seed: 16, numRuns: 40 });
    const dropped = fc.sample(fc.boolean(), { seed: 17, numRuns: 40 });
    const progress: number[] = [];
    let droppedTxs = 0;
    let lastOutput = "";
    for (let round = 0; round < delays.length && (await settledOnChain()) < CUSTOMERS; round++) {
      const child = spawnBilling(args);
      await child.url;
      await new Promise((r) => setTimeout(r, delays[round]));
      child.process.kill("SIGKILL");
      await child.exited;
      lastOutput = child.output();
      progress.push(await settledOnChain());
      // As if the node lost the transaction: the next instance must rebroadcast its persisted bytes.
      if (dropped[round]) droppedTxs += await dropPendingTransactions(db);
    }
    expect(
      progress.filter((n) => n > 0 && n < CUSTOMERS).length,
      `bills settled after each kill: ${progress}; the last instance's log:\n${lastOutput}`,
    ).to.be.greaterThan(2);

    // A last, uninterrupted instance finishes whatever is left.
    const last = spawnBilling(args);
    const lastUrl = await last.url;
    await waitFor(
      "period 0 settled",
      async () => ((await (await fetch(`${lastUrl}/periods/0`)).json()) as { status?: string }).status === "settled",
      60_000,
    );
    last.process.kill("SIGTERM");
    expect(await last.exited).to.equal(0);

    // Every customer charged once, for exactly its bill; nothing skipped as already settled; no wasted transaction.
    const events = await p.vault.queryFilter(p.vault.filters.BillSettled(undefined, 0n));
    expect(events.map((e) => e.args.customer.toLowerCase()).sort()).to.deep.equal(
      records.map((r) => r.customer).sort(),
    );
    for (const [i, r] of records.entries()) {
      const event = events.find((e) => e.args.customer.toLowerCase() === r.customer)!;
      const total = BigInt(r.quantity) * 2n * ONE - ONE; // 2 tokens a job, less the 1-token buffer
      expect([event.args.amount, event.args.charged, event.args.shortfall], `customer ${i}`).to.deep.equal([
        total,
        total,
        0n,
      ]);
      expect(await p.vault.balanceOf(customerAccount(i).address)).to.equal(1000n * ONE - total);
    }
    expect(await p.vault.queryFilter(p.vault.filters.BillSkipped())).to.have.length(0);
    expect((await ethers.provider.getTransactionCount(BILLER)) - startNonce).to.equal(BATCHES);
    console.log(
      `      (${progress.length} kills; bills settled after each: ${progress}; ${droppedTxs} txs dropped from the mempool)`,
    );
  });
});
