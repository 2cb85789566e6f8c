/**
 * The configuration authority's guards (D53, review of issue 17): what it signs and anchors is a document every
 * subscriber takes (R17-2), uploads are refused before their body is read unless the chain anchors them (R17-3), a
 * fold whose receipt wait failed adopts what it sent (R17-7), text that is not Unicode is a 4xx (R17-9). A real
 * Hardhat chain over JSON-RPC with ConfigRegistry, the stargate's configuration plane and the Network API.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ethers, network } from "hardhat";
import { Registry } from "prom-client";
import { type Address, type Hex, type PublicClient, createWalletClient, http } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { hardhat } from "../../scripts/lib/hardhatChain";

import { ConfigAnchor, anchorVersion } from "../../offchain/common/configAnchor";
import { createTypedApp, errorHandler } from "../../offchain/common/http";
import {
  type NetworkConfig,
  documentHash,
  emptyConfig,
  encodeDocument,
  issueToken,
  parseDeltaBody,
  parseDocument,
  signDelta,
} from "../../offchain/common/protocol";
import type { Zone } from "../../offchain/common/protocol/zones";
import type { StargateContext } from "../../node/context";
import { MAX_SITES_PER_OWNER, NetworkApi } from "../../node/roles/stargate/api";
import { registerApiRoutes } from "../../node/roles/stargate/apiRoutes";
import { ConfigAuthority } from "../../node/roles/stargate/authority";
import {
  MAX_ZONES_BYTES,
  MAX_ZONE_BYTES_PER_OWNER,
  MAX_ZONE_RECORDS_PER_OWNER,
  checkAppend,
} from "../../node/roles/stargate/configCheck";
import { type ConfigPlane, createConfigPlane } from "../../node/roles/stargate/configPlane";
import { ConfigStore } from "../../node/roles/stargate/configStore";
import { CHAIN, silentLog } from "../shared/gatewayHarness";
import { type RpcServer, publicClient, startRpcServer } from "../shared/rpc";

describe("node/configAuthority (review of issue 17)", function () {
  this.timeout(60_000);
  let rpc: RpcServer;
  let client: PublicClient;
  let registry: Address;
  let dir: string;
  let plane: ConfigPlane;
  let app: ReturnType<typeof createTypedApp>;
  const configKey = generatePrivateKey();
  const publisher = privateKeyToAccount(configKey);
  const device = privateKeyToAccount(generatePrivateKey());
  const alice = privateKeyToAccount(generatePrivateKey());
  const bob = privateKeyToAccount(generatePrivateKey());
  const now = Date.UTC(2026, 10, 30, 12);
  let team: string;

  const anchor = () => new ConfigAnchor({ client, address: registry });
  const wallet = () => createWalletClient({ account: publisher, chain: hardhat, transport: http(rpc.url) });
  async function anchorDoc(doc: NetworkConfig): Promise<Buffer> {
    const bytes = encodeDocument(doc);
    await anchorVersion(wallet(), client, registry, doc.version, documentHash(bytes));
    return bytes;
  }
  const token = (signer: typeof device, subject: string, scopes: string[]) =>
    issueToken(signer, CHAIN, {
      id: `0x${"0".repeat(62)}${scopes.length}${subject.length % 10}` as Hex,
      subject,
      scopes: scopes as never,
      expiresAt: Math.floor(now / 1000) + 600,
    });
  const call = async (method: "POST" | "PUT" | "DELETE", url: string, body: unknown, bearer: string) => {
    const r = await app.inject({
      method,
      url,
      payload: typeof body === "string" ? body : JSON.stringify(body),
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    });
    return { status: r.statusCode, body: r.json() as { code?: string; error?: string } };
  };
  const upload = (bytes: Buffer | string, query = "") =>
    app.inject({
      method: "POST",
      url: `/config/versions${query}`,
      payload: bytes,
      headers: { "content-type": "application/octet-stream" },
    });

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "config-authority-"));
    rpc = await startRpcServer();
    client = publicClient(rpc.url) as PublicClient;
    const [admin] = await ethers.getSigners();
    const contract = await ethers.deployContract("ConfigRegistry", [admin.address, 0n, publisher.address]);
    registry = (await contract.getAddress()) as Address;
    await network.provider.send("hardhat_setBalance", [publisher.address, "0xde0b6b3a7640000"]);
    const admitted = new Set([device.address.toLowerCase()]);
    const ctx = {
      signer: { account: device, chainId: CHAIN },
      log: silentLog,
      metrics: { registry: new Registry() },
      chainAdmits: (d: string) => admitted.has(d.toLowerCase()),
      contracts: client,
      configRegistry: registry,
      rpc: rpc.url,
    } as unknown as StargateContext;
    plane = createConfigPlane(ctx, {
      dataDir: mkdtempSync(join(dir, "stargate-")),
      listenHost: "127.0.0.1",
      grpcPort: 0,
      configKey,
      anchorIntervalMs: 600_000,
      stargates: [],
      publicUrl: "http://127.0.0.1:1",
    });
    await plane.start();
    const api = new NetworkApi({
      ctx,
      users: undefined,
      tokenTtlMs: 600_000,
      peers: [],
      publicUrl: () => "http://stargate.example",
      authority: () => plane.authority,
      configSigner: () => publisher,
      anchor: anchor(),
      effectiveConfig: () => plane.effectiveConfig(),
      now: () => now,
    } as ConstructorParameters<typeof NetworkApi>[0]);
    app = createTypedApp({ logger: false });
    app.setErrorHandler(errorHandler({ codePrefix: "EDGE_NODE" }));
    plane.register(app);
    registerApiRoutes(app, api);
    await app.ready();
    team = await token(publisher, "ops", ["blocklist:write", "config:publish"]);
    const v1 = await anchorDoc(emptyConfig(1));
    expect((await upload(v1)).statusCode).to.equal(200);
  });

  after(async function () {
    await plane.stop();
    await app.close();
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("R17-2: the 101st site of one owner, invalid IP ranges (999.1.1.1, 1.2.3.4/33) and a hostname 'foo bar' are refused at the API, nothing appended", async function () {
    const customer = await token(device, alice.address, ["sites:write"]);
    for (let i = 0; i < MAX_SITES_PER_OWNER; i++) {
      const r = await call(
        "PUT",
        `/api/sites/s${i}`,
        { hostname: `s${i}.example`, origin: "http://127.0.0.1:1" },
        customer,
      );
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
    }
    const seq = plane.store.seq();
    const over = await call(
      "PUT",
      "/api/sites/s100",
      { hostname: "s100.example", origin: "http://127.0.0.1:1" },
      customer,
    );
    expect(over.status).to.equal(403);
    expect(over.body.code).to.equal("EDGE_NODE_SITE_QUOTA");
    // Replacing one of its sites is no new site: still accepted.
    expect(
      (await call("PUT", "/api/sites/s0", { hostname: "s0.example", origin: "http://o.example" }, customer)).status,
    ).to.equal(200);
    const before = plane.store.seq();
    for (const ipRange of ["999.1.1.1", "1.2.3.4/33"]) {
      const r = await call("POST", "/api/blocklist", { ipRange }, team);
      expect(r.status, ipRange).to.equal(400);
      expect(r.body.code).to.equal("EDGE_NODE_CONFIG_INVALID");
      expect(r.body.error).to.include(ipRange);
    }
    const path = await call("POST", "/api/blocklist", { path: { hostname: "foo bar", prefix: "/x" } }, team);
    expect(path.status).to.equal(400);
    expect(path.body.error).to.include("foo bar");
    const site = await call("PUT", "/api/sites/foo", { hostname: "foo bar", origin: "http://127.0.0.1:1" }, team);
    expect(site.status).to.equal(400);
    expect(site.body.code).to.equal("EDGE_NODE_SITES_INVALID");
    expect(plane.store.seq()).to.equal(before);
    expect(before).to.equal(seq + 1);
    // A valid rule still goes through.
    expect((await call("POST", "/api/blocklist", { ipRange: "203.0.113.0/24" }, team)).status).to.equal(200);
  });

  it("R17-3: an upload is refused before its body is read: one at a time (503), a version not newer (409) or not anchored (409)", async function () {
    const garbage = Buffer.from("not a document at all");
    // The chain's latest is held: 409 at once (the old code parsed first: 400).
    const stale = await upload(garbage);
    expect([stale.statusCode, stale.json().code]).to.deep.equal([409, "EDGE_NODE_CONFIG_STALE"]);
    const staleGiven = await upload(garbage, "?version=1");
    expect(staleGiven.json().code).to.equal("EDGE_NODE_CONFIG_STALE");
    const unanchored = await upload(garbage, "?version=999");
    expect([unanchored.statusCode, unanchored.json().code]).to.deep.equal([409, "EDGE_NODE_CONFIG_NOT_ANCHORED"]);
    expect((await upload(garbage, "?version=x")).statusCode).to.equal(400);
    // Anchored version, other bytes: the hash is compared before any parsing.
    const { version } = await anchor().latest();
    const next = await anchorDoc({ ...emptyConfig(version + 1), prices: { "cdn.requests": "7" } });
    const wrong = await upload(garbage);
    expect([wrong.statusCode, wrong.json().code]).to.deep.equal([409, "EDGE_NODE_CONFIG_NOT_ANCHORED"]);
    // A slow upload holds the one slot: a second one is 503 until it ends.
    await app.listen({ port: 0, host: "127.0.0.1" });
    const port = (app.server.address() as { port: number }).port;
    const slow = httpRequest({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/config/versions",
      headers: { "content-type": "application/octet-stream", "content-length": next.length },
    });
    const answered = new Promise<number>((resolve) => slow.on("response", (r) => resolve(r.statusCode!)));
    slow.write(next.subarray(0, 10));
    let busy: { statusCode: number; json(): { code: string } } | undefined;
    for (let i = 0; i < 200 && busy?.statusCode !== 503; i++) {
      await new Promise((r) => setTimeout(r, 10));
      busy = await upload(garbage);
    }
    expect(busy!.json().code).to.equal("EDGE_NODE_CONFIG_BUSY");
    slow.end(next.subarray(10));
    expect(await answered).to.equal(200);
    expect(plane.store.latest()!.version).to.equal(version + 1);
    expect(parseDocument(plane.store.latest()!.bytes)).to.deep.include({ prices: { "cdn.requests": "7" } });
  });

  it("R17-2: writes per subject are rate-limited (429), and a fold that would make a document nodes refuse is never anchored", async function () {
    const customer = await token(device, bob.address, ["sites:write"]);
    const codes: string[] = [];
    for (let i = 0; i < 125; i++) {
      // Refused under the authority's lock (the hostname is another's site): still a write.
      const r = await call("PUT", "/api/sites/b", { hostname: "s1.example", origin: "http://127.0.0.1:1" }, customer);
      codes.push(r.body.code!);
    }
    expect(codes.slice(0, 120).every((c) => c === "EDGE_NODE_SITES_INVALID")).to.equal(true);
    expect(codes.slice(120).every((c) => c === "EDGE_NODE_WRITE_RATE_LIMITED")).to.equal(true);
    // A store whose pending delta (signed by the key, not through append) puts an invalid site.
    const store = new ConfigStore(join(dir, "poisoned.sqlite"));
    const { version } = await anchor().latest();
    const doc = emptyConfig(version + 1);
    const bytes = await anchorDoc(doc);
    store.putVersion({ version: doc.version, hash: documentHash(bytes), bytes, document: doc });
    const signed = await signDelta(publisher, CHAIN, {
      base: doc.version,
      seq: 1,
      issuedAt: now,
      op: { kind: "site.put", site: { id: "bad", hostname: "foo bar", origin: "nope" } },
    });
    const parsed = parseDeltaBody(signed.body);
    if (typeof parsed === "string") throw new Error(parsed);
    store.putDelta({ base: doc.version, seq: 1, body: signed.body, signature: signed.signature, parsed });
    let sent = 0;
    const authority = new ConfigAuthority({ signer: { account: device, chainId: CHAIN }, log: silentLog }, store, {
      account: publisher,
      anchor: anchor(),
      intervalMs: 600_000,
      publish: async () => void (sent += 1),
    });
    let error: unknown;
    await authority.fold().catch((e: unknown) => (error = e));
    expect(String(error)).to.match(/invalid sites/);
    expect(sent).to.equal(0);
    expect(store.candidate()).to.equal(undefined);
    store.close();
  });

  it("R17-7: a fold whose receipt wait failed after its transaction was mined adopts its stored candidate on retry and after a restart", async function () {
    const file = join(dir, "fold.sqlite");
    let store = new ConfigStore(file);
    const { version } = await anchor().latest();
    const base = emptyConfig(version + 1);
    const bytes = await anchorDoc(base);
    store.putVersion({ version: base.version, hash: documentHash(bytes), bytes, document: base });
    const sent: number[] = [];
    const make = (s: ConfigStore) =>
      new ConfigAuthority({ signer: { account: device, chainId: CHAIN }, log: silentLog }, s, {
        account: publisher,
        anchor: anchor(),
        intervalMs: 600_000,
        publish: async (v, hash) => {
          sent.push(v);
          await anchorVersion(wallet(), client, registry, v, hash);
          throw new Error("the receipt wait timed out"); // mined, but the caller never learns it
        },
      });
    let authority = make(store);
    await authority.append({ kind: "blocklist.add", ipRange: "198.51.100.0/24" });
    let error: unknown;
    await authority.fold().catch((e: unknown) => (error = e));
    expect(String(error)).to.include("receipt wait");
    const candidate = store.candidate()!;
    expect(candidate).to.include({ version: base.version + 1, folded: 1 });
    expect(await anchor().hashOf(base.version + 1)).to.equal(candidate.hash);
    // More deltas come in; then the stargate restarts before the retry.
    await authority.append({ kind: "blocklist.add", ipRange: "198.51.100.7" });
    store.close();
    store = new ConfigStore(file);
    authority = make(store);
    await authority.fold();
    expect(sent).to.deep.equal([base.version + 1]); // adopted, not sent again
    expect(store.latest()).to.include({ version: base.version + 1, hash: candidate.hash });
    expect(store.latest()!.document.blocklist.ipRanges).to.deep.equal(["198.51.100.0/24"]);
    expect(store.currentDeltas().map((d) => d.parsed.op)).to.deep.equal([
      { kind: "blocklist.add", ipRange: "198.51.100.7" },
    ]);
    expect(store.candidate()).to.equal(undefined);
    store.close();
  });

  it("R17-9: a lone UTF-16 surrogate is a 4xx everywhere: parsing, the site API, the blocklist API, an append", async function () {
    const lone =
      '{"base":1,"issuedAt":0,"op":{"kind":"blocklist.add","path":{"hostname":"*","prefix":"/\\ud800"}},"seq":1}';
    expect(parseDeltaBody(Buffer.from(lone))).to.match(/not well-formed Unicode/);
    const doc = Buffer.from(
      encodeDocument(emptyConfig(1)).toString().replace('"prices":{}', '"prices":{"a":"\\udc00"}'),
    );
    expect(parseDocument(doc)).to.be.a("string");
    const customer = await token(device, alice.address, ["sites:write"]);
    const before = plane.store.seq();
    const site = await call(
      "PUT",
      "/api/sites/s1",
      '{"hostname":"s1.example","origin":"http://o.example/\\ud800"}',
      customer,
    );
    expect([site.status, site.body.code]).to.deep.equal([400, "EDGE_NODE_SITES_INVALID"]);
    const rule = await call("POST", "/api/blocklist", '{"path":{"hostname":"*","prefix":"/\\ud800"}}', team);
    expect(rule.status).to.equal(400);
    let error: { status?: number } | undefined;
    await plane
      .authority!.append({ kind: "blocklist.add", path: { hostname: "*", prefix: "/\ud800" } })
      .catch((e: { status?: number }) => (error = e));
    expect(error?.status).to.equal(400);
    expect(plane.store.seq()).to.equal(before);
  });

  const SOA = {
    mname: "ns1.edge.example",
    rname: "hostmaster.edge.example",
    refresh: 1,
    retry: 1,
    expire: 1,
    minimum: 1,
  };
  /** A zone of `txt` TXT records of 4,000 characters (about 4 KB each). */
  const bigZone = (name: string, owner: string, txt: number): Zone => ({
    name,
    owner,
    ttl: 60,
    soa: SOA,
    records: Array.from({ length: txt }, (_, i) => ({
      name: "@",
      type: "TXT" as const,
      data: `${i}`.padEnd(4000, "x"),
    })),
  });
  const owner = (i: number) => `0x${i.toString(16).padStart(40, "0")}`;

  it("R18-3: zones and draining are in the append's length checks; an owner's zones are held to records and bytes", function () {
    const doc = emptyConfig(1);
    const small = bigZone("a.example", owner(1), 0);
    const tooMany = { ...doc, zones: Array.from({ length: 10_001 }, (_, i) => ({ ...small, name: `z${i}.example` })) };
    expect(() => checkAppend(tooMany, { kind: "zone.put", zone: small }, 0)).to.throw(/10001 zones, over the 10000/);
    const drained = { ...doc, draining: Array.from({ length: 10_001 }, (_, i) => owner(i)) as Address[] };
    expect(() => checkAppend(drained, { kind: "node.drain", device: owner(1) as Address }, 0)).to.throw(/draining/);
    const records = {
      ...doc,
      zones: [
        { ...small, records: Array(MAX_ZONE_RECORDS_PER_OWNER + 1).fill({ name: "@", type: "A", data: "192.0.2.1" }) },
      ],
    };
    expect(() => checkAppend(records, { kind: "zone.put", zone: small }, 0)).to.throw(/2001 records/);
    const txt = Math.ceil(MAX_ZONE_BYTES_PER_OWNER / 4000);
    const bytes = { ...doc, zones: [bigZone("a.example", owner(1), txt)] };
    expect(() => checkAppend(bytes, { kind: "zone.put", zone: small }, 0)).to.throw(/over the 2000 records or 262144/);
    // Another owner's zones do not count against this one.
    expect(() => checkAppend(bytes, { kind: "zone.put", zone: { ...small, owner: owner(2) } }, 0)).to.not.throw();
  });

  it("R18-3: with the zones' budget full a zone.put is 409 EDGE_NODE_ZONES_FULL, a blocklist.add and a token.revoke are taken, and the fold anchors", async function () {
    const { version } = await anchor().latest();
    const count = Math.ceil(MAX_ZONES_BYTES / (60 * 4000)) + 1;
    const zones = Array.from({ length: count }, (_, i) => bigZone(`full${i}.example`, owner(100 + i), 60));
    const current = plane.effectiveConfig()!.document;
    const bytes = await anchorDoc({ ...current, version: version + 1, zones });
    expect((await upload(bytes)).statusCode).to.equal(200);
    const customer = await token(device, alice.address, ["sites:write"]);
    const body = { ttl: 60, soa: SOA, records: [{ name: "@", type: "A", data: "192.0.2.1" }] };
    const put = await call("PUT", "/api/zones/alice.example", body, customer);
    expect([put.status, put.body.code]).to.deep.equal([409, "EDGE_NODE_ZONES_FULL"]);
    expect((await call("POST", "/api/blocklist", { ipRange: "192.0.2.0/24" }, team)).status).to.equal(200);
    const revoker = await token(publisher, "revoker", ["tokens:revoke"]);
    const revoke = await call("POST", "/api/tokens/revoke", { id: `0x${"ab".repeat(32)}` }, revoker);
    expect(revoke.status, JSON.stringify(revoke.body)).to.equal(200);
    await plane.authority!.fold();
    expect((await anchor().latest()).version).to.equal(version + 2);
    expect(plane.effectiveConfig()!.document.zones).to.have.length(count);
  });
});
