/**
 * Payments bound service at the gateway (decision D43), end to end: a real billing service, edge-node gateways
 * and hosts on the in-process chain (scripts/lib/creditScenario.ts, shared with `npm run bench:credit`). The
 * gateway serves a customer while its credit lasts, answers 402 before the work once it is used up, records no
 * usage for a refusal and bills every job it served; with billing unreachable it keeps the last known credit for
 * a bounded time, then refuses (402, never a 5xx).
 */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { submitJob } from "../../offchain/common/jobClient";
import { CHAIN_ID, ONE, customerAccount } from "../../scripts/lib/billingFixture";
import {
  type CreditNetwork,
  JOB_COST,
  JOB_ROUNDS,
  driveCustomer,
  measureOverdraft,
  startCreditNetwork,
} from "../../scripts/lib/creditScenario";
import { type RpcServer, startRpcServer } from "../shared/rpc";

describe("gateway credit (D43, end to end)", function () {
  this.timeout(300_000);
  let rpc: RpcServer;
  let dir: string;
  let net: CreditNetwork | undefined;

  before(async function () {
    rpc = await startRpcServer();
  });
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), "edge-credit-"));
  });
  afterEach(async function () {
    await net?.close();
    net = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  after(async function () {
    await rpc.close();
  });

  it("D43: serves while credit lasts, then 402 before the work; a refusal records no usage; every served job is billed", async function () {
    // 10 tokens + the 1-token free buffer cover 4 jobs of 2.3 tokens (9.2), not a fifth (11.5).
    net = await startCreditNetwork({ dir, rpcUrl: rpc.url, gateways: 1, deposit: 10n * ONE });
    const outcomes = await driveCustomer(net, { concurrency: 3, pauseMs: 10, tailMs: 500, maxMs: 30_000 });
    const refused = outcomes.filter((o) => o.status === 402);
    expect(outcomes.filter((o) => o.status !== 200 && o.status !== 402)).to.deep.equal([]);
    expect(refused[0].code).to.equal("EDGE_NODE_CREDIT_EXHAUSTED");
    expect(refused[0].error).to.match(/has used its credit for period 0: .* deposit to PaymentVault to continue/);
    const o = await measureOverdraft(net, outcomes);
    // One gateway: jobs in flight are reserved, what billing has not seen yet is counted: no overdraft at all.
    expect(o.served).to.equal(4);
    expect(o.overdraftJobs).to.equal(0);
    expect(o.billedJobs).to.equal(4n);
    expect(o.billedRounds).to.equal(4n * BigInt(JOB_ROUNDS));
    const status0 = (await (await fetch(`${net.gateways[0].url}/status`)).json()) as {
      gateway: { creditRefused: number };
    };
    expect(status0.gateway.creditRefused).to.equal(refused.length);

    // A deposit restores the service within the refresh interval and the balance cache.
    await net.p.vault.depositFor(customerAccount(1).address, 5n * ONE);
    const gateway = net.gateways[0];
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      status = (
        await submitJob(gateway.url, customerAccount(1), CHAIN_ID, gateway.device, { payload: `again ${i}`, rounds: 1 })
      ).status;
    }
    expect(status).to.equal(200);
  });

  it("D43: two gateways serving one customer overdraw by at most one refresh interval, and all of it is billed", async function () {
    net = await startCreditNetwork({
      dir,
      rpcUrl: rpc.url,
      gateways: 2,
      deposit: 60n * ONE,
      gatewayFlags: ["--credit-refresh-ms", "1000"],
    });
    const outcomes = await driveCustomer(net, { concurrency: 4, pauseMs: 20, tailMs: 1_500, maxMs: 60_000 });
    const o = await measureOverdraft(net, outcomes);
    expect(o.overdraftSeconds).to.be.at.most(5);
    expect(BigInt(o.served) * JOB_COST).to.be.greaterThan(o.credit - JOB_COST * 2n); // the credit was used
    expect(o.billedJobs).to.equal(BigInt(o.served));
  });

  it("D43: billing unreachable: the last credit serves for --credit-max-stale-ms, then 402; a new customer 402 at once; never 5xx", async function () {
    net = await startCreditNetwork({
      dir,
      rpcUrl: rpc.url,
      gateways: 1,
      deposit: 100n * ONE,
      gatewayFlags: ["--credit-refresh-ms", "200", "--credit-max-stale-ms", "2000"],
    });
    const gateway = net.gateways[0];
    let sent = 0; // distinct payloads: the same signed request twice in a second would be a replay
    const job = (n: number) =>
      submitJob(gateway.url, customerAccount(n), CHAIN_ID, gateway.device, { payload: `job ${sent++}`, rounds: 1 });
    expect((await job(1)).status).to.equal(200);
    await net.billing.service.close();
    const stoppedAt = Date.now();
    // Within the bound: still served from the last answer (less what was served since).
    expect((await job(1)).status).to.equal(200);
    // Customer 2 was never answered: refused at once.
    const stranger = await job(2);
    expect(stranger.status).to.equal(402);
    expect(stranger.body.code).to.equal("EDGE_NODE_CREDIT_UNKNOWN");
    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + 2_500 - Date.now())));
    const late = await job(1);
    expect(late.status).to.equal(402);
    expect(late.body.code).to.equal("EDGE_NODE_CREDIT_UNKNOWN");
    expect(late.body.error).to.match(/billing unreachable for \d+ s; retry later/);
  });

  it("H3: a flood of fresh customer keys does not stop known customers' credit refresh", async function () {
    net = await startCreditNetwork({
      dir,
      rpcUrl: rpc.url,
      gateways: 1,
      deposit: 500n * ONE,
      gatewayFlags: ["--credit-refresh-ms", "500", "--credit-max-stale-ms", "3000"],
    });
    const gateway = net.gateways[0];
    let sent = 0;
    const job = (account: ReturnType<typeof customerAccount>) =>
      submitJob(gateway.url, account, CHAIN_ID, gateway.device, { payload: `job ${sent++}`, rounds: 1 });
    expect((await job(customerAccount(1))).status).to.equal(200);
    // 1,500 keys never seen before, 40 requests at a time: each has only the free buffer (1 token < a job's 2).
    const FRESH = 1_500;
    const keys = Array.from({ length: FRESH }, (_, i) =>
      privateKeyToAccount(`0x${(0x5eed0000 + i).toString(16).padStart(64, "0")}` as Hex),
    );
    const started = Date.now();
    const flood: number[] = [];
    let next = 0;
    const flooder = async () => {
      while (next < FRESH) flood.push((await job(keys[next++])).status);
    };
    // The known customer meanwhile, and past --credit-max-stale-ms after the flood: served throughout.
    const known: { status: number; code?: string }[] = [];
    const honest = async () => {
      while (next < FRESH || Date.now() - started < 4_500) {
        const reply = await job(customerAccount(1));
        known.push({ status: reply.status, code: reply.body.code as string | undefined });
        await new Promise((r) => setTimeout(r, 400));
      }
    };
    await Promise.all([honest(), ...Array.from({ length: 40 }, flooder)]);
    const seconds = (Date.now() - started) / 1000;
    expect(flood.length).to.equal(FRESH);
    expect(flood.filter((s) => s !== 402)).to.deep.equal([]);
    // Never refused for credit (the flood loads this one process, so the one host may be missed briefly: 503).
    expect(known.filter((k) => k.status === 402)).to.deep.equal([]);
    expect(known.filter((k) => k.status === 200).length).to.be.at.least(known.length - 2);
    // Billing was asked about a bounded number of new addresses (a burst of 200, then 100 a second).
    const status = (await (await fetch(`${gateway.url}/status`)).json()) as { gateway: { creditCustomers: number } };
    expect(status.gateway.creditCustomers).to.be.at.most(Math.ceil(200 + 100 * seconds) + 1);
  });
});
