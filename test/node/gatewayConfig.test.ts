/**
 * A gateway applying the network configuration (D54): the role's applyConfig/applyCatalogue called directly on
 * real gateways (createGateway: API app, host links, front door), real hosts' links, and real HTTP clients, one
 * of them on another loopback source address (127.0.0.2) through undici's `localAddress`.
 */
import { expect } from "chai";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Agent } from "undici";

import type { AppliedConfig, Catalogue } from "../../node/context";
import { type NetworkConfig, emptyConfig } from "../../offchain/common/protocol";
import { type BlocklistRig, runTrials, startBlocklistRig, trialAddress } from "../../scripts/bench/control/blocklist";
import { hostAccount, waitUntil } from "../shared/gatewayHarness";
import { type GatewayRole, startGatewayRole } from "../shared/gatewayRole";

const OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const SITE = "docs.example.test";
const BODY = "hello from the origin";

export interface Reply {
  status: number;
  body: string;
  json: () => Record<string, unknown>;
  servedBy?: string;
}

const agents = new Map<string, Agent>();
/** GET `path` (sent as is: no URL normalisation) for `host` at `front`, from the loopback address `from`. */
export async function get(front: string, path: string, from = "127.0.0.1", host = SITE): Promise<Reply> {
  let agent = agents.get(from);
  if (!agent) agents.set(from, (agent = new Agent({ localAddress: from })));
  const res = await agent.request({ origin: front, path, method: "GET", headers: { host } });
  const body = await res.body.text();
  const servedBy = res.headers["x-served-by"] as string | undefined;
  return { status: res.statusCode, body, json: () => JSON.parse(body), servedBy };
}

async function closeAgents() {
  for (const agent of agents.values()) await agent.close();
  agents.clear();
}

export const applied = (version: number, seq: number, doc: Partial<NetworkConfig>): AppliedConfig => ({
  version,
  seq,
  hash: `0x${"00".repeat(32)}`,
  document: { ...emptyConfig(version), ...doc },
});

export const site = (origin: string, over: Record<string, unknown> = {}) => ({
  id: "docs",
  hostname: SITE,
  owner: OWNER,
  origin,
  ...over,
});

