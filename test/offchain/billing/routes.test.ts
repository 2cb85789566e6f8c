/**
 * Billing's routes through `app.inject`: the app as the service builds it (billingAppOptions), over a database and
 * an injected clock, with a chain view stub that admits gateway 1. No chain, no socket.
 */
import { expect } from "chai";
import { Registry } from "prom-client";

import { AdmissionHistory } from "../../../offchain/billing/admission";
import { billingAppOptions } from "../../../offchain/billing/app";
import { parsePriceList } from "../../../offchain/billing/bills";
import { type CloseDeps, closePeriod } from "../../../offchain/billing/close";
import { createBillingMetrics } from "../../../offchain/billing/metrics";
import { OpenUsage } from "../../../offchain/billing/openUsage";
import type { BillingRouteDeps } from "../../../offchain/billing/routes";
import { SignIn } from "../../../offchain/billing/signIn";
import { BillingStore } from "../../../offchain/billing/store";
import type { ChainView } from "../../../offchain/common/chainView";
import { type TypedApp, createServiceApp } from "../../../offchain/common/http";
import type { PeriodScheme } from "../../../offchain/common/period";
import { StakeType } from "../../../offchain/common/stakeMap";
import { CHAIN_ID, ONE, PRICES, customerAccount, gatewayAccount, record, signUsage } from "./helpers";

const T0 = Date.UTC(2026, 10, 1);
const SCHEME: PeriodScheme = { kind: "fixed", startMs: T0, lengthMs: 60_000 };

/** Gateway 1 holds an admitted gateway stake (until a test evicts it); nobody else holds one. */
function stubView() {
  const g1 = gatewayAccount(1).address.toLowerCase();
  const state = { admitted: true, released: false, stalenessMs: 0 as number | null };
  const view = {
    map: {
      stakeOfDevice: (device: string) =>
        device.toLowerCase() === g1
          ? { stakeType: StakeType.Gateway, phase: state.released ? "released" : "active" }
          : undefined,
      isAdmitted: (device: string) => device.toLowerCase() === g1 && state.admitted,
      devices: () => [{ device: g1, stakeType: StakeType.Gateway, admitted: state.admitted }],
    },
    status: () => ({ stalenessMs: state.stalenessMs }),
  } as unknown as ChainView;
  return { view, state };
}

