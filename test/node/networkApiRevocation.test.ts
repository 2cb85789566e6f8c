/**
 * The Network API across real daemons (D56, issue 17 "Done when": a revoked token stops working everywhere within
 * 5 s): a Hardhat chain over JSON-RPC with the protocol and ConfigRegistry, stargate A with the configuration key,
 * stargate B relaying A's configuration stream (gRPC) and forwarding writes to A, and a gateway subscribed to B.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre, { ethers, network } from "hardhat";
import { type Address, type Hex, type PublicClient, createWalletClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { hardhat } from "../../scripts/lib/hardhatChain";

import { deployProtocol } from "../../scripts/deploy/deployProtocol";
import { anchorVersion } from "../../offchain/common/configAnchor";
import { documentHash, emptyConfig, encodeDocument, issueToken } from "../../offchain/common/protocol";
import { loadConfig } from "../../node/config";
import { EdgeNode } from "../../node/daemon";
import { hashPassword } from "../../node/roles/stargate/passwords";
import { StakeType } from "../shared/constants";
import { bookContracts, signConsent } from "../shared/fixtures";
import { type RpcServer, publicClient, startRpcServer } from "../shared/rpc";

const ONE = ethers.parseEther("1");
const key = (n: number) => ethers.zeroPadValue(ethers.toBeHex(0xa9100000 + n), 32) as Hex;
const CONFIG_KEY = key(50);
const PASSWORD = "revocation test password";

describe("Network API across daemons (revocation)", function () {
  this.timeout(120_000);
  let rpc: RpcServer;
  let dir: string;
  let bookFile: string;
  let version1: Buffer;
  const running: EdgeNode[] = [];
  /** Stargate A (with the configuration key) and the gateway, once the first test started them. */
  const urls: { a?: string; gw?: string } = {};

  before(async function () {
    rpc = await startRpcServer();
    dir = mkdtempSync(join(tmpdir(), "network-api-daemons-"));
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
      { name: "ops", passwordHash: await hashPassword(PASSWORD, cost), scopes: ["tokens:revoke", "blocklist:write"] },
      { name: "reader", passwordHash: await hashPassword(PASSWORD, cost), scopes: [] },
    ];
    writeFileSync(join(dir, "users.json"), JSON.stringify({ users }));
    // Version 1, anchored as config:publish does (the upload follows once stargate A listens).
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
        ...["--poll-interval-ms", "25", "--data-dir", join(dir, "data"), "--log-level", "silent", ...flags],
      ],
      { EDGE_NODE_DEVICE_KEY: key(n), ...env },
    );
    const node = await EdgeNode.create(config);
    const url = await node.start();
    running.push(node);
    return { node, url };
  }

  const json = async (url: string, init: RequestInit = {}) => {
    const response = await fetch(url, init);
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  const bearer = (token: string, body?: unknown): RequestInit => ({
    method: body === undefined ? "GET" : "POST",
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const drain = (url: string, token: string) => json(`${url}/admin/drain`, { ...bearer(token), method: "POST" });

  async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000) {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it("a token revoked at stargate A stops working at stargate B and at a gateway within 5 s; B forwards its writes to A; a wallet writes only its own site; the blocklist takes blocklist:write", async function () {
    const users = join(dir, "users.json");
    const a = await startNode("stargate", 1, ["--grpc-port", "0", "--users", users], {
      EDGE_NODE_CONFIG_KEY: CONFIG_KEY,
    });
    const upload = await fetch(`${a.url}/config/versions`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: version1,
    });
    expect(upload.status, await upload.text()).to.equal(200);
    const grpcOf = async (url: string) => `127.0.0.1:${(await json(`${url}/status`)).body.stargate.config.grpcPort}`;
    const b = await startNode("stargate", 2, [
      "--grpc-port",
      "0",
      "--users",
      users,
      "--stargates",
      await grpcOf(a.url),
      "--peers",
      a.url,
    ]);
    const gw = await startNode("gateway", 3, ["--stargates", await grpcOf(b.url), "--cdn-port", "0"]);
    Object.assign(urls, { a: a.url, gw: gw.url });
    await waitFor("all three serving and the gateway on version 1", async () => {
      const states = await Promise.all([a.url, b.url, gw.url].map(async (u) => (await json(`${u}/status`)).body));
      return states.every((s) => s.serving) && states[2].config?.version === 1;
    });

    const login = async (url: string, name: string) => {
      const r = await json(`${url}/api/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name, password: PASSWORD }),
      });
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      return r.body.token as string;
    };
    // A token of A works at B and at the gateway (403 there: it has no node:drain, so nothing is drained).
    const token = await login(a.url, "reader");
    expect((await json(`${b.url}/api/whoami`, bearer(token))).status).to.equal(200);
    expect((await drain(gw.url, token)).body.code).to.equal("EDGE_NODE_SCOPE_MISSING");

    const id = (await json(`${a.url}/api/whoami`, bearer(token))).body.id as string;
    const start = Date.now();
    const revoke = await json(`${a.url}/api/tokens/revoke`, bearer(token, { id }));
    expect(revoke.status, JSON.stringify(revoke.body)).to.equal(200);
    await waitFor(
      "revoked at B",
      async () => (await json(`${b.url}/api/whoami`, bearer(token))).body.code === "EDGE_NODE_TOKEN_REVOKED",
      5_000,
    );
    await waitFor(
      "revoked at the gateway",
      async () => (await drain(gw.url, token)).body.code === "EDGE_NODE_TOKEN_REVOKED",
      5_000,
    );
    const elapsed = Date.now() - start;
    expect(elapsed).to.be.lessThan(5_000);
    expect((await json(`${a.url}/api/whoami`, bearer(token))).body.code).to.equal("EDGE_NODE_TOKEN_REVOKED");

    // B has no configuration key: B forwards the logins to A (the tokens are signed by the configuration key, R17-1),
    // and an ops token revokes another token through B, forwarded to A.
    const other = await login(b.url, "reader");
    const otherId = (await json(`${b.url}/api/whoami`, bearer(other))).body.id as string;
    const ops = await login(b.url, "ops");
    const configSigner = privateKeyToAccount(CONFIG_KEY).address;
    expect((await json(`${b.url}/api/whoami`, bearer(ops))).body.issuer).to.equal(configSigner);
    const forwarded = await json(`${b.url}/api/tokens/revoke`, bearer(ops, { id: otherId }));
    expect(forwarded.status, JSON.stringify(forwarded.body)).to.equal(200);
    expect(forwarded.body.applied).to.have.property("seq", 2);
    await waitFor(
      "forwarded revocation at the gateway",
      async () => (await drain(gw.url, other)).body.code === "EDGE_NODE_TOKEN_REVOKED",
      5_000,
    );
    // Without tokens:revoke, another's token cannot be revoked.
    const refused = await json(
      `${b.url}/api/tokens/revoke`,
      bearer(await login(b.url, "reader"), { id: (await json(`${b.url}/api/whoami`, bearer(ops))).body.id }),
    );
    expect(refused.body).to.include({ code: "EDGE_NODE_SCOPE_MISSING", scope: "tokens:revoke" });
    console.log(`      revocation reached stargate B and the gateway in ${elapsed} ms`);

    // A customer signs in with its wallet at B and writes its own site (forwarded to A); another cannot take it.
    const walletLogin = async (who: ReturnType<typeof privateKeyToAccount>) => {
      const nonce = await json(`${b.url}/api/nonce?address=${who.address}`);
      const message = nonce.body.message as string;
      const signature = await who.signMessage({ message });
      const r = await json(`${b.url}/api/login/wallet`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ message, signature }),
      });
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      return r.body.token as string;
    };
    const alice = privateKeyToAccount(key(60));
    const mallory = privateKeyToAccount(key(61));
    const site = { hostname: "alice.example", origin: "http://127.0.0.1:9" };
    const put = (token: string, body: unknown) =>
      json(`${b.url}/api/sites/alice`, { ...bearer(token, body), method: "PUT" });
    const aliceToken = await walletLogin(alice);
    const written = await put(aliceToken, site);
    expect(written.status, JSON.stringify(written.body)).to.equal(200);
    await waitFor(
      "the site at B",
      async () => (await json(`${b.url}/api/sites`, bearer(aliceToken))).body.sites.length === 1,
    );
    const listed = (await json(`${b.url}/api/sites`, bearer(aliceToken))).body.sites;
    expect(listed[0]).to.include({ id: "alice", owner: alice.address });
    const malloryToken = await walletLogin(mallory);
    expect((await put(malloryToken, { ...site, origin: "http://127.0.0.1:10" })).body.code).to.equal(
      "EDGE_NODE_SITE_NOT_OWNED",
    );
    expect((await json(`${b.url}/api/sites`, bearer(malloryToken))).body.sites).to.deep.equal([]);
    expect(
      (await json(`${b.url}/api/blocklist`, bearer(malloryToken, { ipRange: "198.51.100.0/24" }))).body.code,
    ).to.equal("EDGE_NODE_SCOPE_MISSING");
    const blocked = await json(`${a.url}/api/blocklist`, bearer(ops, { ipRange: "198.51.100.0/24" }));
    expect(blocked.status, JSON.stringify(blocked.body)).to.equal(200);
    await waitFor("the blocklist entry at the gateway", async () => {
      const current = await json(`${b.url}/config/current`);
      return (
        current.body.document?.blocklist.ipRanges.includes("198.51.100.0/24") &&
        (await json(`${gw.url}/status`)).body.config.seq === current.body.seq
      );
    });
  });

  it("R17-1: a token with config:publish/node:drain signed by an admitted stargate's device key (no DELTA_SIGNER_ROLE) is refused at a stargate and at a gateway's /admin/drain", async function () {
    if (!urls.a || !urls.gw) this.skip();
    // Stargate B's device key (admitted, staked) mints every privileged scope for itself.
    const minted = await issueToken(privateKeyToAccount(key(2)), 31337, {
      id: `0x${"ab".repeat(32)}`,
      subject: "mallory",
      scopes: ["config:publish", "blocklist:write", "tokens:revoke", "node:drain"],
      expiresAt: Math.floor(Date.now() / 1000) + 600,
    });
    const atStargate = await json(`${urls.a}/api/blocklist`, bearer(minted, { ipRange: "0.0.0.0/0" }));
    expect(atStargate.status, JSON.stringify(atStargate.body)).to.equal(401);
    expect(atStargate.body.error).to.match(/DELTA_SIGNER_ROLE/);
    const atGateway = await drain(urls.gw, minted);
    expect(atGateway.status, JSON.stringify(atGateway.body)).to.equal(401);
    expect(atGateway.body.code).to.equal("EDGE_NODE_TOKEN_INVALID");
    expect((await json(`${urls.gw}/status`)).body.serving).to.equal(true);
  });
});
