/**
 * The Network API's DNS zones (D58): PUT/DELETE /api/zones/:name as zone.put/zone.remove deltas, owners only (like
 * sites), another owner's apex, a zone inside or above another owner's zone and another owner's site inside a zone
 * refused 409, the zone checked as the DNS server checks it before it is written. Through `app.inject`, with an
 * authority that applies each delta to the configuration in force with applyDeltas, under its "lock" (in order).
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { createTypedApp, errorHandler, type TypedApp } from "../../offchain/common/http";
import { type DeltaBody, type NetworkConfig, applyDeltas, emptyConfig } from "../../offchain/common/protocol";
import type { Zone } from "../../offchain/common/protocol/zones";
import { StakeType } from "../../offchain/common/stakeMap";
import type { AppliedConfig, CatalogueEndpoint } from "../../node/context";
import { NetworkApi } from "../../node/roles/stargate/api";
import { registerApiRoutes } from "../../node/roles/stargate/apiRoutes";
import { MAX_ZONES_PER_OWNER } from "../../node/roles/stargate/apiZones";
import { APEX_HOLD_MS } from "../../node/roles/stargate/zoneRules";
import { hashPassword } from "../../node/roles/stargate/passwords";

const CHAIN_ID = 31337;
const stargate = privateKeyToAccount(`0x${"5a".repeat(32)}` as Hex);
const configKey = privateKeyToAccount(`0x${"c0".repeat(32)}` as Hex);
const alice = privateKeyToAccount(`0x${"a1".repeat(32)}` as Hex);
const bob = privateKeyToAccount(`0x${"b0".repeat(32)}` as Hex);
const PASSWORD = "zones test password 1";

const SOA = {
  mname: "ns1.edge.example",
  rname: "hostmaster.edge.example",
  refresh: 3600,
  retry: 600,
  expire: 86400,
  minimum: 60,
};
/** A zone's body as the API takes it (the apex from the path). */
const body = (extra: Record<string, unknown> = {}) => ({
  ttl: 300,
  soa: SOA,
  records: [
    { name: "@", type: "A", data: "192.0.2.1" },
    { name: "www", type: "CNAME", data: "example.com" },
    { name: "@", type: "MX", data: { preference: 10, exchange: "mail.example.com" } },
  ],
  ...extra,
});
const zoneOf = (name: string, owner: string): Zone => ({ name, owner, ttl: 300, soa: SOA, records: [] });

