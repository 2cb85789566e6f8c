import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";

import type { BillingService } from "../../../offchain/billing/service";
import { type RpcServer, startRpcServer } from "../../shared/rpc";
import { postJson, waitFor } from "../oracle/helpers";
import { ONE, customerAccount, deployForBilling, record, signUsage, startBilling } from "./helpers";

const PERIOD_MS = 60_000;
const T0 = Date.UTC(2026, 10, 1); // start of fixed period 0
const FIXED = ["--period-seconds", "60", "--period-start", String(T0), "--grace-seconds", "5"];

let rpc: RpcServer;
let dir: string;
const running: BillingService[] = [];

async function networkFixture() {
  return deployForBilling({ dir, gateways: [1], deposits: [ONE, ONE, ONE] });
}

/** Jobs cost 2 tokens each, less the 1-token free buffer (PRICES). */
const jobsFor = (tokens: bigint) => (tokens + ONE) / (2n * ONE);

describe("billing settlement within the biller's rate limit (H1)", function () {
  this.timeout(120_000);

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-billing-settle-"));
    rpc = await startRpcServer();
  });

  after(async function () {
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async function () {
    for (const service of running.splice(0)) await service.close();
  });

  async function start(name: string) {
    const p = await loadFixture(networkFixture);
    const [window, capacity] = await p.vault.billingLimit();
    const c = { t: T0 + 1_000, now: () => c.t };
    const started = await startBilling(rpc.url, p, join(dir, name), FIXED, { now: c.now });
    running.push(started.service);
    const status = (period: string, n: number) =>
      started.service.store.bills(period).find((b) => b.customer === customerAccount(n).address.toLowerCase())?.status;
    return { p, c, window, capacity, ...started, status };
  }

  it("H1: a bill above the biller's capacity is marked unsettleable and does not stop settlement of the others", async function () {
    const { p, c, capacity, url, service, status } = await start("h1.db");
    // Customer 0's bill is one token above the capacity; customer 1's, in the same batch, is 19 tokens.
    const huge = jobsFor(capacity + ONE);
    const period0 = [record(1, 0, "a", "jobs", huge, T0 + 100), record(1, 1, "b", "jobs", 10, T0 + 200)];
    expect((await postJson(`${url}/usage`, await signUsage(1, 1n, period0))).status).to.equal(200);
    c.t = T0 + PERIOD_MS + 1;
    const period1 = [record(1, 1, "c", "jobs", 3, T0 + PERIOD_MS + 1)];
    expect((await postJson(`${url}/usage`, await signUsage(1, 2n, period1))).status).to.equal(200);

    c.t = T0 + 2 * PERIOD_MS + 5_000;
    const settled = () => service.store.periods().filter((u) => u.status === "settled").length === 2;
    await waitFor("periods 0 and 1 settled", settled);
    expect(service.store.bills("0").find((b) => b.status === "unsettleable")?.total).to.equal(capacity + ONE);
    expect([status("0", 0), status("0", 1), status("1", 1)]).to.deep.equal(["unsettleable", "settled", "settled"]);
    // Left out of the credit's due deductions, which count only `due` bills.
    expect(service.store.bills("0", "due")).to.deep.equal([]);
    const events = await p.vault.queryFilter(p.vault.filters.BillSettled());
    expect(events.map((e) => [e.args.customer, e.args.period, e.args.amount])).to.deep.equal([
      [customerAccount(1).address, 0n, 19n * ONE],
      [customerAccount(1).address, 1n, 5n * ONE],
    ]);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).to.include("edge_billing_bills_over_capacity_total 1");
  });

  it("H1: a batch above the capacity is cut into transactions within it, and one waits for the bucket to refill", async function () {
    const { p, c, window, capacity, url, service, status } = await start("cut.db");
    // Two bills of 60% of the capacity each, in one stored batch: the second waits for the bucket to refill.
    const big = jobsFor((capacity * 6n) / 10n);
    const period0 = [record(1, 0, "a", "jobs", big, T0 + 100), record(1, 1, "b", "jobs", big, T0 + 200)];
    expect((await postJson(`${url}/usage`, await signUsage(1, 1n, period0))).status).to.equal(200);
    c.t = T0 + PERIOD_MS + 1;
    const period1 = [record(1, 2, "c", "jobs", 3, T0 + PERIOD_MS + 1)];
    expect((await postJson(`${url}/usage`, await signUsage(1, 2n, period1))).status).to.equal(200);
    c.t = T0 + PERIOD_MS + 5_000;
    await waitFor("customer 0 settled", () => status("0", 0) === "settled");
    expect(service.store.bills("0").map((b) => b.batch)).to.deep.equal([0, 0]);

    // Waiting: closing goes on, the later period waits behind the older one, nothing reverts.
    c.t = T0 + 2 * PERIOD_MS + 5_000;
    await waitFor("period 1 closed", () => service.store.lastClosedIndex() === 1);
    await new Promise((r) => setTimeout(r, 500));
    expect([status("0", 1), status("1", 2)]).to.deep.equal(["due", "due"]);
    expect(service.store.unsettledPeriods().map((u) => u.period)).to.deep.equal(["0", "1"]);

    await time.increase(window); // the bucket refills to the capacity
    await waitFor("periods 0 and 1 settled", () => service.store.unsettledPeriods().length === 0);
    const events = await p.vault.queryFilter(p.vault.filters.BillSettled());
    expect(events.map((e) => [e.args.customer, e.args.period])).to.deep.equal([
      [customerAccount(0).address, 0n],
      [customerAccount(1).address, 0n],
      [customerAccount(2).address, 1n],
    ]);
    // One transaction each: the stored batch was cut in two.
    expect(new Set(events.map((e) => e.transactionHash)).size).to.equal(3);
    for (const event of events) expect(event.args.amount).to.be.at.most(capacity);
  });
});
