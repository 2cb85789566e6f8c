import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ethers } from "hardhat";
import { loadFixture, mine } from "@nomicfoundation/hardhat-network-helpers";
import type { Hex } from "viem";

import { billRecords, parsePriceList } from "../../../offchain/billing/bills";
import { ConfigError } from "../../../offchain/common/config";
import { loadBillingConfig } from "../../../offchain/billing/config";
import type { BillingService } from "../../../offchain/billing/service";
import { type RpcServer, startRpcServer } from "../../shared/rpc";
import { getJson, postJson, waitFor } from "../oracle/helpers";
import {
  BILLER,
  CHAIN_ID,
  ONE,
  PRICES,
  customerAccount,
  deployForBilling,
  gatewayAccount,
  record,
  signUsage,
  startBilling,
} from "./helpers";
import { promtoolProblems } from "../../shared/promtool";

const PERIOD_MS = 60_000;
const T0 = Date.UTC(2026, 10, 1); // start of fixed period 0
const FIXED = ["--period-seconds", "60", "--period-start", String(T0), "--grace-seconds", "5"];

let rpc: RpcServer;
let dir: string;
let dbCount = 0;
const running: BillingService[] = [];

/** A controllable clock: the service's "now". */
function clock(start: number) {
  const c = { t: start, now: () => c.t };
  return c;
}

async function networkFixture() {
  // Customer 0 can pay everything, customer 1 only 1 token; gateways 1 (admitted) and 2 (then unbonding).
  const p = await deployForBilling({ dir, gateways: [1, 2], deposits: [100n * ONE, ONE] });
  await p.staking.requestUnstake(await p.staking.stakeCount());
  await mine(1);
  return p;
}

async function billing(
  p: Awaited<ReturnType<typeof networkFixture>>,
  c: { now: () => number },
  extra: string[] = [],
  db = join(dir, `billing-${++dbCount}.db`),
) {
  const started = await startBilling(rpc.url, p, db, [...FIXED, ...extra], { now: c.now });
  running.push(started.service);
  return { ...started, db };
}

async function get(url: string, token?: string): Promise<{ status: number; json: any }> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: response.status, json: await response.json() };
}

/** Signs in as customer `n` through the EIP-4361 flow; returns the token. */
async function signIn(url: string, n: number): Promise<string> {
  const account = customerAccount(n);
  const { json } = await postJson(`${url}/auth/nonce`, { address: account.address });
  const signature = await account.signMessage({ message: json.message });
  const login = await postJson(`${url}/auth/login`, { message: json.message, signature });
  expect(login.status, JSON.stringify(login.json)).to.equal(200);
  expect(login.json.customer).to.equal(account.address.toLowerCase());
  return login.json.token;
}