describe("billing routes (app.inject)", function () {
  let clock: { t: number };
  let store: BillingStore;
  let registry: Registry;
  let app: TypedApp;
  let closing: CloseDeps;
  let chain: ReturnType<typeof stubView>;
  let admission: AdmissionHistory;

  beforeEach(async function () {
    clock = { t: T0 + 1_000 };
    const now = () => clock.t;
    store = new BillingStore(":memory:");
    store.setMeta("firstPeriod", "0");
    registry = new Registry();
    const signIn = new SignIn({ domain: "localhost", chainId: CHAIN_ID, tokenTtlMs: 3600_000, now });
    const metrics = createBillingMetrics(registry, {
      lastClosedPeriod: () => store.lastClosedIndex() ?? -1,
      pendingTransactions: () => 0,
      unsettledPeriods: () => store.unsettledPeriods().length,
      stalenessSeconds: () => 0,
      sessions: () => signIn.sessionCount,
    });
    const prices = parsePriceList(PRICES);
    const openUsage = new OpenUsage();
    const usage = { scheme: SCHEME, openUsage, prices, now };
    chain = stubView();
    admission = new AdmissionHistory(store.db, now);
    admission.observe(chain.view);
    const { view } = chain;
    const ingest = {
      ...usage,
      chainId: CHAIN_ID,
      view,
      admission,
      maxStalenessMs: 60_000,
      store,
      maxSkewMs: 300_000,
      metrics,
    };
    const routes: BillingRouteDeps = { ingest, store, signIn, usage };
    const log = { info() {}, error() {} };
    closing = { ...usage, store, graceMs: 5_000, batchSize: 100, metrics, log };
    app = createServiceApp({ ...billingAppOptions(() => ({ routes, metrics })), logLevel: "silent", registry });
    await app.ready();
  });

  afterEach(async function () {
    await app.close();
    store.close();
  });

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  async function signIn(n: number): Promise<string> {
    const account = customerAccount(n);
    const nonce = await app.inject({ method: "POST", url: "/auth/nonce", payload: { address: account.address } });
    const { message } = nonce.json();
    const signature = await account.signMessage({ message });
    const login = await app.inject({ method: "POST", url: "/auth/login", payload: { message, signature } });
    expect(login.statusCode, login.body).to.equal(200);
    return login.json().token;
  }

  it("takes usage, shows each signed-in customer only its own usage and bills, and the periods to anyone", async function () {
    const me = customerAccount(0).address;
    const batch = await signUsage(1, 1n, [
      record(1, 0, "a", "jobs", 2, T0 + 100),
      record(1, 1, "b", "jobs", 1, T0 + 200),
    ]);
    const usage = await app.inject({ method: "POST", url: "/usage", payload: batch });
    expect([usage.statusCode, usage.json()]).to.deep.equal([200, { accepted: 2, duplicates: 0 }]);
    const stranger = await app.inject({
      method: "POST",
      url: "/usage",
      payload: await signUsage(2, 1n, [record(2, 0, "c", "jobs", 1, T0 + 100)]),
    });
    expect([stranger.statusCode, stranger.json().code]).to.deep.equal([403, "BILLING_SENDER_NOT_STAKED"]);

    const token = await signIn(0);
    const draft = await app.inject({ url: `/customers/${me}/usage`, headers: bearer(token) });
    expect(draft.json()).to.deep.include({
      period: "0",
      start: new Date(T0).toISOString(),
      end: new Date(T0 + 60_000).toISOString(),
    });
    expect(draft.json().draft).to.deep.include({ customer: me.toLowerCase(), total: (3n * ONE).toString() });
    expect(draft.json().draft).to.not.have.property("billHash");

    expect((await app.inject({ url: "/periods" })).json()).to.deep.equal({ periods: [] });
    expect((await app.inject({ url: "/periods/0" })).json().code).to.equal("BILLING_NOT_FOUND");
    closePeriod(closing, 0);
    const period = await app.inject({ url: "/periods/0" });
    expect(period.json()).to.deep.include({
      period: "0",
      status: "closed",
      bills: 2,
      due: 2,
      total: (4n * ONE).toString(),
    });
    expect((await app.inject({ url: "/periods" })).json().periods).to.deep.equal([period.json()]);

    const bills = await app.inject({ url: `/customers/${me}/bills`, headers: bearer(token) });
    expect(bills.json().bills).to.have.length(1);
    expect(bills.json().bills[0]).to.deep.include({
      period: "0",
      total: (3n * ONE).toString(),
      status: "due",
      txHash: null,
    });
    const bill = await app.inject({ url: `/customers/${me}/bills/0`, headers: bearer(token) });
    expect(bill.json().bill).to.deep.include({ customer: me.toLowerCase(), period: "0" });
    expect(bill.json().billHash).to.equal(bill.json().bill.billHash);
    const missing = await app.inject({ url: `/customers/${me}/bills/1`, headers: bearer(token) });
    expect([missing.statusCode, missing.json().code]).to.deep.equal([404, "BILLING_NOT_FOUND"]);

    const other = customerAccount(1).address;
    for (const url of [`/customers/${other}/bills`, `/customers/${other}/bills/0`, `/customers/${other}/usage`]) {
      const reply = await app.inject({ url, headers: bearer(token) });
      expect([reply.statusCode, reply.json().code], url).to.deep.equal([403, "BILLING_FORBIDDEN"]);
      expect((await app.inject({ url })).statusCode, url).to.equal(401);
    }
    const out = await app.inject({ method: "POST", url: "/auth/logout", headers: bearer(token) });
    expect([out.statusCode, out.json()]).to.deep.equal([200, { ok: true }]);
    const after = await app.inject({ url: `/customers/${me}/bills`, headers: bearer(token) });
    expect([after.statusCode, after.json().code]).to.deep.equal([401, "BILLING_UNAUTHORIZED"]);
  });

  it("answers malformed requests with the schema's 400, counts refused batches and documents the routes", async function () {
    const bad = [
      { method: "POST", url: "/usage", payload: { bad: true } },
      { method: "POST", url: "/auth/nonce", payload: { address: "0x12" } },
      { method: "POST", url: "/auth/login", payload: { message: "m", signature: "0x00" } },
      { method: "GET", url: "/customers/not-an-address/bills" },
      { method: "GET", url: "/periods/last" },
    ] as const;
    for (const request of bad) {
      const reply = await app.inject(request);
      expect([reply.statusCode, reply.json().code], request.url).to.deep.equal([400, "FST_ERR_VALIDATION"]);
    }
    const metrics = await registry.metrics();
    expect(metrics).to.include('edge_billing_usage_batches_total{outcome="rejected_fst_err_validation"} 1');

    const docs = (await app.inject({ url: "/docs/json" })).json();
    expect(docs.components.securitySchemes).to.deep.equal({ bearer: { type: "http", scheme: "bearer" } });
    const login = docs.paths["/auth/login"].post.requestBody.content["application/json"].schema;
    expect(login.properties.signature).to.deep.include({ type: "string", pattern: "^0x[0-9a-fA-F]{130}$" });
    expect(docs.paths["/customers/{customer}/bills"].get.security).to.deep.equal([{ bearer: [] }]);
  });

  it("F3: usage earned while admitted is billed after the eviction; later usage is refused; a stale view answers 503", async function () {
    const post = async (sequence: bigint, id: string, time: number) => {
      const reply = await app.inject({
        method: "POST",
        url: "/usage",
        payload: await signUsage(1, sequence, [record(1, 0, id, "jobs", 1, time)]),
      });
      return [reply.statusCode, reply.json().code ?? reply.json().accepted];
    };
    clock.t = T0 + 10_000;
    chain.state.admitted = false; // evicted at T0 + 10 s (as billing's view sees it)
    admission.observe(chain.view);
    clock.t = T0 + 20_000;
    expect(await post(1n, "earned", T0 + 9_000)).to.deep.equal([200, 1]);
    expect(await post(2n, "after", T0 + 15_000)).to.deep.equal([403, "BILLING_SENDER_NOT_ADMITTED"]);
    chain.state.stalenessMs = 120_000; // the view may have missed a re-admission: retry, do not drop
    expect(await post(3n, "after", T0 + 15_000)).to.deep.equal([503, "BILLING_VIEW_STALE"]);
    chain.state.stalenessMs = 0;
    // Admitted again: a new interval, records of the gap still refused.
    clock.t = T0 + 30_000;
    chain.state.admitted = true;
    admission.observe(chain.view);
    chain.state.admitted = false;
    clock.t = T0 + 40_000;
    admission.observe(chain.view);
    expect(await post(4n, "again", T0 + 35_000)).to.deep.equal([200, 1]);
    expect(await post(5n, "gap", T0 + 20_000)).to.deep.equal([403, "BILLING_SENDER_NOT_ADMITTED"]);
    // The history survives a restart (it lives in the database).
    const reloaded = new AdmissionHistory(store.db, () => clock.t);
    expect(
      [9_000, 20_000, 35_000, 45_000].map((t) => reloaded.admittedAt(gatewayAccount(1).address, T0 + t)),
    ).to.deep.equal([true, false, true, false]);
  });

  it("M3 (review after D42): once its stake is released, an evicted gateway can no longer bill back-dated usage", async function () {
    const post = async (sequence: bigint, id: string, time: number) => {
      const reply = await app.inject({
        method: "POST",
        url: "/usage",
        payload: await signUsage(1, sequence, [record(1, 0, id, "jobs", 1, time)]),
      });
      return [reply.statusCode, reply.json().code ?? reply.json().accepted];
    };
    clock.t = T0 + 10_000;
    chain.state.admitted = false; // evicted (unbonding): usage earned before still counts
    admission.observe(chain.view);
    clock.t = T0 + 20_000;
    expect(await post(1n, "earned", T0 + 5_000)).to.deep.equal([200, 1]);
    chain.state.released = true; // released: nothing left to slash
    expect(await post(2n, "forged", T0 + 6_000)).to.deep.equal([403, "BILLING_SENDER_NOT_STAKED"]);
    chain.state.stalenessMs = 120_000; // a stale view may have missed a new stake: retry, do not drop
    expect(await post(3n, "forged", T0 + 6_000)).to.deep.equal([503, "BILLING_VIEW_STALE"]);
  });

  it("F7: a sender that is not an admitted gateway is refused before the body is validated, hashed or verified", async function () {
    // 5,000 records that would fail the schema, with a signature that would fail recovery: the sender check answers.
    const junk = Array.from({ length: 5_000 }, (_, i) => ({ id: i, extra: "x".repeat(100) }));
    const stranger = gatewayAccount(2).address;
    const payload = { gateway: stranger, sequence: "1", records: junk, signature: "0x" + "11".repeat(65) };
    const reply = await app.inject({ method: "POST", url: "/usage", payload });
    expect([reply.statusCode, reply.json().code]).to.deep.equal([403, "BILLING_SENDER_NOT_STAKED"]);
    // Bad records of an admitted gateway are refused before the signature is checked (garbage signature: 400, not 401).
    const mine = await signUsage(1, 1n, [record(1, 0, "a", "nope", 1, T0 + 100)]);
    const unsigned = { ...mine, signature: "0x" + "11".repeat(65) };
    const early = await app.inject({ method: "POST", url: "/usage", payload: unsigned });
    expect([early.statusCode, early.json().code]).to.deep.equal([400, "BILLING_UNKNOWN_PRICE"]);
  });
});
