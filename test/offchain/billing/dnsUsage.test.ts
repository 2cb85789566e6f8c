/**
 * Stargates' usage (D58): billing takes signed batches of service `dns` from admitted stargates and bills
 * `dns.queries` at the price list's price; a stargate billing another service, or a gateway billing `dns`, is
 * refused (403 BILLING_SERVICE_NOT_ALLOWED) and nothing of the batch is stored; a stargate's late usage is judged by
 * its own admission history. Through `app.inject` over a database, an injected clock and a chain view stub.
 */
import { expect } from "chai";
import { Registry } from "prom-client";

import { AdmissionHistory } from "../../../offchain/billing/admission";
import { billingAppOptions } from "../../../offchain/billing/app";
import { billRecords, parsePriceList } from "../../../offchain/billing/bills";
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
const GATEWAY = 1;
const STARGATE = 3; // a key of the fixture's gateway series, bound to a stargate stake here
/** The test price list: the fixture's, and DNS at 0.4 token per million queries. */
const DNS_PRICES = {
  ...PRICES,
  prices: {
    ...PRICES.prices,
    dns: { queries: { unitSize: "1000000", unitPrice: ((4n * ONE) / 10n).toString() } },
    // Edge Storage (issue 21, D75): requests per thousand, byte-hours per GB-hour.
    storage: {
      requests: { unitSize: "1000", unitPrice: ONE.toString() },
      byteHours: { unitSize: "1000000000", unitPrice: (2n * ONE).toString() },
    },
  },
};

/** Gateway 1 holds an admitted gateway stake, stargate 3 an admitted stargate stake (until a test evicts it). */
function stubView() {
  const g = gatewayAccount(GATEWAY).address.toLowerCase();
  const s = gatewayAccount(STARGATE).address.toLowerCase();
  const state = { stargateAdmitted: true, stalenessMs: 0 as number | null };
  const stakeType = (device: string) =>
    ({ [g]: StakeType.Gateway, [s]: StakeType.Stargate })[device.toLowerCase()] as StakeType | undefined;
  const admitted = (device: string) =>
    device.toLowerCase() === g || (device.toLowerCase() === s && state.stargateAdmitted);
  const view = {
    map: {
      stakeOfDevice: (device: string) =>
        stakeType(device) === undefined ? undefined : { stakeType: stakeType(device), phase: "active" },
      isAdmitted: admitted,
      devices: () => [g, s].map((device) => ({ device, stakeType: stakeType(device), admitted: admitted(device) })),
    },
    status: () => ({ stalenessMs: state.stalenessMs }),
  } as unknown as ChainView;
  return { view, state };
}

/** A record of `sender` for customer `customer` of `service` `metric`. */
function line(sender: number, customer: number, id: string, service: string, metric: string, n: number, time: number) {
  return { ...record(sender, customer, id, metric, n, time), service };
}