let dir: string;
before(async function () {
  dir = mkdtempSync(join(tmpdir(), "network-api-zones-"));
  const hash = (p: string) => hashPassword(p, { logN: 12, r: 8, p: 1 });
  const users = [
    { name: "team", passwordHash: await hash(PASSWORD), scopes: ["config:publish"] },
    { name: "viewer", passwordHash: await hash(PASSWORD), scopes: [] },
    { name: "ops", passwordHash: await hash(PASSWORD), scopes: ["node:drain"] },
  ];
  writeFileSync(join(dir, "users.json"), JSON.stringify({ users }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("Network API zones (D58, app.inject)", function () {
  this.timeout(30_000);
  let app: TypedApp;
  let config: { current: AppliedConfig };
  let appended: string[];
  const gw = [privateKeyToAccount(`0x${"e1".repeat(32)}` as Hex), privateKeyToAccount(`0x${"e2".repeat(32)}` as Hex)];
  let admittedGateways: Set<string>;
  let clock: number;
  let endpoints: CatalogueEndpoint[];

  const applied = (document: NetworkConfig): AppliedConfig => ({
    version: document.version,
    seq: 0,
    hash: `0x${"00".repeat(32)}`,
    document,
  });
  const setDocument = (change: (doc: NetworkConfig) => void) => {
    const doc = structuredClone(config.current.document);
    change(doc);
    config.current = applied(doc);
  };

  beforeEach(async function () {
    app = createTypedApp({ logger: false });
    app.setErrorHandler(errorHandler({ codePrefix: "EDGE_NODE" })); // the daemon's (node/routes.ts)
    config = { current: applied(emptyConfig(1)) };
    appended = [];
    clock = Date.now();
    admittedGateways = new Set(gw.map((g) => g.address.toLowerCase()));
    const endpoint = (i: number) => ({
      device: gw[i].address,
      role: "gateway" as const,
      url: `http://127.0.0.${11 + i}:80`,
      healthy: true,
      version: 1,
    });
    endpoints = [endpoint(0), endpoint(1)];
    const api = new NetworkApi({
      ctx: {
        signer: { account: stargate, chainId: CHAIN_ID },
        log: app.log,
        chainAdmits: (d, t) =>
          t === StakeType.Stargate
            ? d.toLowerCase() === stargate.address.toLowerCase()
            : admittedGateways.has(d.toLowerCase()),
      },
      users: join(dir, "users.json"),
      tokenTtlMs: 600_000,
      peers: [],
      publicUrl: () => "http://stargate.example:8080",
      authority: () => ({
        append: async (op) => {
          const delta = typeof op === "function" ? op(config.current.document) : op;
          appended.push(delta.kind);
          config.current = applied(applyDeltas(config.current.document, [{ op: delta } as DeltaBody]));
          return { base: 1, seq: appended.length };
        },
      }),
      configSigner: () => configKey,
      anchor: { isDeltaSigner: async (a) => a.toLowerCase() === configKey.address.toLowerCase() },
      effectiveConfig: () => config.current,
      catalogue: () => ({ atMs: 1, endpoints }),
      now: () => clock,
    });
    registerApiRoutes(app, api);
    await app.ready();
  });
  afterEach(() => app.close());

  async function call(method: "GET" | "PUT" | "DELETE" | "POST", url: string, token: string, payload?: unknown) {
    const r = await app.inject({
      method,
      url,
      payload: payload as never,
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: r.statusCode, body: r.json() as Record<string, any> };
  }
  async function walletToken(who = alice): Promise<string> {
    const nonce = (await app.inject({ url: `/api/nonce?address=${who.address}` })).json().message as string;
    const payload = { message: nonce, signature: await who.signMessage({ message: nonce }) };
    return (await app.inject({ method: "POST", url: "/api/login/wallet", payload })).json().token;
  }
  async function passwordToken(name: string): Promise<string> {
    const r = await app.inject({ method: "POST", url: "/api/login", payload: { name, password: PASSWORD } });
    return r.json().token;
  }
  const zones = () => config.current.document.zones;

  it("D58: a customer writes, lists and removes its own zone as zone.put and zone.remove deltas", async function () {
    const token = await walletToken();
    const put = await call("PUT", "/api/zones/example.com", token, body());
    expect(put.status, JSON.stringify(put.body)).to.equal(200);
    expect(zones()).to.deep.equal([{ name: "example.com", owner: alice.address, ...body() }]);
    // Rewriting it replaces it (records are the whole set).
    const again = await call("PUT", "/api/zones/example.com", token, body({ ttl: 60 }));
    expect(again.status).to.equal(200);
    expect(zones().map((z) => [z.name, z.ttl])).to.deep.equal([["example.com", 60]]);
    setDocument((doc) => doc.zones.push(zoneOf("bob.example", bob.address)));
    const listed = await call("GET", "/api/zones", token);
    expect(listed.body.zones.map((z: Zone) => z.name)).to.deep.equal(["example.com"]);
    const removed = await call("DELETE", "/api/zones/example.com", token);
    expect(removed.status).to.equal(200);
    expect(zones().map((z) => z.name)).to.deep.equal(["bob.example"]);
    expect(appended).to.deep.equal(["zone.put", "zone.put", "zone.remove"]);
    const gone = await call("DELETE", "/api/zones/example.com", token);
    expect([gone.status, gone.body.code]).to.deep.equal([404, "EDGE_NODE_UNKNOWN_ZONE"]);
  });

  it("D58: another owner's apex is 409, so is a zone inside or above another owner's zone or holding its site; config:publish may transfer an apex", async function () {
    setDocument((doc) => {
      doc.zones.push(zoneOf("example.org", bob.address), zoneOf("deep.example.net", bob.address));
      doc.sites = [{ id: "shop", hostname: "shop.example.io", owner: bob.address, origin: "http://127.0.0.1:1" }];
    });
    const token = await walletToken();
    const refusals: Array<[string, RegExp]> = [
      ["example.org", /the zone example.org belongs to another owner/],
      ["a.b.example.org", /a.b.example.org is inside example.org, another owner's zone/],
      ["example.net", /example.net would hold deep.example.net, another owner's zone/],
      ["example.io", /example.io would hold shop.example.io, another owner's site/],
    ];
    for (const [name, message] of refusals) {
      const r = await call("PUT", `/api/zones/${name}`, token, body());
      expect([r.status, r.body.code], name).to.deep.equal([409, "EDGE_NODE_ZONE_TAKEN"]);
      expect(r.body.error, name).to.match(message);
    }
    // Bob's own nested zone and site are no obstacle to Bob.
    const bobs = await walletToken(bob);
    expect((await call("PUT", "/api/zones/sub.example.org", bobs, body())).status).to.equal(200);
    expect((await call("PUT", "/api/zones/example.io", bobs, body())).status).to.equal(200);
    const notMine = await call("DELETE", "/api/zones/example.org", token);
    expect([notMine.status, notMine.body.code]).to.deep.equal([403, "EDGE_NODE_ZONE_NOT_OWNED"]);
    const forBob = await call("PUT", "/api/zones/alice.example", token, body({ owner: bob.address }));
    expect([forBob.status, forBob.body.code]).to.deep.equal([403, "EDGE_NODE_ZONE_NOT_OWNED"]);
    expect(appended).to.deep.equal(["zone.put", "zone.put"]);
    // The team (config:publish) may give an apex to another owner; the nesting rule still holds for it.
    const team = await passwordToken("team");
    const transfer = await call("PUT", "/api/zones/deep.example.net", team, body({ owner: alice.address }));
    expect(transfer.status, JSON.stringify(transfer.body)).to.equal(200);
    expect(zones().find((z) => z.name === "deep.example.net")?.owner).to.equal(alice.address);
    const nested = await call("PUT", "/api/zones/x.example.org", team, body({ owner: alice.address }));
    expect(nested.body.code).to.equal("EDGE_NODE_ZONE_TAKEN");
    expect((await call("DELETE", "/api/zones/example.org", team)).status).to.equal(200);
  });

  it("R18-1: a site at or below another owner's zone is 409 EDGE_NODE_SITE_IN_ZONE, the zone owner's own site is not", async function () {
    setDocument((doc) => doc.zones.push(zoneOf("victim.example", bob.address)));
    const token = await walletToken();
    const team = await passwordToken("team");
    const site = (hostname: string, extra = {}) => ({ hostname, origin: "http://127.0.0.1:1", ...extra });
    for (const [hostname, who] of [
      ["victim.example", token],
      ["www.victim.example", token],
      ["a.b.victim.example", token],
      ["shop.victim.example", team], // the team writing it for another owner: the same rule
    ]) {
      const r = await call("PUT", "/api/sites/s1", who, site(hostname, who === team ? { owner: alice.address } : {}));
      expect([r.status, r.body.code], hostname).to.deep.equal([409, "EDGE_NODE_SITE_IN_ZONE"]);
      expect(r.body.error).to.match(/is in victim.example, another owner's zone/);
    }
    expect((await call("PUT", "/api/sites/s1", token, site("notvictim.example"))).status).to.equal(200);
    expect((await call("PUT", "/api/sites/s2", await walletToken(bob), site("www.victim.example"))).status).to.equal(
      200,
    );
    expect(appended).to.deep.equal(["site.put", "site.put"]);
  });

  it("D58: a zone is checked before it is written: schema, what the DNS server would refuse, two labels, scope and the per-owner quota", async function () {
    const token = await walletToken();
    const cases: Array<[string, unknown, number, string, RegExp?]> = [
      ["example.com", body({ records: [{ name: "@", type: "SRV", data: "x" }] }), 400, "FST_ERR_VALIDATION"],
      ["Example.com", body(), 400, "FST_ERR_VALIDATION"],
      ["example.com", { ...body(), name: "other.com" }, 400, "FST_ERR_VALIDATION"],
      [
        "example.com",
        body({ records: [{ name: "@", type: "CNAME", data: "elsewhere.example" }] }),
        400,
        "EDGE_NODE_ZONE_INVALID",
        /@ CNAME: the apex cannot be an alias/,
      ],
      ["com", body(), 400, "EDGE_NODE_ZONE_INVALID", /at least two labels/],
    ];
    for (const [name, payload, status, code, message] of cases) {
      const r = await call("PUT", `/api/zones/${name}`, token, payload);
      expect([r.status, r.body.code], JSON.stringify(payload)).to.deep.equal([status, code]);
      if (message) expect(r.body.error).to.match(message);
    }
    const viewer = await call("PUT", "/api/zones/example.com", await passwordToken("viewer"), body());
    expect([viewer.status, viewer.body.code]).to.deep.equal([403, "EDGE_NODE_SCOPE_MISSING"]);
    setDocument((doc) => {
      for (let i = 0; i < MAX_ZONES_PER_OWNER; i++) doc.zones.push(zoneOf(`z${i}.example`, alice.address));
    });
    const quota = await call("PUT", "/api/zones/one-more.example", token, body());
    expect([quota.status, quota.body.code]).to.deep.equal([403, "EDGE_NODE_ZONE_QUOTA"]);
    // Rewriting a zone it holds is no new zone.
    expect((await call("PUT", "/api/zones/z0.example", token, body())).status).to.equal(200);
    expect(appended).to.deep.equal(["zone.put"]);
  });

  it("R18-14: a drain leaving no serving gateway is 409 EDGE_NODE_LAST_GATEWAY unless ?force=true; a drained device no longer admitted can be undrained", async function () {
    const ops = await passwordToken("ops");
    const url = (i: number, query = "") => `/api/nodes/${gw[i].address}/drain${query}`;
    expect((await call("POST", url(0), ops)).status).to.equal(200);
    const last = await call("POST", url(1), ops);
    expect([last.status, last.body.code]).to.deep.equal([409, "EDGE_NODE_LAST_GATEWAY"]);
    expect(last.body.error).to.match(/last serving gateway.*\?force=true/);
    // An unhealthy gateway does not serve: with gw1 unhealthy, gw0 was the last one.
    expect((await call("DELETE", url(0), ops)).status).to.equal(200);
    endpoints[1] = { ...endpoints[1], healthy: false };
    expect((await call("POST", url(0), ops)).body.code).to.equal("EDGE_NODE_LAST_GATEWAY");
    expect((await call("POST", url(0, "?force=true"), ops)).status).to.equal(200);
    expect((await call("POST", url(1), ops)).status).to.equal(200); // no longer serving anyway
    expect(config.current.document.draining).to.deep.equal(gw.map((g) => g.address.toLowerCase()));
    // gw0 is evicted while drained: it can still be undrained; an unknown, undrained device cannot.
    admittedGateways.delete(gw[0].address.toLowerCase());
    expect((await call("DELETE", url(0), ops)).status).to.equal(200);
    expect(config.current.document.draining).to.deep.equal([gw[1].address.toLowerCase()]);
    const again = await call("DELETE", url(0), ops);
    expect([again.status, again.body.code]).to.deep.equal([404, "EDGE_NODE_UNKNOWN_DEVICE"]);
    expect((await call("POST", url(0, "?force=true"), ops)).body.code).to.equal("EDGE_NODE_UNKNOWN_DEVICE");
    expect(appended).to.deep.equal(["node.drain", "node.undrain", "node.drain", "node.drain", "node.undrain"]);
  });

  it("R18-4: a public suffix (co.uk, github.io) is no zone; a removed apex is held for its last owner for APEX_HOLD_MS", async function () {
    const token = await walletToken();
    for (const name of ["co.uk", "github.io", "s3.amazonaws.com"]) {
      const r = await call("PUT", `/api/zones/${name}`, token, body());
      expect([r.status, r.body.code], name).to.deep.equal([400, "EDGE_NODE_ZONE_PUBLIC_SUFFIX"]);
    }
    expect((await call("PUT", "/api/zones/example.co.uk", token, body())).status).to.equal(200);
    expect((await call("DELETE", "/api/zones/example.co.uk", token)).status).to.equal(200);
    const bobs = await walletToken(bob);
    const held = await call("PUT", "/api/zones/example.co.uk", bobs, body());
    expect([held.status, held.body.code]).to.deep.equal([409, "EDGE_NODE_ZONE_HELD"]);
    expect(held.body.error).to.match(/held for its last owner until/);
    // Its last owner may take it back at once; after the hold anyone may claim it.
    expect((await call("PUT", "/api/zones/example.co.uk", token, body())).status).to.equal(200);
    expect((await call("DELETE", "/api/zones/example.co.uk", token)).status).to.equal(200);
    clock += APEX_HOLD_MS + 1;
    expect((await call("PUT", "/api/zones/example.co.uk", await walletToken(bob), body())).status).to.equal(200);
    expect(zones().map((z) => [z.name, z.owner])).to.deep.equal([["example.co.uk", bob.address]]);
  });
});
