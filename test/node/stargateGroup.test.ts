/**
 * Group membership and node drain across real daemons (issue 18, D59): a Hardhat chain over JSON-RPC with the
 * protocol and ConfigRegistry, stargate A with the configuration key, stargate B relaying A's configuration stream
 * and forwarding writes to A, and a gateway subscribed to B then A (--stargates B,A).
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
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
import { hashPassword } from "../../node/roles/stargate/passwords";
import { parsePlan } from "../../offchain/rollout/plan";
import { resolveAddresses } from "../../offchain/rollout/probes";
import { type ProgressEvent, rollout } from "../../offchain/rollout/queue";
import { StakeType } from "../shared/constants";
import { bookContracts, signConsent } from "../shared/fixtures";
import { type RpcServer, publicClient, startRpcServer } from "../shared/rpc";

const ONE = ethers.parseEther("1");
const key = (n: number) => ethers.zeroPadValue(ethers.toBeHex(0xa9180000 + n), 32) as Hex;
const CONFIG_KEY = key(50);
const PASSWORD = "group test password";
const ADMIN = "group-test-admin-token";

describe("Stargate group leave/join and node drain (daemons)", function () {
  this.timeout(120_000);
  let rpc: RpcServer;
  let dir: string;
  let bookFile: string;
  let version1: Buffer;
  const running: EdgeNode[] = [];
  /** The route announcer B reaches with --dns-announce: what it was asked, in order. */
  const announcer: { server?: Server; url: string; calls: { path: string; member: string }[] } = { url: "", calls: [] };
  const net: { a: string; b: string; gw: string; grpcA: string; grpcB: string } = {} as never;

  before(async function () {
    rpc = await startRpcServer();
    dir = mkdtempSync(join(tmpdir(), "stargate-group-"));
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
    const cost = { logN: 12, r: 8, p: 1 };
    const users = [
      {
        name: "ops",
        passwordHash: await hashPassword(PASSWORD, cost),
        scopes: ["node:drain", "blocklist:write", "config:publish"],
      },
      { name: "reader", passwordHash: await hashPassword(PASSWORD, cost), scopes: [] },
    ];
    writeFileSync(join(dir, "users.json"), JSON.stringify({ users }));
    const client = publicClient(rpc.url) as PublicClient;
    const wallet = createWalletClient({ account: publisher, chain: hardhat, transport: http(rpc.url) });
    version1 = encodeDocument(emptyConfig(1));
    await anchorVersion(wallet, client, book.contracts.ConfigRegistry!.address as Address, 1, documentHash(version1));

    const usersFile = join(dir, "users.json");
    const a = await startNode(
      "stargate",
      1,
      ["--grpc-port", "0", "--users", usersFile, "--health-interval-ms", "200"],
      {
        EDGE_NODE_CONFIG_KEY: CONFIG_KEY,
      },
    );
    const upload = await fetch(`${a}/config/versions`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: version1,
    });
    expect(upload.status, await upload.text()).to.equal(200);
    const grpcA = await grpcOf(a);
    announcer.server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        announcer.calls.push({ path: req.url ?? "", member: String(JSON.parse(body || "{}").member).toLowerCase() });
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ members: [] }));
      });
    });
    await new Promise<void>((resolve) => announcer.server!.listen(0, "127.0.0.1", resolve));
    announcer.url = `http://127.0.0.1:${(announcer.server.address() as AddressInfo).port}`;
    const b = await startNode(
      "stargate",
      2,
      [
        "--grpc-port",
        "0",
        "--users",
        usersFile,
        "--stargates",
        grpcA,
        "--peers",
        a,
        "--dns-port",
        "0",
        "--dns-announce",
        announcer.url,
      ],
      {
        EDGE_NODE_ADMIN_TOKEN: ADMIN,
      },
    );
    const grpcB = await grpcOf(b);
    const gw = await startNode("gateway", 3, ["--stargates", `${grpcB},${grpcA}`, "--cdn-port", "0"], {
      EDGE_NODE_ADMIN_TOKEN: ADMIN,
    });
    Object.assign(net, { a, b, gw, grpcA, grpcB });
    await waitFor("all three serving and the gateway on version 1", async () => {
      const states = await Promise.all([a, b, gw].map(async (u) => (await json(`${u}/status`)).body));
      return states.every((s) => s.serving) && states[2].config?.version === 1 && states[2].config.connected;
    });
    // The gateway's first challenge can come before its view admits B: it then moved on to A. Back to B.
    if ((await json(`${gw}/status`)).body.config.stargate !== grpcB) {
      await call(`${a}/admin/leave`, "POST", await login(a, "ops"));
      await waitFor("the gateway on B", gatewayCaughtUp(grpcB));
      await call(`${a}/admin/join`, "POST", await login(a, "ops"));
    }
  });

  after(async function () {
    await Promise.all(running.map((n) => n.close()));
    announcer.server?.close();
    await rpc?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startNode(role: string, n: number, flags: string[], env: Record<string, string> = {}) {
    const config = loadConfig(
      [
        ...["--role", role, "--rpc", rpc.url, "--addresses", bookFile, "--port", "0", "--confirmations", "0"],
        ...["--poll-interval-ms", "25", "--data-dir", join(dir, "data"), "--log-level", "silent", ...flags],
      ],
      { EDGE_NODE_DEVICE_KEY: key(n), ...env },
    );
    const node = await EdgeNode.create(config);
    const url = await node.start();
    running.push(node);
    return url;
  }

  const json = async (url: string, init: RequestInit = {}) => {
    const response = await fetch(url, init);
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  const grpcOf = async (url: string) => `127.0.0.1:${(await json(`${url}/status`)).body.stargate.config.grpcPort}`;
  const call = (url: string, method: string, token?: string, body?: unknown) =>
    json(url, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const login = async (url: string, name: string) => {
    const r = await call(`${url}/api/login`, "POST", undefined, { name, password: PASSWORD });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return r.body.token as string;
  };
  const group = async (url: string) => (await json(`${url}/status`)).body.stargate.group as Record<string, any>;

  async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  }
  /** The gateway holds what stargate A holds, through `grpc`. */
  const gatewayCaughtUp = (grpc: string) => async () => {
    const [current, gw] = await Promise.all([json(`${net.a}/config/current`), json(`${net.gw}/status`)]);
    const config = gw.body.config;
    return config.stargate === grpc && config.connected && config.seq === current.body.seq;
  };

  it("a stargate that leaves its group withdraws its DNS from the route announcer and sends its subscribers to the next stargate, which keeps them on every delta; a delta written while their only upstream is out reaches them once it rejoins", async function () {
    const ops = await login(net.a, "ops");
    const deviceB = privateKeyToAccount(key(2)).address.toLowerCase();
    expect(await group(net.b)).to.deep.equal({ inGroup: true, subscribers: 1 });
    await waitFor("B announced to the route announcer", async () =>
      announcer.calls.some((c) => c.path === "/announce" && c.member === deviceB),
    );
    const announcedBefore = announcer.calls.length;
    const started = Date.now();
    const left = await call(`${net.b}/admin/leave`, "POST", ADMIN);
    expect(left.status, JSON.stringify(left.body)).to.equal(200);
    expect(left.body.inGroup).to.equal(false);
    await waitFor(
      "the gateway on stargate A",
      async () =>
        (await json(`${net.gw}/status`)).body.config.stargate === net.grpcA &&
        (await json(`${net.gw}/status`)).body.config.connected,
    );
    const movedMs = Date.now() - started;
    expect(await group(net.b)).to.deep.equal({ inGroup: false, subscribers: 0 });
    // Its DNS was withdrawn from the announcer (the anycast group) by the same call.
    expect(announcer.calls.slice(announcedBefore)).to.deep.equal([{ path: "/withdraw", member: deviceB }]);
    expect((await json(`${net.b}/status`)).body.stargate.dns.inGroup).to.equal(false);
    // A delta written now reaches the gateway through A.
    const blocked = await call(`${net.a}/api/blocklist`, "POST", ops, { ipRange: "198.51.100.0/24" });
    expect(blocked.status, JSON.stringify(blocked.body)).to.equal(200);
    await waitFor("the delta at the gateway through A", gatewayCaughtUp(net.grpcA));
    console.log(`      the gateway moved from B to A in ${movedMs} ms`);

    expect((await call(`${net.b}/admin/join`, "POST", ADMIN)).body).to.deep.equal({ inGroup: true, subscribers: 0 });
    expect(announcer.calls.at(-1)).to.deep.equal({ path: "/announce", member: deviceB });
    expect((await json(`${net.b}/status`)).body.stargate.dns.inGroup).to.equal(true);
    // A leaves: the gateway moves back to B, and B (whose only upstream is A) waits for A.
    const leftA = await call(`${net.a}/admin/leave`, "POST", ops);
    expect(leftA.status, JSON.stringify(leftA.body)).to.equal(200);
    await waitFor("the gateway back on B", async () => {
      const config = (await json(`${net.gw}/status`)).body.config;
      return config.stargate === net.grpcB && config.connected;
    });
    expect((await group(net.a)).subscribers).to.equal(0);
    const second = await call(`${net.a}/api/blocklist`, "POST", ops, { ipRange: "203.0.113.0/24" });
    expect(second.status, JSON.stringify(second.body)).to.equal(200);
    expect((await json(`${net.b}/status`)).body.stargate.config.upstream.connected).to.equal(false);
    expect((await call(`${net.a}/admin/join`, "POST", ops)).body.inGroup).to.equal(true);
    await waitFor("the second delta at the gateway through B once A rejoined", gatewayCaughtUp(net.grpcB), 30_000);
    const document = (await json(`${net.gw}/status`)).body.config;
    expect(document.seq).to.equal((await json(`${net.a}/config/current`)).body.seq);
  });

  it("/admin/leave and /admin/join take the admin token or a Network API token with node:drain; a gateway answers 404 EDGE_NODE_NO_GROUP", async function () {
    const reader = await login(net.a, "reader");
    const ops = await login(net.a, "ops");
    expect((await call(`${net.b}/admin/leave`, "POST")).body.code).to.equal("EDGE_NODE_UNAUTHORIZED");
    expect((await call(`${net.b}/admin/leave`, "POST", "wrong")).status).to.equal(401);
    expect((await call(`${net.b}/admin/leave`, "POST", reader)).body.code).to.equal("EDGE_NODE_SCOPE_MISSING");
    expect((await call(`${net.b}/admin/join`, "POST", reader)).body.code).to.equal("EDGE_NODE_SCOPE_MISSING");
    expect((await group(net.b)).inGroup).to.equal(true);
    // A has no admin token: only a node:drain token.
    expect((await call(`${net.a}/admin/leave`, "POST", "wrong")).body.code).to.equal("EDGE_NODE_ADMIN_DISABLED");
    const left = await call(`${net.b}/admin/leave`, "POST", ops);
    expect(left.status, JSON.stringify(left.body)).to.equal(200);
    expect((await call(`${net.b}/admin/leave`, "POST", ADMIN)).body.inGroup).to.equal(false);
    expect((await call(`${net.b}/admin/join`, "POST", ADMIN)).body.inGroup).to.equal(true);
    for (const path of ["leave", "join"]) {
      const r = await call(`${net.gw}/admin/${path}`, "POST", ADMIN);
      expect(r.status).to.equal(404);
      expect(r.body.code).to.equal("EDGE_NODE_NO_GROUP");
      expect(r.body.error).to.match(/only stargates/);
    }
    expect((await call(`${net.gw}/admin/leave`, "POST", reader)).body.code).to.equal("EDGE_NODE_SCOPE_MISSING");
  });

  it("POST/DELETE /api/nodes/:device/drain put an admitted gateway in and out of the configuration's draining list (forwarded from B to A), which reaches the gateway; unknown devices and missing scopes are refused", async function () {
    const ops = await login(net.a, "ops");
    const reader = await login(net.a, "reader");
    const gwDevice = privateKeyToAccount(key(3)).address;
    const drainUrl = (device: string) => `${net.b}/api/nodes/${device}/drain`;
    // The network's only gateway: 409 unless forced (R18-14).
    const last = await call(drainUrl(gwDevice), "POST", ops);
    expect([last.status, last.body.code]).to.deep.equal([409, "EDGE_NODE_LAST_GATEWAY"]);
    const drained = await call(`${drainUrl(gwDevice)}?force=true`, "POST", ops);
    expect(drained.status, JSON.stringify(drained.body)).to.equal(200);
    expect(drained.body.applied).to.have.property("seq");
    const draining = async () => (await json(`${net.a}/config/current`)).body.document.draining as string[] | undefined;
    expect(await draining()).to.deep.equal([gwDevice.toLowerCase()]);
    await waitFor("the drain at the gateway", gatewayCaughtUp((await json(`${net.gw}/status`)).body.config.stargate));
    // Twice is the same list; a stargate can be drained too.
    expect((await call(drainUrl(gwDevice.toLowerCase()), "POST", ops)).status).to.equal(200);
    const stargateB = privateKeyToAccount(key(2)).address;
    expect((await call(drainUrl(stargateB), "POST", ops)).status).to.equal(200);
    expect(await draining()).to.deep.equal([gwDevice.toLowerCase(), stargateB.toLowerCase()]);
    expect((await call(drainUrl(stargateB), "DELETE", ops)).status).to.equal(200);
    const undrained = await call(drainUrl(gwDevice), "DELETE", ops);
    expect(undrained.status, JSON.stringify(undrained.body)).to.equal(200);
    expect(await draining()).to.equal(undefined);

    const stranger = privateKeyToAccount(key(77)).address;
    const unknown = await call(drainUrl(stranger), "POST", ops);
    expect(unknown.status).to.equal(404);
    expect(unknown.body).to.include({ code: "EDGE_NODE_UNKNOWN_DEVICE" });
    expect(unknown.body.error).to.include(stranger);
    expect((await call(drainUrl("0x1234"), "POST", ops)).status).to.equal(400);
    expect((await call(drainUrl(gwDevice), "POST", reader)).body.code).to.equal("EDGE_NODE_SCOPE_MISSING");
    expect((await call(drainUrl(gwDevice), "POST")).status).to.equal(401);
  });

  it("rollout() rolls the real gateway (drained out of B's DNS answers for a site, quiet, ready and healthy, back in DNS) and stargate B (left, no subscribers, rejoined), in order", async function () {
    const ops = await login(net.a, "ops");
    const site = "www.rollout.test";
    const put = await call(`${net.a}/api/sites/web`, "PUT", ops, {
      hostname: site,
      origin: "http://127.0.0.1:9",
      owner: privateKeyToAccount(key(60)).address,
    });
    expect(put.status, JSON.stringify(put.body)).to.equal(200);
    const dnsB = `127.0.0.1:${(await json(`${net.b}/status`)).body.stargate.dns.port}`;
    const gwHost = new URL(net.gw).hostname;
    await waitFor("B's DNS answers the site with the gateway", async () =>
      (await resolveAddresses(dnsB, site, 1_000).catch((): string[] => [])).includes(gwHost),
    );
    const plan = parsePlan({
      api: net.a,
      stargates: [net.a, net.b],
      dns: [dnsB],
      site,
      nodes: [
        { name: "gw", role: "gateway", url: net.gw },
        { name: "sg-b", role: "stargate", url: net.b },
      ],
      quietMs: 300,
      // One gateway only: its drain leaves no serving gateway, which the API refuses without force (R18-14).
      forceDrain: true,
      minHosts: 0, // and no host: it is ready without one
      pollMs: 50,
      timeouts: { dns: 15_000, drain: 15_000, ready: 15_000 },
    });
    const events: ProgressEvent[] = [];
    const seen: string[] = [];
    const result = await rollout(plan, {
      token: ops,
      progress: (e) => events.push(e),
      update: async (node) => {
        // What the network looks like while the node is updated.
        const answers = await resolveAddresses(dnsB, site, 1_000);
        const current = (await json(`${net.a}/config/current`)).body.document;
        if (node.name === "gw") seen.push(`gw: dns [${answers.join(",")}], draining ${current.draining?.length ?? 0}`);
        else seen.push(`sg-b: ${JSON.stringify(await group(net.b))}`);
      },
    });
    expect(result.failure, JSON.stringify(result.failure)).to.equal(undefined);
    expect(seen).to.deep.equal(["gw: dns [], draining 1", 'sg-b: {"inGroup":false,"subscribers":0}']);
    expect((await json(`${net.a}/config/current`)).body.document.draining).to.equal(undefined);
    expect(await resolveAddresses(dnsB, site, 1_000)).to.include(gwHost);
    expect(await group(net.b)).to.include({ inGroup: true });
    expect(events.filter((e) => e.phase === "done").map((e) => `${e.node} ${e.step}`)).to.deep.equal([
      ...["drain", "dns-out", "traffic", "update", "ready", "undrain", "dns-in"].map((s) => `gw ${s}`),
      ...["leave", "quiet", "update", "ready", "join"].map((s) => `sg-b ${s}`),
    ]);
    console.log(`      rolled a gateway and a stargate in ${result.seconds.toFixed(1)} s`);
  });
});
