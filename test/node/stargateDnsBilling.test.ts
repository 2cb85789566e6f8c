/**
 * D58 end to end: a customer writes its zone through a stargate's Network API (wallet login, PUT /api/zones), the
 * stargate's DNS server answers it, and the answered queries reach a real billing service as the stargate's signed
 * `dns.queries` usage for the zone's owner; REFUSED queries are not billed. A Hardhat chain over JSON-RPC with the
 * protocol and ConfigRegistry, one admitted stargate daemon with the configuration key, --dns-port and --billing.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre, { ethers, network } from "hardhat";
import { type Address, type Hex, type PublicClient, createWalletClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { parsePriceList } from "../../offchain/billing/bills";
import { loadBillingConfig } from "../../offchain/billing/config";
import { BillingService } from "../../offchain/billing/service";
import { anchorVersion } from "../../offchain/common/configAnchor";
import { documentHash, emptyConfig, encodeDocument } from "../../offchain/common/protocol";
import { DnsProber } from "../../offchain/newton/dnsProbe";
import { loadConfig } from "../../node/config";
import { EdgeNode } from "../../node/daemon";
import { deployProtocol } from "../../scripts/deploy/deployProtocol";
import { hardhat } from "../../scripts/lib/hardhatChain";
import { StakeType } from "../shared/constants";
import { bookContracts, signConsent } from "../shared/fixtures";
import { type RpcServer, publicClient, startRpcServer } from "../shared/rpc";

const ONE = ethers.parseEther("1");
const key = (n: number) => ethers.zeroPadValue(ethers.toBeHex(0xd5b10000 + n), 32) as Hex;
const CONFIG_KEY = key(50);
const STARGATE_KEY = key(1);
const alice = privateKeyToAccount(key(70));
const PRICES = {
  freeBuffer: "0",
  prices: { dns: { queries: { unitSize: "1000000", unitPrice: ((4n * ONE) / 10n).toString() } } },
};

describe("stargate DNS usage to billing, end to end (D58)", function () {
  this.timeout(120_000);
  let rpc: RpcServer;
  let dir: string;
  let bookFile: string;
  let version1: Buffer;
  let billing: BillingService | undefined;
  let node: EdgeNode | undefined;

  before(async function () {
    rpc = await startRpcServer();
    dir = mkdtempSync(join(tmpdir(), "stargate-dns-billing-"));
    const publisher = privateKeyToAccount(CONFIG_KEY);
    const { book, file } = await deployProtocol(hre, {
      parameters: {
        ignition: {
          StakeManager: { adminDelay: 0n },
          RewardsManager: { epochDuration: 60n },
          ConfigRegistry: { adminDelay: 0n, publisher: publisher.address },
        },
        roles: {},
      },
      addressesDir: join(dir, "book"),
    });
    bookFile = file;
    await network.provider.send("hardhat_setBalance", [publisher.address, "0xde0b6b3a7640000"]);
    const [deployer] = await ethers.getSigners();
    const { staking, token } = await bookContracts(book);
    await token.connect(deployer).approve(await staking.getAddress(), ethers.MaxUint256);
    const consent = await signConsent(staking, new ethers.Wallet(STARGATE_KEY), deployer.address);
    await staking.connect(deployer).stakeAndAssign(StakeType.Stargate, 250_000n * ONE, consent);
    const client = publicClient(rpc.url) as PublicClient;
    const wallet = createWalletClient({ account: publisher, chain: hardhat, transport: http(rpc.url) });
    version1 = encodeDocument(emptyConfig(1));
    await anchorVersion(wallet, client, book.contracts.ConfigRegistry!.address as Address, 1, documentHash(version1));
  });

  after(async function () {
    await node?.close();
    await billing?.close();
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const json = async (url: string, init: RequestInit = {}) => {
    const response = await fetch(url, init);
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000) {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it("D58: a zone written through the API is answered, and its answered queries reach billing as the stargate's signed dns.queries", async function () {
    const prices = join(dir, "prices.json");
    writeFileSync(prices, JSON.stringify(PRICES));
    const billingArgs = ["--rpc", rpc.url, "--addresses", bookFile, "--prices", prices, "--port", "0"];
    const billingConfig = loadBillingConfig(
      [...billingArgs, "--db", join(dir, "billing.db"), "--confirmations", "0", "--poll-interval-ms", "50"],
      { EDGE_BILLING_LOG_LEVEL: "silent" },
    );
    billing = await BillingService.create(billingConfig, parsePriceList(PRICES));
    const billingUrl = await billing.start();

    const config = loadConfig(
      [
        ...["--role", "stargate", "--rpc", rpc.url, "--addresses", bookFile, "--port", "0", "--grpc-port", "0"],
        ...["--confirmations", "0", "--poll-interval-ms", "25", "--data-dir", join(dir, "data")],
        ...["--log-level", "silent", "--dns-port", "0", "--billing", billingUrl, "--usage-flush-ms", "200"],
      ],
      { EDGE_NODE_DEVICE_KEY: STARGATE_KEY, EDGE_NODE_CONFIG_KEY: CONFIG_KEY },
    );
    node = await EdgeNode.create(config);
    const url = await node.start();
    const upload = await fetch(`${url}/config/versions`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: version1,
    });
    expect(upload.status, await upload.text()).to.equal(200);
    await waitFor("the stargate serving version 1", async () => {
      const status = (await json(`${url}/status`)).body;
      return status.serving && status.stargate?.config?.version === 1;
    });

    // The customer's wallet login and its zone.
    const nonce = (await json(`${url}/api/nonce?address=${alice.address}`)).body.message as string;
    const login = await json(`${url}/api/login/wallet`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ message: nonce, signature: await alice.signMessage({ message: nonce }) }),
    });
    expect(login.status, JSON.stringify(login.body)).to.equal(200);
    const zone = {
      ttl: 300,
      soa: {
        mname: "ns.edge.network",
        rname: "hostmaster.shop.test",
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 60,
      },
      records: [{ name: "@", type: "A", data: "192.0.2.7" }],
    };
    const put = await json(`${url}/api/zones/shop.test`, {
      method: "PUT",
      headers: { authorization: `Bearer ${login.body.token}`, "content-type": "application/json" },
      body: JSON.stringify(zone),
    });
    expect(put.status, JSON.stringify(put.body)).to.equal(200);

    const port = (await json(`${url}/status`)).body.stargate.dns.port as number;
    const prober = new DnsProber(`127.0.0.1:${port}`, 1_000);
    let billed = 0;
    try {
      const ask = async (name: string, type: "A" | "MX") => {
        const rcode = await prober.query(name, type);
        if (rcode !== "REFUSED" && rcode !== "SERVFAIL" && name.endsWith("shop.test")) billed += 1;
        return rcode;
      };
      await waitFor("the zone answered", async () => (await ask("shop.test", "A")) === "NOERROR");
      for (let i = 0; i < 5; i++) expect(await ask("shop.test", "A")).to.equal("NOERROR");
      expect(await ask("nope.shop.test", "A")).to.equal("NXDOMAIN");
      expect(await ask("shop.test", "MX")).to.equal("NOERROR"); // NODATA
      expect(await ask("elsewhere.test", "A")).to.equal("REFUSED"); // not ours: not billed
    } finally {
      prober.close();
    }

    const sender = privateKeyToAccount(STARGATE_KEY).address.toLowerCase();
    const stored = () =>
      billing!.store.db
        .prepare("select customer, service, metric, sum(quantity) as n from records where gateway = ? group by 1, 2, 3")
        .all(sender) as Array<{ customer: string; service: string; metric: string; n: number }>;
    await waitFor("the stargate's usage in billing", () => stored()[0]?.n === billed);
    await new Promise((r) => setTimeout(r, 1_500)); // more flushes: nothing more comes
    expect(stored()).to.deep.equal([
      { customer: alice.address.toLowerCase(), service: "dns", metric: "queries", n: billed },
    ]);
    expect(billed).to.be.at.least(8);
  });
});
