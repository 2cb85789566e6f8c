/**
 * Billing's POST /credit (decision D43): each customer's remaining credit (vault balance less what it owes, plus
 * the free buffer, less the open period's usage priced), answered to admitted gateways only, each signed query
 * once, within a per-gateway rate. A real billing service over HTTP on the in-process chain.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadFixture, mine } from "@nomicfoundation/hardhat-network-helpers";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import type { BillingService } from "../../../offchain/billing/service";
import { signCreditQuery } from "../../../offchain/common/protocol/creditQuery";
import { type RpcServer, startRpcServer } from "../../shared/rpc";
import { postJson } from "../oracle/helpers";
import {
  BILLER,
  CHAIN_ID,
  ONE,
  customerAccount,
  deployForBilling,
  gatewayAccount,
  gatewayKey,
  record,
  signUsage,
  startBilling,
} from "./helpers";

const T0 = Date.UTC(2026, 10, 1);
const FIXED = ["--period-seconds", "60", "--period-start", String(T0), "--grace-seconds", "5"];

let rpc: RpcServer;
let dir: string;
let dbCount = 0;
const running: BillingService[] = [];

async function networkFixture() {
  // Customer 0 deposits 100 tokens, customer 1 one token; gateway 1 admitted, gateway 2 unbonding.
  const p = await deployForBilling({ dir, gateways: [1, 2], deposits: [100n * ONE, ONE] });
  await p.staking.requestUnstake(await p.staking.stakeCount());
  await mine(1);
  return p;
}

describe("billing credit (POST /credit)", function () {
  this.timeout(120_000);
  const clock = { t: T0 + 1_000 };

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-credit-"));
    rpc = await startRpcServer();
  });
  after(async function () {
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async function () {
    for (const service of running.splice(0)) await service.close();
  });

  async function billing() {
    clock.t = T0 + 1_000;
    const p = await loadFixture(networkFixture);
    const started = await startBilling(rpc.url, p, join(dir, `credit-${++dbCount}.db`), FIXED, {
      now: () => clock.t,
    });
    running.push(started.service);
    return { ...started, p };
  }

  const query = (gateway: number, customers: string[], timestamp = BigInt(clock.t)) =>
    signCreditQuery(gatewayAccount(gateway), CHAIN_ID, customers, timestamp);

  it("D43: remaining = balance less debts + free buffer - priced usage; any address has the free buffer only", async function () {
    const { url, p } = await billing();
    // Customer 1: one job (2 tokens) and 1,000 rounds (0.3) against 1 token deposited + 1 free: exhausted.
    const records = [record(1, 1, "g1:1:0", "jobs", 1, T0 + 500), record(1, 1, "g1:1:1", "rounds", 1000, T0 + 500)];
    expect((await postJson(`${url}/usage`, await signUsage(1, 1n, records))).status).to.equal(200);
    const [c0, c1, c5] = [0, 1, 5].map((n) => customerAccount(n).address);
    const reply = await postJson(`${url}/credit`, await query(1, [c0, c1, c5]));
    expect(reply.status, JSON.stringify(reply.json)).to.equal(200);
    expect(reply.json.period).to.equal("0");
    expect(reply.json.prices.compute.jobs).to.deep.equal({ unitSize: "1", unitPrice: (2n * ONE).toString() });
    const [a, b, fresh] = reply.json.credits;
    expect(reply.json.freeBuffer).to.equal(ONE.toString());
    expect(a).to.deep.equal({ customer: c0.toLowerCase(), remaining: (101n * ONE).toString(), exhausted: false });
    expect(b).to.deep.include({ remaining: "0", exhausted: true });
    expect(fresh).to.deep.include({ remaining: ONE.toString(), exhausted: false });

    // An announced withdrawal is not collectable (the cap in force for the period bounds it likewise).
    await p.vault.connect(await impersonate(customerAccount(0).address)).requestWithdrawal(40n * ONE);
    clock.t += 5_000; // past the balance cache
    const less = (await postJson(`${url}/credit`, await query(1, [c0]))).json.credits[0];
    expect(less).to.deep.include({ remaining: (61n * ONE).toString() });
  });

  it("L4: a gateway is told each customer's remaining credit and whether it is exhausted, not its usage or balance", async function () {
    const { url } = await billing();
    const records = [record(1, 0, "g1:0:0", "jobs", 1, T0 + 500)];
    expect((await postJson(`${url}/usage`, await signUsage(1, 1n, records))).status).to.equal(200);
    const reply = await postJson(`${url}/credit`, await query(1, [customerAccount(0).address]));
    expect(reply.status, JSON.stringify(reply.json)).to.equal(200);
    expect(reply.json.credits).to.deep.equal([
      { customer: customerAccount(0).address.toLowerCase(), remaining: (99n * ONE).toString(), exhausted: false },
    ]);
  });

  it("L1: with a spending cap, what is collectable is the cap less the outstanding debt (settlement pays the debt first)", async function () {
    const { url, p } = await billing();
    const c0 = customerAccount(0).address;
    // A cap of 10 from period 1; period 1's bill of 30 takes 10 and leaves 20 owed (balance 90).
    await p.vault.connect(await impersonate(c0)).setSpendingCap(10n * ONE);
    const bill = { customer: c0, amount: 30n * ONE, billHash: `0x${"ab".repeat(32)}` };
    await p.vault.connect(await impersonate(BILLER)).settle(1, [bill]);
    expect(await p.vault.outstanding(c0)).to.equal(20n * ONE);
    clock.t = T0 + 61_000; // period 1 in billing's clock, where the cap applies
    const reply = await postJson(`${url}/credit`, await query(1, [c0]));
    expect(reply.status, JSON.stringify(reply.json)).to.equal(200);
    // Old: min(90 - 20, cap 10) + 1 free = 11 tokens; settlement of period 1 would collect nothing: the free buffer only.
    expect(reply.json.credits[0]).to.deep.include({ remaining: ONE.toString(), exhausted: false });
  });

  it("L3: a gateway address with a bad EIP-55 checksum is answered (200 for the admitted gateway, 4xx for a stranger), not 500", async function () {
    const { url } = await billing();
    const signed = await query(1, [customerAccount(0).address]);
    const at = signed.gateway.search(/[a-fA-F]/);
    const c = signed.gateway[at];
    const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
    const gateway = signed.gateway.slice(0, at) + flipped + signed.gateway.slice(at + 1);
    // The same bytes: the signature still matches, so it is answered; a stranger's would be 401/403, never 500.
    const reply = await postJson(`${url}/credit`, { ...signed, gateway });
    expect(reply.status, JSON.stringify(reply.json)).to.equal(200);
    const other = await signCreditQuery(privateKeyToAccount(`0x${"77".repeat(32)}` as Hex), CHAIN_ID, [gateway]);
    const strangerGateway = other.gateway.slice(0, 2) + other.gateway.slice(2).replace(/[a-f]/, (x) => x.toUpperCase());
    const refused = await postJson(`${url}/credit`, { ...other, gateway: strangerGateway, timestamp: String(clock.t) });
    expect(refused.status).to.be.within(400, 499);
  });

  it("D43: refuses strangers, replays (also re-encoded), stale timestamps, oversized queries and floods", async function () {
    const { url } = await billing();
    const c0 = customerAccount(0).address;
    const expectRefused = async (body: unknown, status: number, code: string) => {
      const reply = await postJson(`${url}/credit`, body);
      expect(reply.status, JSON.stringify(reply.json)).to.equal(status);
      expect(reply.json.code).to.equal(code);
      expect(reply.json).to.not.have.property("credits");
    };
    // Unauthenticated: no stake, a stake not admitted, a signature by someone else, or tampered customers.
    const stranger = privateKeyToAccount(`0x${"77".repeat(32)}` as Hex);
    await expectRefused(
      await signCreditQuery(stranger, CHAIN_ID, [c0], BigInt(clock.t)),
      403,
      "BILLING_SENDER_NOT_STAKED",
    );
    await expectRefused(await query(2, [c0]), 403, "BILLING_SENDER_NOT_ADMITTED");
    const forged = await signCreditQuery(privateKeyToAccount(gatewayKey(2)), CHAIN_ID, [c0], BigInt(clock.t));
    await expectRefused({ ...forged, gateway: gatewayAccount(1).address }, 401, "BILLING_BAD_SIGNATURE");
    const signed = await query(1, [c0]);
    await expectRefused({ ...signed, customers: [customerAccount(1).address] }, 401, "BILLING_BAD_SIGNATURE");
    // Replays: the same body, and the same signature re-encoded (v 0/1): the digest is the key.
    expect((await postJson(`${url}/credit`, signed)).status).to.equal(200);
    await expectRefused(signed, 409, "BILLING_REPLAYED");
    const v = Number.parseInt(signed.signature.slice(130), 16) - 27;
    await expectRefused({ ...signed, signature: signed.signature.slice(0, 130) + `0${v}` }, 409, "BILLING_REPLAYED");
    // A query signed more than 30 s ago (or ahead) is refused before any other work.
    await expectRefused(await query(1, [c0], BigInt(clock.t - 31_000)), 401, "BILLING_QUERY_EXPIRED");
    // Oversized: more than 1,000 customers (schema), and a body over 64 KiB (unread).
    const many = Array.from({ length: 1001 }, (_, i) => `0x${(i + 1).toString(16).padStart(40, "0")}`);
    await expectRefused(await query(1, many), 400, "FST_ERR_VALIDATION");
    const huge = await postJson(`${url}/credit`, { ...signed, pad: "x".repeat(70_000) });
    expect(huge.status).to.equal(413);
    // Flood: 40 queries in a burst pass, then 429 until the bucket refills (20 a second).
    const statuses: number[] = [];
    for (let i = 0; i < 45; i++)
      statuses.push((await postJson(`${url}/credit`, await query(1, [c0], BigInt(clock.t + i)))).status);
    expect(statuses.filter((s) => s === 429).length).to.be.greaterThan(0);
    expect(statuses.filter((s) => s === 200).length).to.be.at.most(40);
    clock.t += 2_000;
    expect((await postJson(`${url}/credit`, await query(1, [c0]))).status).to.equal(200);
  });
});

async function impersonate(address: string) {
  const { ethers, network } = await import("hardhat");
  await network.provider.send("hardhat_impersonateAccount", [address]);
  await network.provider.send("hardhat_setBalance", [address, "0x56BC75E2D63100000"]);
  return ethers.getSigner(address);
}