describe("billing service", function () {
  this.timeout(120_000);

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-billing-"));
    rpc = await startRpcServer();
  });

  after(async function () {
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async function () {
    for (const service of running.splice(0)) await service.close();
  });

  describe("ingestion", function () {
    it("stores a signed batch once and answers bad ones with a 4xx that changes nothing", async function () {
      const p = await loadFixture(networkFixture);
      const c = clock(T0 + 1_000);
      const { url, service } = await billing(p, c);
      const records = [record(1, 0, "g1:1:0", "jobs", 3, T0 + 500), record(1, 0, "g1:1:1", "rounds", 4000, T0 + 500)];
      const batch = await signUsage(1, 1n, records);
      expect(await postJson(`${url}/usage`, batch)).to.deep.equal({
        status: 200,
        json: { accepted: 2, duplicates: 0 },
      });
      expect(await postJson(`${url}/usage`, batch)).to.deep.equal({
        status: 200,
        json: { accepted: 0, duplicates: 2 },
      });
      const usage = () => service.store.usageTotals(0);

      const reject = async (body: unknown, status: number, code: string, message: RegExp) => {
        const before = JSON.stringify(usage(), (_k, v) => (typeof v === "bigint" ? v.toString() : v));
        const reply = await postJson(`${url}/usage`, body);
        expect(reply.status, JSON.stringify(reply.json)).to.equal(status);
        expect(reply.json.code).to.equal(code);
        expect(reply.json.error).to.match(message);
        expect(JSON.stringify(usage(), (_k, v) => (typeof v === "bigint" ? v.toString() : v))).to.equal(before);
      };
      // A new record with a conflicting one: the whole batch is refused, the new record is not stored either.
      await reject(
        await signUsage(1, 2n, [record(1, 0, "g1:2:0", "jobs", 7, T0 + 600), { ...records[0], quantity: "4" }]),
        409,
        "BILLING_RECORD_CONFLICT",
        /record id "g1:1:0" of this gateway was accepted before with other content/,
      );
      await reject(
        { ...batch, records: [{ ...records[0], quantity: "300" }, records[1]] },
        401,
        "BILLING_BAD_SIGNATURE",
        /not signed by its gateway/,
      );
      await reject(
        await signUsage(2, 1n, [record(2, 0, "g2:1:0", "jobs", 1, T0 + 500)]),
        403,
        "BILLING_SENDER_NOT_ADMITTED",
        /gateway stake is not admitted/,
      );
      await reject(
        await signUsage(3, 1n, [record(3, 0, "g3:1:0", "jobs", 1, T0 + 500)]),
        403,
        "BILLING_SENDER_NOT_STAKED",
        /holds no gateway stake/,
      );
      await reject(
        await signUsage(1, 3n, [{ ...record(1, 0, "g1:3:0", "jobs", 1, T0 + 500), metric: "gpu" }]),
        400,
        "BILLING_UNKNOWN_PRICE",
        /records\[0\]: no price for service "compute", metric "gpu"/,
      );
      await reject(
        await signUsage(1, 3n, [record(1, 0, "g1:3:0", "jobs", 1, c.t + 10 * 60_000)]),
        400,
        "BILLING_TIME_IN_FUTURE",
        /in the future/,
      );
      await reject(
        await signUsage(1, 3n, [record(2, 0, "g1:3:0", "jobs", 1, T0 + 500)]),
        400,
        "BILLING_RECORD_GATEWAY_MISMATCH",
        /is not the sender/,
      );
      await reject(
        await signUsage(1, 3n, [record(1, 0, "g1:3:0", "jobs", 18446744073709551616n, T0 + 500)]),
        400,
        "BILLING_QUANTITY_TOO_LARGE",
        /exceeds 2\^63 - 1/,
      );
      await reject(
        await signUsage(1, 3n, [record(1, 0, "g1:3:0", "jobs", 1, T0 - 1)]),
        409,
        "BILLING_PERIOD_CLOSED",
        /before the first period/,
      );
      // Malformed bodies: the schema names the field.
      const { signature: _omit, ...unsigned } = batch;
      await reject(unsigned, 400, "FST_ERR_VALIDATION", /signature/);
      await reject({ ...batch, extra: 1 }, 400, "FST_ERR_VALIDATION", /additional properties/);
      await reject({ ...batch, records: [] }, 400, "FST_ERR_VALIDATION", /records/);
      await reject({ ...batch, records: [{ ...records[0], quantity: -1 }] }, 400, "FST_ERR_VALIDATION", /quantity/);
      await reject("not json", 400, "FST_ERR_CTP_INVALID_JSON_BODY", /JSON/);
      const text = await fetch(`${url}/usage`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "x",
      });
      expect(text.status).to.equal(400);

      // After the period closes, its usage is refused.
      c.t = T0 + PERIOD_MS + 5_000;
      await waitFor("period 0 closed", () => service.store.lastClosedIndex() === 0);
      await reject(
        await signUsage(1, 4n, [record(1, 0, "g1:4:0", "jobs", 1, T0 + 700)]),
        409,
        "BILLING_PERIOD_CLOSED",
        /period 0 is closed/,
      );
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).to.include('edge_billing_records_total{outcome="accepted"} 2');
      expect(metrics).to.include('edge_billing_records_total{outcome="duplicate"} 2');
      expect(metrics).to.include('edge_billing_usage_batches_total{outcome="rejected_billing_record_conflict"} 1');
    });

    it("F3: usage earned while admitted is billed after the gateway's eviction on-chain; usage after it is refused", async function () {
      const p = await loadFixture(networkFixture);
      const c = clock(T0 + 1_000);
      const { url, service } = await billing(p, c);
      const g1 = gatewayAccount(1).address.toLowerCase();
      const evicted = () =>
        (
          service.store.db
            .prepare("select until from gateway_admission where gateway = ? order by since")
            .all(g1) as Array<{
            until: number | null;
          }>
        ).at(-1)?.until ?? null;
      await waitFor(
        "the view admitting gateway 1",
        async () =>
          (await postJson(`${url}/usage`, await signUsage(1, 1n, [record(1, 0, "early", "jobs", 1, T0 + 900)])))
            .status === 200,
      );
      c.t = T0 + 10_000;
      await p.staking.requestUnstake((await p.staking.stakeCount()) - 1n); // gateway 1 (2 is the last stake)
      await mine(1);
      await waitFor("the view seeing the eviction", () => evicted() !== null);
      expect(evicted()).to.equal(T0 + 10_000);
      c.t = T0 + 20_000;
      const earned = await signUsage(1, 2n, [record(1, 0, "earned", "jobs", 5, T0 + 9_000)]);
      expect(await postJson(`${url}/usage`, earned)).to.deep.equal({
        status: 200,
        json: { accepted: 1, duplicates: 0 },
      });
      const late = await postJson(
        `${url}/usage`,
        await signUsage(1, 3n, [record(1, 0, "late", "jobs", 1, T0 + 15_000)]),
      );
      expect([late.status, late.json.code]).to.deep.equal([403, "BILLING_SENDER_NOT_ADMITTED"]);
      expect(service.store.usageTotals(0).map((t) => t.quantity)).to.deep.equal([6n]);
    });

    it("validates its configuration and names what is wrong", async function () {
      const base = ["--rpc", "http://127.0.0.1:1", "--addresses", "x.json", "--prices", "p.json"];
      const fails = (argv: string[], env: Record<string, string>, message: RegExp) =>
        expect(() => loadBillingConfig(argv, env)).to.throw(ConfigError, message);
      fails([], {}, /--rpc is required[\s\S]*--addresses is required[\s\S]*--prices is required/);
      fails([...base, "--biller-key", "0x01"], {}, /--biller-key/);
      fails(base, { EDGE_BILLING_BILLER_KEY: "0x01" }, /EDGE_BILLING_BILLER_KEY must be a private key/);
      fails([...base, "--period-seconds", "0"], {}, /--period-seconds/);
      fails([...base, "--batch-size", "501"], {}, /--batch-size/);
      fails([...base, "--rpc", "ftp://x"], {}, /--rpc must be an http\(s\) URL/);
      expect(loadBillingConfig(base, {}).port).to.equal(7200);
    });
  });

  describe("closing and settling", function () {
    it("bills a closed period exactly as the CLI does and settles each bill once, with its hash", async function () {
      const p = await loadFixture(networkFixture);
      const c = clock(T0 + 1_000);
      const { service, url, db } = await billing(p, c, ["--batch-size", "2"]);
      // Customer 0: 3 jobs + 4,000 rounds; customer 1: 10 jobs but 1 token deposited; customer 2: under the buffer;
      // customer 3: usage only in the next period.
      const records = [
        record(1, 0, "a", "jobs", 3, T0 + 100),
        record(1, 0, "b", "rounds", 2500, T0 + 200),
        record(1, 0, "c", "rounds", 1500, T0 + 300),
        record(1, 1, "d", "jobs", 10, T0 + 400),
        record(1, 2, "e", "rounds", 1000, T0 + 500),
      ];
      expect((await postJson(`${url}/usage`, await signUsage(1, 1n, records))).status).to.equal(200);
      const nextPeriod = record(1, 3, "f", "jobs", 1, T0 + PERIOD_MS + 1);
      c.t = T0 + PERIOD_MS + 2;
      expect((await postJson(`${url}/usage`, await signUsage(1, 2n, [nextPeriod]))).status).to.equal(200);

      c.t = T0 + PERIOD_MS + 5_000;
      await waitFor("period 0 settled", async () => (await get(`${url}/periods/0`)).json.status === "settled");
      const expected = billRecords(
        "0",
        [...records, nextPeriod],
        parsePriceList(PRICES),
        (t) => t >= T0 && t < T0 + PERIOD_MS,
      );
      const rows = service.store.bills("0");
      expect(rows.map((r) => r.bill)).to.deep.equal(expected);
      // 3 * 2 + floor(4000 * 0.3 / 1000) = 7.2 tokens, less 1; customer 1: 20 - 1 = 19; customer 2: 0.3 - 0.3 = 0.
      const of = (n: number) => rows.find((r) => r.customer === customerAccount(n).address.toLowerCase())!;
      expect([0, 1, 2].map((n) => [of(n).total, of(n).status])).to.deep.equal([
        [(72n * ONE) / 10n - ONE, "settled"],
        [19n * ONE, "settled"],
        [0n, "zero"],
      ]);
      expect(rows).to.have.length(3);

      const events = await p.vault.queryFilter(p.vault.filters.BillSettled());
      expect(events).to.have.length(2);
      for (const event of events) {
        const row = rows.find((r) => r.customer === event.args.customer.toLowerCase())!;
        expect(event.args.period).to.equal(0n);
        expect(event.args.billHash).to.equal(row.bill.billHash);
        expect(event.args.amount).to.equal(row.total);
        expect([event.args.charged, event.args.shortfall]).to.deep.equal([row.charged, row.shortfall]);
        expect(row.txHash).to.equal(event.transactionHash);
      }
      const [full, short] = [of(0), of(1)];
      expect([full.charged, full.shortfall]).to.deep.equal([full.total, 0n]);
      expect([short.charged, short.shortfall]).to.deep.equal([ONE, 18n * ONE]);
      expect(await p.vault.outstanding(customerAccount(1).address)).to.equal(18n * ONE);
      expect(await p.vault.isSettled(customerAccount(2).address, 0n)).to.equal(false);

      const summary = await getJson(`${url}/periods/0`);
      expect(summary).to.deep.include({ bills: 3, zero: 1, due: 0, settled: 2, unsettleable: 0 });
      expect(summary.charged).to.equal((full.total + ONE).toString());

      // A restart on the same database sends nothing more.
      const nonce = await ethers.provider.getTransactionCount(BILLER);
      await service.close();
      running.splice(running.indexOf(service), 1);
      const again = await billing(p, c, [], db);
      await again.service.work();
      expect(await ethers.provider.getTransactionCount(BILLER)).to.equal(nonce);
      expect(await p.vault.queryFilter(p.vault.filters.BillSettled())).to.have.length(2);
    });

    it("records bills someone else settled first (billing:settle by hand) without charging them again", async function () {
      const p = await loadFixture(networkFixture);
      const c = clock(T0 + 1_000);
      const { service, url } = await billing(p, c, [], join(dir, "manual.db"));
      await postJson(`${url}/usage`, await signUsage(1, 1n, [record(1, 0, "a", "jobs", 5, T0 + 100)]));
      await service.close();
      running.splice(running.indexOf(service), 1);
      // Closed while the service was down; a person settled the bill from its printed form meanwhile.
      c.t = T0 + PERIOD_MS + 5_000;
      const [bill] = billRecords("0", [record(1, 0, "a", "jobs", 5, T0 + 100)], parsePriceList(PRICES), () => true);
      const biller = await ethers.getImpersonatedSigner(BILLER);
      await p.vault
        .connect(biller)
        .settle(0, [{ customer: bill.customer, amount: bill.total, billHash: bill.billHash }]);
      const again = await billing(p, c, [], join(dir, "manual.db"));
      await waitFor("period 0 settled", async () => (await get(`${again.url}/periods/0`)).json.status === "settled");
      const [row] = again.service.store.bills("0");
      expect(row.bill.billHash).to.equal(bill.billHash);
      expect([row.status, row.charged, row.shortfall]).to.deep.equal(["settled", 9n * ONE, 0n]);
      expect(await p.vault.queryFilter(p.vault.filters.BillSettled())).to.have.length(1);
    });
  });

  describe("customers", function () {
    it("sign in with their wallet and see only their own bills and usage", async function () {
      const p = await loadFixture(networkFixture);
      const c = clock(T0 + 1_000);
      const first = await billing(p, c);
      await postJson(
        `${first.url}/usage`,
        await signUsage(1, 1n, [record(1, 0, "a", "jobs", 2, T0 + 100), record(1, 1, "b", "jobs", 1, T0 + 100)]),
      );
      const me = customerAccount(0).address;
      const other = customerAccount(1).address;
      // A restart keeps usage (rebuilt from the database) but signs everyone out.
      const before = await signIn(first.url, 0);
      await first.service.close();
      running.splice(running.indexOf(first.service), 1);
      const { url } = await billing(p, c, [], first.db);
      expect((await get(`${url}/customers/${me}/usage`, before)).status).to.equal(401);
      const token = await signIn(url, 0);

      // Current usage so far, priced like the bill it will become.
      const usage = await get(`${url}/customers/${me}/usage`, token);
      expect(usage.status).to.equal(200);
      expect(usage.json.period).to.equal("0");
      expect(usage.json.draft.lines).to.deep.equal([
        {
          service: "compute",
          metric: "jobs",
          quantity: "2",
          unitSize: "1",
          unitPrice: (2n * ONE).toString(),
          amount: (4n * ONE).toString(),
        },
      ]);
      expect(usage.json.draft.total).to.equal((3n * ONE).toString());

      c.t = T0 + PERIOD_MS + 5_000;
      await waitFor("period 0 settled", async () => (await get(`${url}/periods/0`)).json.status === "settled");
      const list = await get(`${url}/customers/${me}/bills`, token);
      expect(list.status).to.equal(200);
      expect(list.json.bills).to.have.length(1);
      expect(list.json.bills[0]).to.deep.include({ period: "0", total: (3n * ONE).toString(), status: "settled" });
      const one = await get(`${url}/customers/${me.toLowerCase()}/bills/0`, token);
      expect(one.json.bill.customer).to.equal(me.toLowerCase());
      expect(one.json.billHash).to.equal(one.json.bill.billHash);
      expect(one.json.charged).to.equal((3n * ONE).toString());
      expect(one.json.txHash).to.match(/^0x[0-9a-f]{64}$/);

      // Authorization: another customer's data, no token, a wrong token, a missing bill.
      expect((await get(`${url}/customers/${other}/bills`, token)).json.code).to.equal("BILLING_FORBIDDEN");
      expect((await get(`${url}/customers/${other}/bills/0`, token)).status).to.equal(403);
      expect((await get(`${url}/customers/${me}/bills`)).status).to.equal(401);
      expect((await get(`${url}/customers/${me}/bills`, "x".repeat(43))).json.code).to.equal("BILLING_UNAUTHORIZED");
      expect((await get(`${url}/customers/${me}/bills/7`, token)).json.code).to.equal("BILLING_NOT_FOUND");

      // The token expires; logging out ends it at once.
      const second = await signIn(url, 0);
      const out = await fetch(`${url}/auth/logout`, { method: "POST", headers: { authorization: `Bearer ${second}` } });
      expect(out.status).to.equal(200);
      expect((await get(`${url}/customers/${me}/bills`, second)).status).to.equal(401);
      c.t += 3600 * 1000;
      expect((await get(`${url}/customers/${me}/bills`, token)).status).to.equal(401);
    });

    it("refuses replayed, foreign, expired and forged sign-ins", async function () {
      const p = await loadFixture(networkFixture);
      const c = clock(T0 + 1_000);
      const { url } = await billing(p, c);
      const account = customerAccount(0);
      const start = async () => (await postJson(`${url}/auth/nonce`, { address: account.address })).json;
      const login = (message: string, signature: Hex) => postJson(`${url}/auth/login`, { message, signature });

      const { message } = await start();
      const signature = await account.signMessage({ message });
      expect((await login(message, signature)).status).to.equal(200);
      const replay = await login(message, signature);
      expect([replay.status, replay.json.code]).to.deep.equal([409, "BILLING_NONCE_USED"]);

      const fresh = await start();
      const forged = await login(fresh.message, await customerAccount(1).signMessage({ message: fresh.message }));
      expect([forged.status, forged.json.code]).to.deep.equal([401, "BILLING_BAD_SIGNATURE"]);
      const foreign = fresh.message.replace("localhost wants you", "evil.example wants you");
      const foreignReply = await login(foreign, await account.signMessage({ message: foreign }));
      expect([foreignReply.status, foreignReply.json.error]).to.deep.equal([
        400,
        "the message is for evil.example, not localhost",
      ]);
      const otherChain = fresh.message.replace(`Chain ID: ${CHAIN_ID}`, "Chain ID: 1");
      expect((await login(otherChain, await account.signMessage({ message: otherChain }))).json.error).to.match(
        /chain 1/,
      );
      // A nonce issued to one address cannot sign in another.
      const stolen = fresh.message.replace(account.address, customerAccount(1).address);
      expect((await login(stolen, await customerAccount(1).signMessage({ message: stolen }))).json.error).to.match(
        /issued to another address/,
      );
      expect((await login("hello", signature)).json.error).to.match(/not a sign-in message/);
      c.t += 10 * 60_000;
      const late = await login(fresh.message, await account.signMessage({ message: fresh.message }));
      expect([late.status, late.json.error]).to.deep.equal([400, "the message has expired"]);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).to.include('edge_billing_logins_total{outcome="accepted"} 1');
    });
  });

  it("serves valid Prometheus metrics (promtool check metrics) and OpenAPI docs from the route schemas", async function () {
    const p = await loadFixture(networkFixture);
    const c = clock(T0 + 1_000);
    const { url } = await billing(p, c);
    await postJson(`${url}/usage`, await signUsage(1, 1n, [record(1, 0, "a", "jobs", 1, T0 + 1)]));
    await postJson(`${url}/usage`, { bad: true });
    c.t = T0 + PERIOD_MS + 5_000;
    await waitFor("period 0 settled", async () => (await get(`${url}/periods/0`)).json.status === "settled");
    const text = await (await fetch(`${url}/metrics`)).text();
    const output = promtoolProblems(text);
    expect(output, output).to.equal("");
    expect(text).to.include("edge_billing_last_closed_period 0");
    expect(text).to.include("edge_billing_pending_transactions 0");
    expect(text).to.include('edge_billing_bills_total{status="due"} 1');
    expect(text).to.include("edge_billing_bills_settled_total 1");
    expect(text).to.include("edge_billing_charged_tokens_total 1");
    expect(text).to.include('edge_billing_usage_batches_total{outcome="rejected_fst_err_validation"} 1');
    const docs = await getJson(`${url}/docs/json`);
    expect(docs.openapi).to.match(/^3\./);
    for (const path of ["/usage", "/auth/nonce", "/auth/login", "/customers/{customer}/bills/{period}", "/periods"]) {
      expect(docs.paths, path).to.have.property(path);
    }
    expect(docs.paths["/usage"].post.requestBody.content["application/json"].schema.required).to.include("signature");
    expect(await getJson(`${url}/health`)).to.deep.equal({ ok: true });
    expect(gatewayAccount(1).address).to.match(/^0x/);
  });
});
