/**
 * Billing benchmark:
 *   - ingest.recordsPerSecond: signed usage batches of 1,000 records POSTed concurrently by autocannon to
 *     `npm run billing -- serve` in its own process, each verified (schema, EIP-712 signature over the records'
 *     RFC 8785 hash, gateway admitted in the chain view, prices, periods) and stored in SQLite; every reply must
 *     be 200 with 1,000 accepted;
 *   - bill.records1m.seconds: closing a period of 1,000,000 stored records of 10,000 customers: summing from the
 *     database, pricing, hashing 10,000 bills and saving them (BillingService.closePeriod), median of 3;
 *   - settle.customers1000.seconds / settle.gasPerCustomer: from the close of a period with 1,000 non-zero bills to
 *     all of them settled on-chain (10 transactions of 100), same process, 50 ms polling.
 * The chain is Hardhat's in-process network served over HTTP. Writes bench/billing.json and the table in
 * docs/billing.md.
 *
 *   npm run bench:billing
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre, { ethers } from "hardhat";
import Database from "better-sqlite3";

import { JsonRpcServer } from "hardhat/internal/hardhat-network/jsonrpc/server";
import type { UsageRecord } from "../../offchain/common/protocol";
import { periodIndex } from "../../offchain/common/period";
import { BillingStore } from "../../offchain/billing/store";
import {
  BILLER_KEY,
  type BillingProtocol,
  ONE,
  billingArgs,
  customerAccount,
  deployForBilling,
  gatewayAccount,
  signUsage,
  startBilling,
} from "../lib/billingFixture";
import { writeBenchResults } from "./report";
import { postBodies, spawnService, waitUntil } from "./service";

const ROOT = join(__dirname, "..", "..");
const OUT = join(ROOT, "bench", "billing.json");
const DOC = join(ROOT, "docs", "billing.md");
const RECORDS = 1_000;
const INGEST_BATCHES = 400;
const BILL_RECORDS = 1_000_000;
const BILL_CUSTOMERS = 10_000;
const SETTLE_CUSTOMERS = 1_000;
const PERIOD = 3_600_000; // one-hour fixed periods from START
const START = Date.UTC(2026, 10, 1);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Customer addresses without key derivation (the bill benchmark needs 10,000). */
const customerAddress = (i: number) => `0x${(0xc0000000 + i).toString(16).padStart(40, "0")}`;

type Results = Record<string, number>;

/** What every measure runs against: the in-process chain over HTTP, the deployed protocol and its gateway. */
interface Bench {
  dir: string;
  rpc: string;
  p: BillingProtocol;
  gateway: string;
  children: ChildProcess[];
}

/** Signed usage batches POSTed concurrently to `billing serve` in its own process. */
async function measureIngest({ dir, rpc, p, gateway, children }: Bench, results: Results): Promise<void> {
  const now = Date.now();
  const fixed = ["--period-seconds", String(PERIOD / 1000), "--period-start", String(now - 1_000)];
  console.log(`signing ${INGEST_BATCHES} batches of ${RECORDS} records...`);
  const bodies: string[] = [];
  for (let b = 0; b < INGEST_BATCHES; b++) {
    const records: UsageRecord[] = Array.from({ length: RECORDS }, (_, k) => ({
      id: `${gateway}:${b + 1}:${k}`,
      gateway,
      customer: customerAddress((b * 7919 + k) % BILL_CUSTOMERS),
      service: "compute",
      metric: k % 2 ? "jobs" : "rounds",
      quantity: String(1 + ((b * 31 + k * 17) % 10_000)),
      time: now,
    }));
    bodies.push(JSON.stringify(await signUsage(1, BigInt(b + 1), records)));
  }
  const ingestDb = join(dir, "ingest.db");
  const ingest = spawnService(
    "offchain/billing/cli.ts",
    billingArgs(rpc, p, ingestDb, [...fixed, "--log-level", "info", "--poll-interval-ms", "1000"]),
    { EDGE_BILLING_BILLER_KEY: BILLER_KEY },
    "billing started",
  );
  children.push(ingest.child);
  const ingestUrl = await ingest.url;
  const usageUrl = `${ingestUrl}/usage`;
  await postBodies(usageUrl, bodies, 0, 20, 4, (json) => json.accepted);
  const measured = await postBodies(usageUrl, bodies, 20, INGEST_BATCHES - 20, 8, (json) => json.accepted);
  const { statuses, seconds, result: ingestResult } = measured;
  const accepted = statuses[`200 ${RECORDS}`] ?? 0;
  console.log("measured", statuses, `${seconds.toFixed(2)} s`);
  if (accepted !== INGEST_BATCHES - 20)
    throw new Error(`only ${accepted} batches accepted: ${JSON.stringify(statuses)}`);
  const stored = new Database(ingestDb, { readonly: true });
  const count = (stored.prepare("select count(*) n from records").get() as { n: number }).n;
  stored.close();
  if (count !== INGEST_BATCHES * RECORDS) throw new Error(`${count} records stored`);
  results["ingest.recordsPerSecond"] = Math.round((accepted * RECORDS) / seconds);
  results["ingest.batchesPerSecond"] = round(accepted / seconds, 1);
  results["ingest.latency.p99.ms"] = ingestResult.latency.p99;
  results["ingest.connections"] = 8;
  ingest.child.kill("SIGTERM");
}

