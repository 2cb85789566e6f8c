/**
 * D58: a stargate's DNS usage reaches billing. The stargate's usage part (node/roles/stargate/usage.ts, the
 * gateway's meter in node/usage.ts) over a real outbox and the daemon's HTTP sender, signing with a device key bound
 * to an admitted stargate stake on the in-process chain, against a real billing service whose price list prices
 * `dns` `queries`: what is added arrives as signed batches, each query once, across a crash and a restart; without
 * --billing nothing is recorded.
 */
import { expect } from "chai";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ethers } from "hardhat";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { parsePriceList } from "../../offchain/billing/bills";
import { loadBillingConfig } from "../../offchain/billing/config";
import { BillingService } from "../../offchain/billing/service";
import { Outbox, httpSender } from "../../node/outbox";
import { type StargateUsage, createStargateUsage } from "../../node/roles/stargate/usage";
import {
  BILLER_KEY,
  ONE,
  PRICES,
  billingArgs,
  customerAccount,
  deployForBilling,
} from "../../scripts/lib/billingFixture";
import { MINIMUM, StakeType } from "../shared/constants";
import { signConsent } from "../shared/fixtures";
import { silentLog, waitUntil } from "../shared/gatewayHarness";
import { type RpcServer, startRpcServer } from "../shared/rpc";

const STARGATE_KEY = ethers.zeroPadValue(ethers.toBeHex(0x57a60001n), 32) as Hex;
const stargate = privateKeyToAccount(STARGATE_KEY);
const DNS_PRICES = {
  ...PRICES,
  prices: { ...PRICES.prices, dns: { queries: { unitSize: "1000000", unitPrice: ((4n * ONE) / 10n).toString() } } },
};
const owner = (n: number) => customerAccount(n).address as Address;

describe("stargate usage to billing (D58)", function () {
  this.timeout(120_000);
  let rpc: RpcServer;
  let dir: string;
  let billing: BillingService;
  let billingUrl: string;
  const parts: Array<{ usage: StargateUsage }> = [];

  before(async function () {
    rpc = await startRpcServer();
    dir = mkdtempSync(join(tmpdir(), "edge-stargate-usage-"));
    const p = await deployForBilling({ dir, gateways: [1] });
    const [deployer] = await ethers.getSigners();
    const consent = await signConsent(p.staking, new ethers.Wallet(STARGATE_KEY), deployer.address);
    await p.staking.connect(deployer).stakeAndAssign(StakeType.Stargate, MINIMUM[StakeType.Stargate], consent);
    const config = loadBillingConfig(billingArgs(rpc.url, p, join(dir, "billing.db")), {
      EDGE_BILLING_BILLER_KEY: BILLER_KEY,
    });
    billing = await BillingService.create(config, parsePriceList(DNS_PRICES));
    billingUrl = await billing.start();
  });

  after(async function () {
    for (const { usage } of parts.splice(0)) await usage.stop();
    await billing?.close();
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The stargate's usage part as the daemon builds it: the outbox file and the HTTP sender to --billing. */
  function start(data: string, billingFlag: string | undefined, run = true) {
    const box = new Outbox(join(data, `${stargate.address.toLowerCase()}-stargate`, "outbox.jsonl"), silentLog);
    const send = httpSender({ billing: billingFlag });
    const outgoing = { put: box.put.bind(box), flush: () => box.flush(send), pending: () => box.items() };
    const ctx = { log: silentLog, signer: { account: stargate, chainId: 31337 }, outgoing };
    const usage = createStargateUsage(ctx as never, { billing: billingFlag, dataDir: data, usageFlushMs: 100 });
    if (run) {
      parts.push({ usage });
      usage.start();
    }
    return { usage, box };
  }

  /** What billing stored of the stargate: quantity per customer and metric, and the batches' record ids. */
  function stored() {
    const rows = billing.store.db
      .prepare("select id, customer, service, metric, quantity from records where gateway = ? order by id")
      .all(stargate.address.toLowerCase()) as Array<Record<string, string | number>>;
    const totals: Record<string, number> = {};
    for (const r of rows) {
      const key = `${String(r.customer).slice(0, 6)}:${r.service}.${r.metric}`;
      totals[key] = (totals[key] ?? 0) + Number(r.quantity);
    }
    return { totals, ids: rows.map((r) => r.id as string) };
  }

  it("D58: a stargate's dns.queries reach billing as signed batches, each query once across a kill and a restart", async function () {
    const data = join(dir, "node");
    const a = start(data, billingUrl);
    a.usage.add(owner(0), "dns", "queries", 1_000n);
    a.usage.add(owner(1), "dns", "queries", 7n);
    a.usage.add(owner(0), "dns", "queries", 500n);
    await waitUntil("the first batch in billing", () => stored().ids.length === 2, 10_000);
    const x = (n: number) => owner(n).toLowerCase().slice(0, 6);
    expect(stored().totals).to.deep.equal({ [`${x(0)}:dns.queries`]: 1_500, [`${x(1)}:dns.queries`]: 7 });
    expect(a.usage.status()).to.deep.include({ billing: true, added: "1507", pending: 0, sequence: 1 });

    await parts.pop()!.usage.stop(); // a clean stop: nothing left to queue

    // A restarted stargate adds usage (journaled before add returns) and is killed (-9) before its first flush.
    const b = start(data, billingUrl, false);
    b.usage.add(owner(1), "dns", "queries", 3n);
    const journal = readFileSync(join(data, `${stargate.address.toLowerCase()}-stargate`, "usage.jsonl"), "utf8");
    expect(journal).to.include(`${owner(1).toLowerCase()}|dns|queries`);
    // The next start replays the journal and sends it under the next sequence: nothing lost, nothing twice.
    const c = start(data, billingUrl);
    await waitUntil("the journaled usage replayed and delivered", () => stored().totals[`${x(1)}:dns.queries`] === 10);
    await new Promise((r) => setTimeout(r, 300)); // a few more flushes: nothing more arrives
    expect(stored().totals).to.deep.equal({ [`${x(0)}:dns.queries`]: 1_500, [`${x(1)}:dns.queries`]: 10 });
    expect(new Set(stored().ids.map((id) => id.split(":")[1]))).to.deep.equal(new Set(["1", "2"])); // no reuse
    expect(c.usage.status()).to.deep.include({ sequence: 2, pending: 0 });
    expect(c.box.items()).to.deep.equal([]);
  });

  it("D58: without --billing the stargate records nothing (no journal, no batch)", async function () {
    const data = join(dir, "no-billing");
    const { usage, box } = start(data, undefined);
    usage.add(owner(0), "dns", "queries", 5n);
    await new Promise((r) => setTimeout(r, 300));
    await usage.stop();
    expect(box.items()).to.deep.equal([]);
    expect(existsSync(join(data, `${stargate.address.toLowerCase()}-stargate`, "usage.jsonl"))).to.equal(false);
    expect(usage.status()).to.deep.include({ billing: false, added: "0", pending: 0 });
  });
});