describe("billing of stargates' DNS usage (D58)", function () {
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
    const prices = parsePriceList(DNS_PRICES);
    const usage = { scheme: SCHEME, openUsage: new OpenUsage(), prices, now };
    chain = stubView();
    admission = new AdmissionHistory(store.db, now);
    admission.observe(chain.view);
    const ingest = {
      ...usage,
      ...{ chainId: CHAIN_ID, view: chain.view, admission, maxStalenessMs: 60_000, store, maxSkewMs: 300_000 },
      metrics,
    };
    const routes: BillingRouteDeps = { ingest, store, signIn, usage };
    closing = { ...usage, store, graceMs: 5_000, batchSize: 100, metrics, log: { info() {}, error() {} } };
    app = createServiceApp({ ...billingAppOptions(() => ({ routes, metrics })), logLevel: "silent", registry });
    await app.ready();
  });

  afterEach(async function () {
    await app.close();
    store.close();
  });

  async function post(sender: number, sequence: bigint, records: ReturnType<typeof line>[]) {
    const reply = await app.inject({
      method: "POST",
      url: "/usage",
      payload: await signUsage(sender, sequence, records),
    });
    return { status: reply.statusCode, json: reply.json() };
  }

  it("D58: an admitted stargate's dns.queries are accepted once and billed to the zone owner at the price list's price", async function () {
    const batch = [
      line(STARGATE, 0, "s:1:0", "dns", "queries", 1_500_000, T0 + 100),
      line(STARGATE, 1, "s:1:1", "dns", "queries", 20, T0 + 200),
    ];
    expect(await post(STARGATE, 1n, batch)).to.deep.equal({ status: 200, json: { accepted: 2, duplicates: 0 } });
    expect(await post(STARGATE, 1n, batch)).to.deep.equal({ status: 200, json: { accepted: 0, duplicates: 2 } });
    // A gateway's compute and cdn usage of the same customer goes on the same bill.
    const gw = [
      line(GATEWAY, 0, "g:1:0", "compute", "jobs", 1, T0 + 300),
      line(GATEWAY, 0, "g:1:1", "cdn", "requests", 10, T0 + 300),
    ];
    // The fixture prices no cdn: the gateway's cdn line is refused for its price, not for its service.
    expect((await post(GATEWAY, 1n, gw)).json.code).to.equal("BILLING_UNKNOWN_PRICE");
    expect((await post(GATEWAY, 2n, gw.slice(0, 1))).status).to.equal(200);
    const bills = closePeriod(closing, 0);
    const owner = customerAccount(0).address.toLowerCase();
    const bill = bills.find((b) => b.customer === owner)!;
    // 1.5 M queries at 0.4 token per million = 0.6 token; the job 2 tokens; less the 1-token free buffer.
    expect(bill.lines.map((l) => [l.service, l.metric, l.quantity, l.amount])).to.deep.equal([
      ["compute", "jobs", "1", (2n * ONE).toString()],
      ["dns", "queries", "1500000", ((6n * ONE) / 10n).toString()],
    ]);
    expect(bill.total).to.equal(((16n * ONE) / 10n).toString());
    // The same bill, hash included, as the CLI computes from the records that were sent.
    const cli = billRecords("0", [...batch, gw[0]], parsePriceList(DNS_PRICES), (t) => t < T0 + 60_000);
    expect(cli.find((b) => b.customer === owner)).to.deep.equal(bill);
  });

  it("D75: a gateway's storage.requests and storage.byteHours are accepted and billed to the owner at the price list's price", async function () {
    const records = [
      line(GATEWAY, 0, "g:s:0", "storage", "requests", 3_000, T0 + 100),
      line(GATEWAY, 0, "g:s:1", "storage", "byteHours", 5_000_000_000, T0 + 200),
    ];
    expect(await post(GATEWAY, 1n, records)).to.deep.equal({ status: 200, json: { accepted: 2, duplicates: 0 } });
    // A stargate may not bill storage.
    const stargate = await post(STARGATE, 1n, [line(STARGATE, 0, "s:s", "storage", "requests", 1, T0 + 100)]);
    expect([stargate.status, stargate.json.code]).to.deep.equal([403, "BILLING_SERVICE_NOT_ALLOWED"]);
    const bill = closePeriod(closing, 0).find((b) => b.customer === customerAccount(0).address.toLowerCase())!;
    // 3 thousand requests at 1 token, 5 GB-hours at 2 tokens: 13 tokens, less the 1-token free buffer.
    expect(bill.lines.map((l) => [l.service, l.metric, l.quantity, l.amount])).to.deep.equal([
      ["storage", "byteHours", "5000000000", (10n * ONE).toString()],
      ["storage", "requests", "3000", (3n * ONE).toString()],
    ]);
    expect(bill.total).to.equal((12n * ONE).toString());
  });

  it("D58: a stargate billing cdn or compute, or a gateway billing dns, is refused 403 BILLING_SERVICE_NOT_ALLOWED and nothing is stored", async function () {
    const cases: Array<[number, ReturnType<typeof line>[], RegExp]> = [
      [STARGATE, [line(STARGATE, 0, "a", "cdn", "requests", 1, T0 + 100)], /a stargate may not bill service "cdn"/],
      [
        STARGATE,
        [line(STARGATE, 0, "b", "dns", "queries", 1, T0 + 100), line(STARGATE, 0, "c", "compute", "jobs", 1, T0 + 100)],
        /records\[1\]: a stargate may not bill service "compute" \(it bills dns\)/,
      ],
      [GATEWAY, [line(GATEWAY, 0, "d", "dns", "queries", 1, T0 + 100)], /a gateway may not bill service "dns"/],
    ];
    for (const [sender, records, message] of cases) {
      const reply = await post(sender, 1n, records);
      expect([reply.status, reply.json.code]).to.deep.equal([403, "BILLING_SERVICE_NOT_ALLOWED"]);
      expect(reply.json.error).to.match(message);
    }
    expect(store.recordCount(0)).to.equal(0);
    expect(await registry.metrics()).to.include(
      'edge_billing_usage_batches_total{outcome="rejected_billing_service_not_allowed"} 3',
    );
  });

  it("D58: a stargate's usage earned while admitted is billed after its eviction, later usage refused; its history survives a restart", async function () {
    clock.t = T0 + 10_000;
    chain.state.stargateAdmitted = false;
    admission.observe(chain.view);
    clock.t = T0 + 20_000;
    const earned = await post(STARGATE, 1n, [line(STARGATE, 0, "e", "dns", "queries", 5, T0 + 9_000)]);
    expect([earned.status, earned.json.accepted]).to.deep.equal([200, 1]);
    const late = await post(STARGATE, 2n, [line(STARGATE, 0, "l", "dns", "queries", 5, T0 + 15_000)]);
    expect([late.status, late.json.code]).to.deep.equal([403, "BILLING_SENDER_NOT_ADMITTED"]);
    expect(late.json.error).to.match(/the stargate was not admitted at time/);
    const reloaded = new AdmissionHistory(store.db, () => clock.t);
    const stargate = gatewayAccount(STARGATE).address;
    expect([9_000, 15_000].map((t) => reloaded.admittedAt(stargate, T0 + t, StakeType.Stargate))).to.deep.equal([
      true,
      false,
    ]);
    // Kinds are kept apart: the stargate was never an admitted gateway.
    expect(reloaded.admittedAt(stargate, T0 + 9_000)).to.equal(false);
  });
});