/** 1,000,000 records of 10,000 customers stored directly (setup), then closed by the service's own code. */
async function measureBills({ dir, rpc, p, gateway }: Bench, results: Results): Promise<void> {
  console.log(`storing ${BILL_RECORDS} records...`);
  const clock = { t: START + 1_000 };
  const billDb = join(dir, "bills.db");
  const store = new BillingStore(billDb);
  for (let from = 0; from < BILL_RECORDS; from += 20_000) {
    const batch = Array.from({ length: 20_000 }, (_, k) => {
      const i = from + k;
      return {
        id: `r${i}`,
        gateway,
        customer: customerAddress(i % BILL_CUSTOMERS),
        service: "compute",
        metric: i % 3 ? "jobs" : "rounds",
        quantity: BigInt(1 + (i % 5_000)),
        time: START + (i % PERIOD),
        period: 0,
      };
    });
    store.insertRecords(batch, START);
  }
  store.close();
  const times: number[] = [];
  let bills = 0;
  for (let r = 0; r < 3; r++) {
    // A fresh copy each run: closing saves the period.
    const copy = join(dir, `bills-${r}.db`);
    const source = new Database(billDb);
    await source.backup(copy);
    source.close();
    const { service } = await startBilling(
      rpc,
      p,
      copy,
      ["--period-seconds", String(PERIOD / 1000), "--period-start", String(START), "--poll-interval-ms", "600000"],
      { now: () => clock.t },
    );
    const b0 = performance.now();
    bills = service.closePeriod(0).length;
    times.push((performance.now() - b0) / 1000);
    await service.close();
  }
  if (bills !== BILL_CUSTOMERS) throw new Error(`${bills} bills, expected ${BILL_CUSTOMERS}`);
  console.log(`bills: ${bills}, ${times.map((t) => t.toFixed(3)).join(" / ")} s`);
  results["bill.records1m.seconds"] = round(median(times));
  results["bill.records1m.customers"] = bills;
}

/** From the close of a period with 1,000 non-zero bills to all of them settled on-chain. */
async function measureSettlement({ dir, rpc, p, gateway }: Bench, results: Results): Promise<void> {
  const settleClock = { t: START + 1_000 };
  const { service, url } = await startBilling(
    rpc,
    p,
    join(dir, "settle.db"),
    ["--period-seconds", String(PERIOD / 1000), "--period-start", String(START), "--grace-seconds", "0"],
    { now: () => settleClock.t },
  );
  for (let from = 0; from < SETTLE_CUSTOMERS; from += RECORDS) {
    const records = Array.from({ length: Math.min(RECORDS, SETTLE_CUSTOMERS - from) }, (_, k) => ({
      id: `s${from + k}`,
      gateway,
      customer: customerAccount(from + k).address.toLowerCase(),
      service: "compute",
      metric: "jobs",
      quantity: "3",
      time: START + 10,
    }));
    const reply = await fetch(`${url}/usage`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(await signUsage(1, BigInt(from + 1), records)),
    });
    if (!reply.ok) throw new Error(`usage refused: ${await reply.text()}`);
  }
  const s0 = performance.now();
  settleClock.t = START + PERIOD;
  await waitUntil(
    "period 0 settled",
    async () => ((await (await fetch(`${url}/periods/0`)).json()) as { status?: string }).status === "settled",
    300_000,
  );
  const settleSeconds = (performance.now() - s0) / 1000;
  await service.close();
  const events = await p.vault.queryFilter(p.vault.filters.BillSettled(undefined, BigInt(periodIndex("0"))));
  if (events.length !== SETTLE_CUSTOMERS) throw new Error(`${events.length} bills settled on-chain`);
  const hashes = [...new Set(events.map((e) => e.transactionHash))];
  const gas = await Promise.all(hashes.map(async (h) => (await ethers.provider.getTransactionReceipt(h))!.gasUsed));
  results["settle.customers1000.seconds"] = round(settleSeconds);
  results["settle.customers1000.transactions"] = hashes.length;
  results["settle.gasPerCustomer"] = Math.round(gas.reduce((a, b) => a + Number(b), 0) / SETTLE_CUSTOMERS);
}

async function main(): Promise<void> {
  const results: Results = {};
  const dir = mkdtempSync(join(tmpdir(), "edge-bench-billing-"));
  const server = new JsonRpcServer({ hostname: "127.0.0.1", port: 0, provider: hre.network.provider });
  const { port } = await server.listen();
  const rpc = `http://127.0.0.1:${port}`;
  const children: ChildProcess[] = [];
  try {
    const p = await deployForBilling({
      dir,
      gateways: [1],
      deposits: Array.from({ length: SETTLE_CUSTOMERS }, () => 1_000n * ONE),
    });
    const bench: Bench = { dir, rpc, p, gateway: gatewayAccount(1).address.toLowerCase(), children };
    await measureIngest(bench, results);
    await measureBills(bench, results);
    await measureSettlement(bench, results);
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }

  await writeBenchResults(OUT, DOC, "billing-bench", results, TARGETS);
}

const TARGETS: Record<string, string> = {
  "ingest.recordsPerSecond": ">= 100,000",
  "bill.records1m.seconds": "<= 5 s",
  "settle.customers1000.seconds": "<= 10 s",
};

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
