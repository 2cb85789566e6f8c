/**
 * Health by stargates across real daemons (D55): a Hardhat chain over JSON-RPC with the protocol and
 * ConfigRegistry, stargate A (configuration key) and stargate B (relaying A's stream), each the other's --peers,
 * and a gateway subscribed to A. B never sees the gateway subscribe, yet checks it from A's signed verdicts; both
 * catalogues follow the gateway's drain; with B stopped, A decides alone.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre, { ethers, network } from "hardhat";
import { type Address, type Hex, type PublicClient, createWalletClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "../../scripts/lib/hardhatChain";

import { deployProtocol } from "../../scripts/deploy/deployProtocol";
import { anchorVersion } from "../../offchain/common/configAnchor";
import { documentHash, emptyConfig, encodeDocument } from "../../offchain/common/protocol";
import { loadConfig } from "../../node/config";
import { EdgeNode } from "../../node/daemon";
import type { Catalogue } from "../../node/context";
import { LOAD_HEADER, parseLoadHeader } from "../../node/loadReport";
import { StakeType } from "../shared/constants";
import { bookContracts, signConsent } from "../shared/fixtures";
import { type RpcServer, publicClient, startRpcServer } from "../shared/rpc";

const ONE = ethers.parseEther("1");
const key = (n: number) => ethers.zeroPadValue(ethers.toBeHex(0xa9200000 + n), 32) as Hex;
const CONFIG_KEY = key(50);
const ADMIN = "health-test-admin-token";

describe("Stargate health across daemons (D55)", function () {
  this.timeout(120_000);
  let rpc: RpcServer;
  let dir: string;
  let bookFile: string;
  let version1: Buffer;
  const running: EdgeNode[] = [];

  before(async function () {
    rpc = await startRpcServer();
    dir = mkdtempSync(join(tmpdir(), "stargate-health-"));
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
    const stake = async (type: StakeType, amount: bigint, n: number) => {
      const consent = await signConsent(staking, new ethers.Wallet(key(n)), deployer.address);
      await staking.connect(deployer).stakeAndAssign(type, amount, consent);
    };
    await stake(StakeType.Stargate, 250_000n * ONE, 1);
    await stake(StakeType.Stargate, 250_000n * ONE, 2);
    await stake(StakeType.Gateway, 25_000n * ONE, 3);
    const client = publicClient(rpc.url) as PublicClient;
    const wallet = createWalletClient({ account: publisher, chain: hardhat, transport: http(rpc.url) });
    const bytes = encodeDocument(emptyConfig(1));
    await anchorVersion(wallet, client, book.contracts.ConfigRegistry!.address as Address, 1, documentHash(bytes));
    version1 = bytes;
  });

  after(async function () {
    await Promise.all(running.map((n) => n.close()));
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startNode(role: string, n: number, flags: string[], env: Record<string, string> = {}) {
    const config = loadConfig(
      [
        ...["--role", role, "--rpc", rpc.url, "--addresses", bookFile, "--port", "0", "--confirmations", "0"],
        ...["--poll-interval-ms", "25", "--data-dir", join(dir, "data"), "--log-level", "silent"],
        ...["--health-interval-ms", "200", ...flags],
      ],
      { EDGE_NODE_DEVICE_KEY: key(n), EDGE_NODE_ADMIN_TOKEN: ADMIN, ...env },
    );
    const node = await EdgeNode.create(config);
    const url = await node.start();
    running.push(node);
    return { node, url };
  }

  const json = async (url: string) => (await (await fetch(url)).json()) as Record<string, any>;
  const catalogue = async (url: string) => (await json(`${url}/health/catalogue`)) as Catalogue;
  const healthOf = async (url: string, device: string) =>
    (await catalogue(url)).endpoints.find((e) => e.device.toLowerCase() === device.toLowerCase())?.healthy;

  const freePort = async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  };

  async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000) {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it("two stargates agree on a gateway only one of them serves, follow its drain, and one alone decides when the other stops", async function () {
    // B's port is chosen first, so that A can name B in its --peers (a peer list is fixed at start).
    const bPort = await freePort();
    const a = await startNode("stargate", 1, ["--grpc-port", "0", "--peers", `http://127.0.0.1:${bPort}`], {
      EDGE_NODE_CONFIG_KEY: CONFIG_KEY,
    });
    const upload = await fetch(`${a.url}/config/versions`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: version1,
    });
    expect(upload.status, await upload.text()).to.equal(200);
    const grpcOf = async (url: string) => `127.0.0.1:${(await json(`${url}/status`)).stargate.config.grpcPort}`;
    const b = await startNode("stargate", 2, [
      ...["--grpc-port", "0", "--port", String(bPort), "--stargates", await grpcOf(a.url), "--peers", a.url],
    ]);
    const gw = await startNode("gateway", 3, ["--stargates", await grpcOf(a.url), "--cdn-port", "0"]);
    const gateway = privateKeyToAccount(key(3)).address;
    const stargateB = privateKeyToAccount(key(2)).address;

    await waitFor("A calls the gateway and B (its relaying subscriber) healthy", async () => {
      return (await healthOf(a.url, gateway)) === true && (await healthOf(a.url, stargateB)) === true;
    });
    await waitFor("B checks the gateway it learnt from A's verdicts", async () => {
      const status = (await json(`${b.url}/status`)).stargate.health;
      return status.targets >= 1 && (await healthOf(b.url, gateway)) === true;
    });
    // The gateway reports its load with /ready (D71); A's probe reads it into its public catalogue, B's own too.
    const ready = await fetch(`${gw.url}/ready`);
    expect(parseLoadHeader(ready.headers.get(LOAD_HEADER) ?? undefined)).to.deep.equal({ inFlight: 0, capacity: 0, queueDepth: 0, p99Ms: 0 }); // prettier-ignore
    const idle = { inFlight: 0, capacity: 0, queueDepth: 0, p99Ms: 0 };
    for (const url of [a.url, b.url])
      await waitFor(`${url}'s catalogue shows the load its own probe read`, async () => {
        const entry = (await catalogue(url)).endpoints.find((e) => e.device === gateway);
        return JSON.stringify(entry?.load) === JSON.stringify(idle);
      });
    expect((await json(`${gw.url}/status`)).load).to.include({ inFlight: 0, queueDepth: 0 });
    const bPeers = (await json(`${b.url}/status`)).stargate.health.catalogue.peers;
    expect(bPeers[0]).to.include({ stargate: privateKeyToAccount(key(1)).address });
    await waitFor(
      "the gateway holds a catalogue",
      async () => (await json(`${gw.url}/status`)).gateway.catalogueAt > 0,
    );

    const drain = await fetch(`${gw.url}/admin/drain`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(drain.status).to.equal(200);
    const drainedAt = Date.now();
    await waitFor("both stargates call the drained gateway unhealthy", async () => {
      return (await healthOf(a.url, gateway)) === false && (await healthOf(b.url, gateway)) === false;
    });
    console.log(`      a drained gateway left both catalogues in ${Date.now() - drainedAt} ms (interval 200 ms)`);
    const verdicts = (await json(`${a.url}/health/verdicts`)) as { verdicts: { device: string; healthy: boolean }[] };
    expect(verdicts.verdicts.find((v) => v.device === gateway)?.healthy).to.equal(false);

    const aPeers = (await json(`${a.url}/status`)).stargate.health.catalogue.peers;
    expect(aPeers[0]).to.include({ stargate: stargateB });

    await b.node.close();
    running.splice(running.indexOf(b.node), 1);
    await waitFor("A notices B is gone and decides alone", async () => {
      const peers = (await json(`${a.url}/status`)).stargate.health.catalogue.peers;
      return typeof peers[0].error === "string" && (await healthOf(a.url, stargateB)) !== true;
    });
    expect(await healthOf(a.url, gateway), "A alone still calls the drained gateway unhealthy").to.equal(false);
  });
});
