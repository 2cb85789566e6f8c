/**
 * The configuration stream end to end (D53): a real Hardhat chain over JSON-RPC with ConfigRegistry, the
 * stargate's configuration plane (store, gRPC server, authority anchoring on-chain, /config routes) and nodes'
 * subscribers over real gRPC; a hostile stargate (a gRPC server the test scripts) for what an honest one never
 * sends; raw gRPC clients for the abuse cases.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ethers, network } from "hardhat";
import { Registry } from "prom-client";
import { type Address, type Hex, type LocalAccount, type PublicClient, createWalletClient, http } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { hardhat } from "../../scripts/lib/hardhatChain";

import { ConfigAnchor, anchorVersion } from "../../offchain/common/configAnchor";
import { createTypedApp, errorHandler } from "../../offchain/common/http";
import {
  type NetworkConfig,
  documentHash,
  emptyConfig,
  encodeDocument,
  signDelta,
  signHello,
} from "../../offchain/common/protocol";
import { type ConfigChange, ConfigSubscriber } from "../../node/configSubscriber";
import {
  CLIENT_OPTIONS,
  type NodeMessage,
  SERVER_OPTIONS,
  type StargateMessage,
  type SubscribeCall,
  type SubscribeClientCall,
  configStream,
} from "../../node/configWire";
import type { AppliedConfig, Catalogue, StargateContext } from "../../node/context";
import { type ConfigPlane, createConfigPlane } from "../../node/roles/stargate/configPlane";
import type { ConfigServerOptions } from "../../node/roles/stargate/configServer";
import { CHAIN, silentLog, waitUntil } from "../shared/gatewayHarness";
import { type RpcServer, publicClient, startRpcServer } from "../shared/rpc";

type ServerLimits = Omit<ConfigServerOptions, "host" | "port">;
const nodeKey = (n: number) => privateKeyToAccount(`0x${(0x60 + n).toString(16).repeat(32)}` as Hex);

describe("node/configStream", function () {
  this.timeout(60_000);
  let rpc: RpcServer;
  let client: PublicClient;
  let registry: Address;
  let dir: string;
  const configKey = generatePrivateKey();
  const publisher = privateKeyToAccount(configKey);
  const stargateAccount = privateKeyToAccount(generatePrivateKey());
  const admitted = new Set<string>();
  const admittedStargates = new Set<string>();
  const planes: ConfigPlane[] = [];
  const subscribers: ConfigSubscriber[] = [];
  let plane: ConfigPlane;
  let app: ReturnType<typeof createTypedApp>;
  let target: string;

  const mainRegistry = new Registry();

  function stargateCtx(account: LocalAccount, metricsRegistry: Registry): StargateContext {
    admitted.add(account.address.toLowerCase());
    admittedStargates.add(account.address.toLowerCase());
    return {
      signer: { account, chainId: CHAIN },
      log: silentLog,
      metrics: { registry: metricsRegistry },
      chainAdmits: (device: string) => admitted.has(device.toLowerCase()),
      contracts: client,
      configRegistry: registry,
      rpc: rpc.url,
    } as unknown as StargateContext;
  }

  async function startPlane(
    options: { configKey?: Hex; stargates?: string[]; maxSubscribers?: number; limits?: ServerLimits } = {},
  ) {
    const p = createConfigPlane(
      options.configKey
        ? stargateCtx(stargateAccount, mainRegistry)
        : stargateCtx(privateKeyToAccount(generatePrivateKey()), new Registry()),
      {
        dataDir: mkdtempSync(join(dir, "stargate-")),
        listenHost: "127.0.0.1",
        grpcPort: 0,
        configKey: options.configKey,
        anchorIntervalMs: 60_000,
        stargates: options.stargates ?? [],
        publicUrl: "http://127.0.0.1:1",
      },
      { maxSubscribers: options.maxSubscribers, helloTimeoutMs: 2_000, ...options.limits },
    );
    await p.start();
    planes.push(p);
    return p;
  }

  /** A node's subscriber that records what it applied; `refuse` makes its role throw for a configuration. */
  function subscribe(
    account: LocalAccount,
    options: {
      stargates?: string[];
      file?: string;
      refuse?: (c: AppliedConfig) => string | undefined;
      catalogues?: Catalogue[];
      maxBehindMs?: number;
    } = {},
  ) {
    const changes: ConfigChange[] = [];
    const applied: AppliedConfig[] = [];
    const sub = new ConfigSubscriber(
      { signer: { account, chainId: CHAIN }, log: silentLog },
      {
        role: "gateway",
        url: () => "http://127.0.0.1:9",
        stargates: options.stargates ?? [target],
        anchor: new ConfigAnchor({ client, address: registry }),
        isStargate: (address) => admittedStargates.has(address.toLowerCase()),
        applyCatalogue: (catalogue) => options.catalogues?.push(catalogue),
        apply(config, change) {
          const reason = options.refuse?.(config);
          if (reason) throw new Error(reason);
          changes.push(change);
          applied.push(config);
        },
        file: options.file,
        minBackoffMs: 20,
        maxBackoffMs: 200,
        maxBehindMs: options.maxBehindMs,
      },
    );
    subscribers.push(sub);
    return { sub, changes, applied };
  }

  const viewOf = async (a = app) => (await a.inject({ method: "GET", url: "/config/view" })).json();
  const subscriberView = async (device: Address) =>
    (await viewOf()).subscribers.find((s: { device: string }) => s.device === device);

  /** Anchors `doc` as config:publish does and uploads it to the stargate. */
  async function publish(doc: NetworkConfig, upload = true) {
    const bytes = encodeDocument(doc);
    const wallet = createWalletClient({ account: publisher, chain: hardhat, transport: http(rpc.url) });
    await anchorVersion(wallet, client, registry, doc.version, documentHash(bytes));
    if (!upload) return bytes;
    const reply = await app.inject({
      method: "POST",
      url: "/config/versions",
      payload: bytes,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(reply.statusCode, reply.body).to.equal(200);
    return bytes;
  }

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "config-stream-"));
    rpc = await startRpcServer();
    client = publicClient(rpc.url) as PublicClient;
    const [admin] = await ethers.getSigners();
    const contract = await ethers.deployContract("ConfigRegistry", [admin.address, 0n, publisher.address]);
    registry = (await contract.getAddress()) as Address;
    await network.provider.send("hardhat_setBalance", [publisher.address, "0xde0b6b3a7640000"]);
    plane = await startPlane({ configKey });
    target = `127.0.0.1:${plane.server.boundPort}`;
    app = createTypedApp({ logger: false });
    app.setErrorHandler(errorHandler({ codePrefix: "EDGE_NODE" }));
    plane.register(app);
    await app.ready();
    for (let n = 1; n <= 9; n++) admitted.add(nodeKey(n).address.toLowerCase());
    admitted.add(stargateAccount.address.toLowerCase());
    admittedStargates.add(stargateAccount.address.toLowerCase());
  });

  after(async function () {
    for (const s of subscribers) await s.stop();
    for (const p of planes) await p.stop();
    await app.close();
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a node gets the anchored snapshot and its ACK shows in the stargate's view", async function () {
    await publish({ ...emptyConfig(1), prices: { "cdn.requests": "1000" } });
    const node = nodeKey(1);
    const { sub, applied } = subscribe(node);
    await sub.start();
    await waitUntil("snapshot applied", () => applied.length === 1);
    expect(applied[0]).to.include({ version: 1, seq: 0 });
    expect(applied[0].document.prices).to.deep.equal({ "cdn.requests": "1000" });
    await waitUntil("ack seen", async () => (await subscriberView(node.address))?.lastAckAt !== null);
    const view = await viewOf();
    expect(view).to.include({ version: 1, seq: 0 });
    expect(await subscriberView(node.address)).to.include({ version: 1, seq: 0, connected: true, role: "gateway" });
    expect(sub.status()).to.include({ version: 1, seq: 0, connected: true });
    const metrics = await mainRegistry.metrics();
    expect(metrics).to.match(/edge_config_subscribers\{version="1"\} 1/);
  });

  it("a delta reaches the node at once and is ACKed; the next anchoring folds it into version 2", async function () {
    const { sub, applied } = subscribe(nodeKey(2));
    await sub.start();
    await waitUntil("snapshot", () => applied.length === 1);
    expect(await plane.authority!.append({ kind: "blocklist.add", ipRange: "203.0.113.0/24" })).to.deep.equal({
      base: 1,
      seq: 1,
    });
    await waitUntil("delta applied", () => applied.length === 2);
    expect(applied[1]).to.include({ version: 1, seq: 1 });
    expect(applied[1].document.blocklist.ipRanges).to.deep.equal(["203.0.113.0/24"]);
    await waitUntil("delta acked", async () => (await subscriberView(nodeKey(2).address))?.seq === 1);
    await plane.authority!.fold();
    await waitUntil("version 2 applied", () => applied.length === 3);
    expect(applied[2]).to.include({ version: 2, seq: 0 });
    expect(applied[2].document.blocklist.ipRanges).to.deep.equal(["203.0.113.0/24"]);
    expect(await new ConfigAnchor({ client, address: registry }).latest()).to.include({ version: 2 });
    const current = (await app.inject({ method: "GET", url: "/config/current" })).json();
    expect(current).to.include({ version: 2, seq: 0, hash: applied[2].hash });
  });

  it("a restarted node resumes from its saved configuration and gets only what it lacks", async function () {
    const file = join(dir, "node3", "config.json");
    const first = subscribe(nodeKey(3), { file });
    await first.sub.start();
    await waitUntil("snapshot", () => first.applied.length === 1);
    await first.sub.stop();
    await plane.authority!.append({ kind: "blocklist.add", ipRange: "198.51.100.7" });
    await plane.authority!.append({ kind: "blocklist.add", path: { hostname: "*", prefix: "/admin" } });
    const again = subscribe(nodeKey(3), { file });
    await again.sub.start();
    await waitUntil("deltas applied", () => again.applied.length === 3);
    // The restored snapshot (verified against the chain again), then the two deltas: no snapshot over the stream.
    expect(again.changes.map((c) => c.kind)).to.deep.equal(["snapshot", "delta", "delta"]);
    expect(again.applied[2]).to.include({ version: 2, seq: 2 });
    await waitUntil("acked", async () => (await subscriberView(nodeKey(3).address))?.seq === 2);
  });

  it("a NACKed version leaves the node on its last good one, and the stargate's view shows the NACK and its reason", async function () {
    const node = nodeKey(4);
    const { sub, applied } = subscribe(node, {
      refuse: (c) => (c.document.sites.length > 0 ? "sites[0]: the origin is not a URL" : undefined),
    });
    await sub.start();
    await waitUntil("current applied", () => sub.status().seq === plane.store.seq() && applied.length > 0);
    const before = sub.current();
    // The authority only signs sites gateways take (R17-2): this node's role refuses any.
    const site = { id: "bad", hostname: "bad.example", owner: publisher.address, origin: "http://127.0.0.1:1" };
    await plane.authority!.append({ kind: "site.put", site });
    await waitUntil("nack seen", async () => (await subscriberView(node.address))?.lastNack !== undefined);
    const seen = await subscriberView(node.address);
    expect(seen.lastNack).to.include({ version: 2, seq: 3, reason: "sites[0]: the origin is not a URL" });
    expect(seen).to.include({ version: 2, seq: 2 });
    expect(sub.current()).to.deep.equal(before);
    // The next change on top of the refused one is refused too; removing the bad site is accepted.
    await plane.authority!.append({ kind: "site.remove", id: "bad", owner: publisher.address });
    await waitUntil("fixed", () => applied.at(-1)?.seq === 4);
    expect(applied.at(-1)!.document.sites).to.deep.equal([]);
  });

  it("a forged version (hash not anchored) is refused by the node and by the stargate's upload", async function () {
    const forged = encodeDocument({ ...emptyConfig(9), prices: { "cdn.requests": "1" } });
    const reply = await app.inject({
      method: "POST",
      url: "/config/versions?version=9",
      payload: forged,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(reply.statusCode).to.equal(409);
    expect(reply.json().code).to.equal("EDGE_NODE_CONFIG_NOT_ANCHORED");
    const hostile = await startHostile([{ body: "snapshot", snapshot: { version: 9, document: forged } }]);
    const { sub, applied } = subscribe(nodeKey(5), { stargates: [hostile.target] });
    await sub.start();
    await waitUntil("nack", () => hostile.nacks.length > 0);
    expect(hostile.nacks[0].reason).to.match(/is not the anchored \(none\)/);
    expect(applied).to.have.length(0);
    await sub.stop();
    // A node whose list names the forger first fails over to the honest stargate and takes its version.
    const next = subscribe(nodeKey(5), { stargates: [hostile.target, target] });
    await next.sub.start();
    await waitUntil("failed over", () => next.sub.status().stargate === target && next.applied.length > 0);
    expect(next.applied[0]).to.include({ version: 2 });
    await next.sub.stop();
    await hostile.close();
  });

  it("a stale version (older than held) is refused by the node and by the stargate's upload", async function () {
    const v1 = encodeDocument({ ...emptyConfig(1), prices: { "cdn.requests": "1000" } });
    const reply = await app.inject({
      method: "POST",
      url: "/config/versions",
      payload: v1,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(reply.statusCode).to.equal(409);
    expect(reply.json().code).to.equal("EDGE_NODE_CONFIG_STALE");
    const file = join(dir, "node6", "config.json");
    const honest = subscribe(nodeKey(6), { file });
    await honest.sub.start();
    await waitUntil("current", () => honest.sub.status().seq === plane.store.seq() && honest.applied.length > 0);
    await honest.sub.stop();
    const hostile = await startHostile([{ body: "snapshot", snapshot: { version: 1, document: v1 } }]);
    const { sub, applied } = subscribe(nodeKey(6), { stargates: [hostile.target], file });
    await sub.start();
    await waitUntil("nack", () => hostile.nacks.length > 0);
    expect(hostile.hellos[0]).to.include({ version: 2 });
    expect(hostile.nacks[0].reason).to.equal("version 1 is not newer than the held 2");
    expect(applied.map((c) => c.version)).to.deep.equal([2]); // only the restored one
    await sub.stop();
    await hostile.close();
  });

  it("R17-8: a stargate that withholds the chain's latest version is left for the next one", async function () {
    const v1 = encodeDocument({ ...emptyConfig(1), prices: { "cdn.requests": "1000" } });
    const hostile = await startHostile([{ body: "snapshot", snapshot: { version: 1, document: v1 } }]);
    const { sub, applied } = subscribe(nodeKey(5), { stargates: [hostile.target, target], maxBehindMs: 300 });
    await sub.start();
    await waitUntil("left the withholding stargate", () => sub.status().stargate === target && applied.length > 1);
    expect(applied[0]).to.include({ version: 1 }); // anchored, so taken: withholding is the fault, not forging
    expect(applied.at(-1)!.version).to.equal(plane.store.latest()!.version);
    expect(hostile.nacks).to.have.length(0);
    await sub.stop();
    await hostile.close();
  });

  it("a delta signed by a key without DELTA_SIGNER_ROLE is refused", async function () {
    const current = plane.store.latest()!;
    const seq = plane.store.seq();
    const outsider = privateKeyToAccount(generatePrivateKey());
    const signed = await signDelta(outsider, CHAIN, {
      base: current.version,
      seq: seq + 1,
      issuedAt: Date.now(),
      op: { kind: "blocklist.add", ipRange: "192.0.2.1" },
    });
    const deltas = plane.store.currentDeltas().map((d) => ({
      body: "delta" as const,
      delta: { base: d.base, seq: d.seq, body: d.body, signature: d.signature },
    }));
    const hostile = await startHostile([
      { body: "snapshot", snapshot: { version: current.version, document: current.bytes } },
      ...deltas,
      { body: "delta", delta: { base: current.version, seq: seq + 1, body: signed.body, signature: signed.signature } },
    ]);
    const { sub, applied } = subscribe(nodeKey(7), { stargates: [hostile.target] });
    await sub.start();
    await waitUntil("nack", () => hostile.nacks.length > 0);
    expect(hostile.nacks[0].reason).to.equal(
      `the delta is signed by ${outsider.address}, who holds no DELTA_SIGNER_ROLE`,
    );
    expect(applied.at(-1)).to.include({ version: current.version, seq });
    expect(applied.at(-1)!.document.blocklist.ipRanges).to.not.include("192.0.2.1");
    await sub.stop();
    await hostile.close();
  });

  it("a delta that skips a seq is not applied: the node resumes from the same stargate with what it holds", async function () {
    const current = plane.store.latest()!;
    const [first, second] = plane.store.currentDeltas();
    const wire = (d: typeof first) => ({
      body: "delta" as const,
      delta: { base: d.base, seq: d.seq, body: d.body, signature: d.signature },
    });
    const hostile = await startHostile([
      { body: "snapshot", snapshot: { version: current.version, document: current.bytes } },
      wire(second),
      wire(first),
    ]);
    const { sub, applied } = subscribe(nodeKey(9), { stargates: [hostile.target] });
    await sub.start();
    await waitUntil("two hellos", () => hostile.hellos.length >= 2, 10_000);
    expect(hostile.hellos[1]).to.include({ version: current.version, seq: 0 });
    // The gap itself is not refused (no Nack): only this script's replayed snapshot is, on the next stream.
    expect(
      hostile.nacks.every(
        (n) => n.reason === `version ${current.version} is not newer than the held ${current.version}`,
      ),
    ).to.equal(true);
    expect(applied.map((c) => c.seq)).to.deep.equal([0]);
    await sub.stop();
    await hostile.close();
  });

  it("a stargate with --stargates relays what it verified to its own subscribers", async function () {
    const relay = await startPlane({ stargates: [target] });
    await waitUntil(
      "relay caught up",
      () => relay.store.latest()?.version === 2 && relay.store.seq() === plane.store.seq(),
    );
    const { sub, applied } = subscribe(nodeKey(8), { stargates: [`127.0.0.1:${relay.server.boundPort}`] });
    await sub.start();
    await waitUntil("from the relay", () => applied.at(-1)?.seq === plane.store.seq() && applied.at(-1)?.version === 2);
    await plane.authority!.append({ kind: "blocklist.add", ipRange: "192.0.2.0/28" });
    await waitUntil(
      "relayed delta",
      () => applied.at(-1)?.document.blocklist.ipRanges.includes("192.0.2.0/28") === true,
    );
  });

  describe("abuse of the stream", function () {
    it("a hello with a bad signature, another node's identity, or replayed from an earlier challenge is PERMISSION_DENIED", async function () {
      const node = nodeKey(9);
      const bad = await rawHello(target, async (hello) => ({ ...hello, signature: `0x${"11".repeat(65)}` }), node);
      expect(bad).to.include({ code: grpc.status.PERMISSION_DENIED });
      expect(bad.details).to.match(/not signed by/);
      const other = await rawHello(target, async (hello) => ({ ...hello, node: nodeKey(1).address }), node);
      expect(other).to.include({ code: grpc.status.PERMISSION_DENIED });
      let earlier: Record<string, unknown> | undefined;
      await rawHello(target, async (hello) => (earlier = hello), node, plane);
      const replayed = await rawHello(target, async () => earlier!, node);
      expect(replayed).to.include({ code: grpc.status.PERMISSION_DENIED });
      expect(replayed.details).to.match(/over this stream's challenge/);
    });

    it("R17-10: a challenger the chain does not admit as a stargate gets no hello; a catalogue is taken only after a stargate's challenge", async function () {
      const catalogue: StargateMessage = {
        body: "catalogue",
        catalogue: { atMs: 1, endpoints: [{ device: nodeKey(3).address, role: "host", url: "http://evil", healthy: true, version: 0, country: "", region: "" }] }, // prettier-ignore
      };
      // A gateway (admitted, but not as a stargate) relaying a real stargate's stream would need the node's hello.
      const relayer = await startHostile([catalogue], { challenger: nodeKey(2).address });
      const catalogues: Catalogue[] = [];
      const first = subscribe(nodeKey(4), { stargates: [relayer.target], catalogues });
      await first.sub.start();
      await waitUntil("refused", () =>
        /is not an admitted stargate: no hello/.test(first.sub.status().lastError ?? ""),
      );
      expect(relayer.hellos).to.have.length(0);
      await first.sub.stop();
      // A catalogue sent before the challenge is not applied; after an admitted stargate's challenge it is.
      const early = await startHostile([], { first: [catalogue] });
      const second = subscribe(nodeKey(4), { stargates: [early.target], catalogues });
      await second.sub.start();
      await waitUntil("refused", () => /a catalogue before/.test(second.sub.status().lastError ?? ""));
      await second.sub.stop();
      expect(catalogues).to.have.length(0);
      const honest = await startHostile([catalogue]);
      const third = subscribe(nodeKey(4), { stargates: [honest.target], catalogues });
      await third.sub.start();
      await waitUntil("catalogue", () => catalogues.length > 0);
      expect(catalogues[0].endpoints[0]).to.include({ url: "http://evil" });
      await third.sub.stop();
      for (const h of [relayer, early, honest]) await h.close();
    });

    it("a node the chain does not admit is PERMISSION_DENIED before any signature check", async function () {
      const stranger = privateKeyToAccount(generatePrivateKey());
      const refused = await rawHello(target, async (hello) => hello, stranger);
      expect(refused).to.include({ code: grpc.status.PERMISSION_DENIED });
      expect(refused.details).to.equal(`${stranger.address} is not admitted as a gateway`);
    });

    it("an oversized message is refused by gRPC; a bad role or no hello in time ends the call", async function () {
      const big = await rawHello(
        target,
        async (hello) => ({ ...hello, url: `http://x/${"a".repeat(20_000)}` }),
        nodeKey(9),
      );
      expect(big).to.include({ code: grpc.status.RESOURCE_EXHAUSTED });
      const role = await rawHello(target, async (hello) => ({ ...hello, role: "oracle" }), nodeKey(9));
      expect(role).to.include({ code: grpc.status.INVALID_ARGUMENT });
      const silent = await rawHello(target, async () => undefined, nodeKey(9));
      expect(silent).to.include({ code: grpc.status.DEADLINE_EXCEEDED });
    });

    it("more subscribers than allowed are RESOURCE_EXHAUSTED; a device's new stream replaces its old one", async function () {
      const small = await startPlane({ maxSubscribers: 2 });
      const smallTarget = `127.0.0.1:${small.server.boundPort}`;
      const first = await rawHello(smallTarget, async (h) => h, nodeKey(1), small);
      await rawHello(smallTarget, async (h) => h, nodeKey(2), small);
      const third = await rawHello(smallTarget, async (h) => h, nodeKey(3));
      expect(third).to.include({ code: grpc.status.RESOURCE_EXHAUSTED });
      const replaced = first.ended!;
      await rawHello(smallTarget, async (h) => h, nodeKey(1), small);
      expect(await replaced).to.include({ code: grpc.status.ALREADY_EXISTS });
      expect(small.server.subscribers().filter((s) => s.connected)).to.have.length(2);
    });

    it("R17-6: one client address has at most maxPendingPerClient handshakes, a connection at most maxStreamsPerConnection streams, and failed hellos are rate-limited before any signature check", async function () {
      const limits = { maxPendingPerClient: 2, maxStreamsPerConnection: 2, failedHellosBurst: 2, failedHellosPerSecond: 0.5 }; // prettier-ignore
      const small = await startPlane({ limits });
      const smallTarget = `127.0.0.1:${small.server.boundPort}`;
      let challenged = 0;
      const silent = [1, 2].map(() => rawHello(smallTarget, async () => void (challenged += 1), nodeKey(9)));
      await waitUntil("both challenged", () => challenged === 2);
      const third = await rawHello(smallTarget, async (h) => h, nodeKey(9));
      expect(third).to.include({ code: grpc.status.RESOURCE_EXHAUSTED });
      expect(third.details).to.match(/too many handshakes in progress from 127\.0\.0\.1/);
      for (const ended of await Promise.all(silent)) expect(ended).to.include({ code: grpc.status.DEADLINE_EXCEEDED });
      // One connection: the third stream waits for a free one (it is neither challenged nor refused).
      const { Client } = configStream();
      const raw = new Client(smallTarget, grpc.credentials.createInsecure(), CLIENT_OPTIONS);
      const calls = [0, 1, 2].map(() => {
        const seen = { call: raw.Subscribe() as SubscribeClientCall, challenge: false, status: false };
        seen.call.on("error", () => undefined);
        seen.call.on("status", () => (seen.status = true));
        seen.call.on("data", (m: StargateMessage) => (seen.challenge ||= m.body === "challenge"));
        return seen;
      });
      await waitUntil("two challenged", () => calls.filter((c) => c.challenge).length === 2);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(calls.map((c) => c.challenge || c.status).filter(Boolean)).to.have.length(2);
      calls.find((c) => c.challenge)!.call.cancel();
      await waitUntil("third challenged", () => calls.every((c) => c.challenge));
      for (const c of calls) c.call.cancel();
      raw.close();
      // Two failed hellos from this address: the next, a valid one, is refused before its signature is checked.
      for (let i = 0; i < 2; i++) {
        const bad = await rawHello(smallTarget, async (h) => ({ ...h, signature: `0x${"11".repeat(65)}` }), nodeKey(9));
        expect(bad).to.include({ code: grpc.status.PERMISSION_DENIED });
      }
      const limited = await rawHello(smallTarget, async (h) => h, nodeKey(9));
      expect(limited).to.include({ code: grpc.status.RESOURCE_EXHAUSTED });
      expect(limited.details).to.equal("too many failed hellos from 127.0.0.1: retry later");
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      await rawHello(smallTarget, async (h) => h, nodeKey(9), small);
    });
  });

  /**
   * Opens a raw stream as `account`, lets `edit` change the signed hello (undefined: send none) and returns the
   * call's status; with `keep`, returns as soon as the stargate took the hello (`ended`: the status later).
   */
  async function rawHello(
    to: string,
    edit: (hello: Record<string, unknown>) => Promise<Record<string, unknown> | undefined>,
    account: LocalAccount,
    keep?: ConfigPlane,
  ): Promise<{ code?: grpc.status; details?: string; ended?: Promise<grpc.StatusObject> }> {
    const { Client } = configStream();
    // No send limit of its own: the stargate's receive limit is what is tested.
    const raw = new Client(to, grpc.credentials.createInsecure(), {
      ...CLIENT_OPTIONS,
      "grpc.max_send_message_length": -1,
    });
    const call: SubscribeClientCall = raw.Subscribe();
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("error", () => undefined);
    call.on("data", async (message: StargateMessage) => {
      if (message.body !== "challenge") return;
      const challenge = {
        stargate: message.challenge.stargate as Address,
        nonce: `0x${message.challenge.nonce.toString("hex")}` as Hex,
      };
      const hello = { role: "gateway", url: "http://127.0.0.1:9", country: "", region: "", version: 0, seq: 0 };
      const signature = await signHello(account, CHAIN, hello, challenge);
      const sent = await edit({ ...hello, node: account.address, signature });
      if (sent) call.write({ body: "hello", hello: sent } as unknown as NodeMessage);
    });
    if (keep) {
      const node = account.address;
      await waitUntil("subscribed", () => keep.server.subscribers().some((s) => s.device === node && s.connected));
      return { ended };
    }
    return ended;
  }

  /** A gRPC server posing as a stargate: challenges, takes the hello, then sends `script`; records what comes back. */
  async function startHostile(
    script: StargateMessage[],
    options: { challenger?: Address; first?: StargateMessage[] } = {},
  ) {
    const server = new grpc.Server(SERVER_OPTIONS);
    const hellos: Record<string, unknown>[] = [];
    const nacks: { version: number; seq: number; reason: string }[] = [];
    server.addService(configStream().service, {
      Subscribe(call: SubscribeCall) {
        call.on("error", () => undefined);
        call.on("data", (message: NodeMessage) => {
          if (message.body === "hello") {
            hellos.push(message.hello as unknown as Record<string, unknown>);
            for (const m of script) call.write(m);
          } else if (message.body === "nack") nacks.push(message.nack);
        });
        for (const m of options.first ?? []) call.write(m);
        const stargate = options.challenger ?? stargateAccount.address;
        call.write({ body: "challenge", challenge: { stargate, nonce: Buffer.alloc(32, 7) } });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    return {
      target: `127.0.0.1:${port}`,
      hellos,
      nacks,
      close: () => new Promise<void>((r) => server.tryShutdown(() => r())),
    };
  }
});