describe("gateway configuration (D54)", function () {
  this.timeout(60_000);
  let origin: Server;
  let originUrl: string;
  let gateway: GatewayRole;
  const hostA = hostAccount(0x21);
  const hostB = hostAccount(0x22);
  const jobs: Record<string, number> = { A: 0, B: 0 };

  /** A host answering every job with the origin's body, after 1.5 s for paths under /slow. */
  const handler =
    (name: "A" | "B") => (request: { url: string }, response: import("node:http2").Http2ServerResponse) => {
      jobs[name] += 1;
      const answer = () => {
        response.setHeader("x-edge-cache", "miss");
        response.setHeader("x-served-by", name);
        response.end(BODY);
      };
      if (request.url.startsWith("/slow")) setTimeout(answer, 1_500);
      else answer();
    };

  before(async function () {
    origin = createServer((_request, response) => response.end(BODY));
    await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    gateway = await startGatewayRole();
    await gateway.connectHost(hostA, handler("A"));
    await gateway.connectHost(hostB, handler("B"));
  });

  after(async function () {
    await gateway?.close();
    origin?.close();
    await closeAgents();
  });

  it("D54: the front door opens with --stargates and no --sites, and serves the sites the configuration brings", async function () {
    expect(gateway.frontDoor).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await get(gateway.frontDoor, "/")).json().code).to.equal("EDGE_NODE_UNKNOWN_SITE");
    gateway.role.applyConfig!(applied(1, 0, { sites: [site(originUrl)] }));
    const reply = await get(gateway.frontDoor, "/public");
    expect(reply.status).to.equal(200);
    expect(reply.body).to.equal(BODY);
    expect(gateway.status()).to.deep.include({ configuration: { version: 1, seq: 0 } });
  });

  it("D54: an IP range blocks a client (127.0.0.2) before any work, while 127.0.0.1 is served", async function () {
    gateway.role.applyConfig!(
      applied(1, 1, { sites: [site(originUrl)], blocklist: { ipRanges: ["127.0.0.2/32"], paths: [] } }),
    );
    const before = jobs.A + jobs.B;
    const blocked = await get(gateway.frontDoor, "/public", "127.0.0.2");
    expect(blocked.status).to.equal(403);
    expect(blocked.json()).to.include({ code: "EDGE_NODE_BLOCKED", kind: "ip", rule: "127.0.0.2/32" });
    expect(jobs.A + jobs.B).to.equal(before);
    // A range covers the whole of it; an unknown hostname is refused by address first too.
    gateway.role.applyConfig!(
      applied(1, 2, { sites: [site(originUrl)], blocklist: { ipRanges: ["127.0.0.0/30"], paths: [] } }),
    );
    expect((await get(gateway.frontDoor, "/", "127.0.0.2", "nowhere.test")).json().rule).to.equal("127.0.0.0/30");
    gateway.role.applyConfig!(
      applied(1, 3, { sites: [site(originUrl)], blocklist: { ipRanges: ["127.0.0.2"], paths: [] } }),
    );
    expect((await get(gateway.frontDoor, "/public")).status).to.equal(200);
    expect(await gateway.registry.metrics()).to.match(/edge_cdn_blocked_total\{kind="ip"\} 2/);
  });

  it("D54: a path rule blocks /private/* but not /public, and no encoding or dot-segment trick slips past it", async function () {
    const blocklist = { ipRanges: ["127.0.0.2"], paths: [{ hostname: SITE, prefix: "/private/" }] };
    gateway.role.applyConfig!(applied(1, 4, { sites: [site(originUrl)], blocklist }));
    for (const path of ["/public", "/public/private/x", "/privateer", "/?/private/x"])
      expect((await get(gateway.frontDoor, path)).status, path).to.equal(200);
    const tricks = [
      "/private/a.txt",
      "/private/",
      "/%70rivate/a",
      "/%2570rivate/a",
      "/public/../private/a",
      "/public/%2e%2e/private/a",
      "/public/%252e%252E/private/a",
      "//private/a",
      "/./private/a",
      "/public\\..\\private\\a",
      "/private%2Fa",
      "/private/a?x=1",
    ];
    for (const path of tricks) {
      const reply = await get(gateway.frontDoor, path);
      expect(reply.status, path).to.equal(403);
      expect(reply.json(), path).to.include({ code: "EDGE_NODE_BLOCKED", kind: "path", rule: `${SITE} /private/` });
    }
    expect(await gateway.registry.metrics()).to.match(/edge_cdn_blocked_total\{kind="path"\} 12/);
  });

  it("D54: an invalid sites or blocklist section throws (NACK) and leaves the old sites, blocklist and policy in force", async function () {
    const good = gateway.status();
    const blocklist = { ipRanges: [], paths: [] };
    expect(() =>
      gateway.role.applyConfig!(applied(2, 0, { sites: [site(originUrl), site("nope", { id: "b" })], blocklist })),
    ).to.throw(/invalid sites: sites\[1\] \("b"\)/);
    expect(() =>
      gateway.role.applyConfig!(
        applied(2, 0, {
          sites: [site(originUrl), site(originUrl, { id: "b", hostname: "b.example.test" })],
          blocklist: { ipRanges: ["10.0.0.0/33"], paths: [] },
          dispatch: { queueWaitMs: 10 },
        }),
      ),
    ).to.throw(/invalid blocklist: blocklist\.ipRanges\[0\]/);
    expect(gateway.status()).to.deep.include({ configuration: good.configuration, dispatch: good.dispatch });
    expect((await get(gateway.frontDoor, "/public", "127.0.0.2")).status).to.equal(403);
    expect((await get(gateway.frontDoor, "/private/a")).status).to.equal(403);
    expect((await get(gateway.frontDoor, "/", "127.0.0.1", "b.example.test")).status).to.equal(404);
    expect((await get(gateway.frontDoor, "/public")).status).to.equal(200);
  });

  it("D54: the dispatch policy (queueWaitMs, verifyOneIn) applies live", async function () {
    const sites = [site(originUrl)];
    gateway.role.applyConfig!(applied(2, 0, { sites, dispatch: { queueWaitMs: 100 } }));
    // Every slot (2 hosts x 4) busy for 1.5 s: the next request waits 100 ms, not the flag's 5 s.
    const before = jobs.A + jobs.B;
    const slow = Array.from({ length: 8 }, (_, i) => get(gateway.frontDoor, `/slow/${i}`));
    await waitUntil("every slot busy", () => jobs.A + jobs.B === before + 8);
    const started = Date.now();
    const waited = await get(gateway.frontDoor, "/public");
    expect(waited.json().code).to.equal("EDGE_NODE_QUEUE_TIMEOUT");
    expect(Date.now() - started).to.be.below(1_500);
    gateway.role.applyConfig!(applied(2, 1, { sites, dispatch: {} })); // back to the flag's 5 s
    expect((await get(gateway.frontDoor, "/public")).status).to.equal(200);
    await Promise.all(slow);

    const checks = () => gateway.status().contentChecks as { oneIn: number; checked: number; match: number };
    expect(checks()).to.include({ oneIn: 0, checked: 0 });
    gateway.role.applyConfig!(applied(2, 2, { sites, dispatch: { verifyOneIn: 1 } }));
    expect((await get(gateway.frontDoor, "/checked")).status).to.equal(200);
    await waitUntil("checked", () => checks().match === 1);
    expect(checks()).to.include({ oneIn: 1, checked: 1 });
  });

  it("D54: hosts the catalogue calls unhealthy get no job; a host the catalogue does not list stays usable", async function () {
    const catalogue = (entries: Array<[string, boolean]>): Catalogue => ({
      atMs: Date.now(),
      endpoints: entries.map(([device, healthy]) => ({
        device: device as `0x${string}`,
        role: "host",
        url: "http://127.0.0.1:9",
        healthy,
        version: 2,
      })),
    });
    const servedBy = async (n: number) => {
      const seen: string[] = [];
      for (let i = 0; i < n; i++) seen.push((await get(gateway.frontDoor, `/public?${i}`)).servedBy ?? "none");
      return new Set(seen);
    };
    gateway.role.applyCatalogue!(
      catalogue([
        [hostA.address, false],
        [hostB.address, true],
      ]),
    );
    expect(gateway.status()).to.include({ unhealthyHosts: 1 });
    expect([...(await servedBy(10))]).to.deep.equal(["B"]);
    // A absent (the catalogue may lag a host), B unhealthy: A takes everything.
    gateway.role.applyCatalogue!(catalogue([[hostB.address.toLowerCase(), false]]));
    expect([...(await servedBy(10))]).to.deep.equal(["A"]);
    gateway.role.applyCatalogue!(
      catalogue([
        [hostA.address, true],
        [hostB.address, true],
      ]),
    );
    expect(await servedBy(10)).to.deep.equal(new Set(["A", "B"]));
    // Every host unhealthy: nothing to route to.
    gateway.role.applyCatalogue!(
      catalogue([
        [hostA.address, false],
        [hostB.address, false],
      ]),
    );
    expect((await get(gateway.frontDoor, "/public")).json().code).to.equal("EDGE_NODE_NO_HOSTS");
    gateway.role.applyCatalogue!(catalogue([]));
  });

  it("D54: entries appended to the blocklist extend the list in force, a removal recompiles it, an invalid appended entry changes nothing", async function () {
    const sites = [site(originUrl)];
    const admin = { hostname: "*", prefix: "/admin" };
    gateway.role.applyConfig!(applied(3, 0, { sites, blocklist: { ipRanges: ["127.0.0.2"], paths: [] } }));
    gateway.role.applyConfig!(
      applied(3, 1, { sites, blocklist: { ipRanges: ["127.0.0.2", "127.0.0.3"], paths: [admin] } }),
    );
    expect((await get(gateway.frontDoor, "/public", "127.0.0.2")).json().rule).to.equal("127.0.0.2");
    expect((await get(gateway.frontDoor, "/public", "127.0.0.3")).json().rule).to.equal("127.0.0.3");
    expect((await get(gateway.frontDoor, "/admin/x")).json().rule).to.equal("* /admin");
    expect(gateway.status()).to.deep.include({ blocklist: { ipRules: 2, pathRules: 1 } });
    expect(() =>
      gateway.role.applyConfig!(
        applied(3, 2, { sites, blocklist: { ipRanges: ["127.0.0.2", "127.0.0.3", "127.0.0.300"], paths: [admin] } }),
      ),
    ).to.throw(/blocklist\.ipRanges\[2\] "127\.0\.0\.300"/);
    expect(gateway.status()).to.deep.include({ blocklist: { ipRules: 2, pathRules: 1 } });
    gateway.role.applyConfig!(applied(3, 2, { sites, blocklist: { ipRanges: ["127.0.0.3"], paths: [admin] } }));
    expect((await get(gateway.frontDoor, "/public", "127.0.0.2")).status).to.equal(200);
    expect((await get(gateway.frontDoor, "/public", "127.0.0.3")).status).to.equal(403);
    expect(gateway.status()).to.deep.include({ blocklist: { ipRules: 1, pathRules: 1 } });
  });
});

describe("issue 17 Deliver 5: a blocklist entry added through the Network API reaches every gateway (D54)", function () {
  this.timeout(120_000);
  let rig: BlocklistRig;

  before(async function () {
    rig = await startBlocklistRig({ gateways: 2 });
  });

  after(async function () {
    await rig?.close();
    await closeAgents();
  });

  it("D54: POST /api/blocklist at the stargate is enforced by both real gateways (subscribed over gRPC) within 5 s", async function () {
    // Each gateway's front door polled from the address being blocked; 127.0.0.1 stays served.
    const times = await runTrials(rig, 3);
    for (const ms of times) expect(ms).to.be.below(5_000);
    for (const gateway of rig.gateways) {
      const reply = await get(gateway.frontDoor, "/", trialAddress(0), "any.test");
      expect(reply.json()).to.include({ code: "EDGE_NODE_BLOCKED", kind: "ip", rule: `${trialAddress(0)}/32` });
      expect((await get(gateway.frontDoor, "/", "127.0.0.1", "any.test")).json().code).to.equal(
        "EDGE_NODE_UNKNOWN_SITE",
      );
      expect(gateway.status()).to.deep.include({ blocklist: { ipRules: 3, pathRules: 0 } });
    }
  });
});
