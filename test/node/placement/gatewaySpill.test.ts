/**
 * Dynamic spill and return through a real gateway (createGateway: API app, host links, front door, its queue and
 * placement engine; D69): the gateway declares region A (DE/eu-central); host A (capacity 1) declares A, host B
 * (capacity 4) declares B (FR/eu-west), both signed into their registrations. A dynamic site with queueDepth 2
 * and a short hold: while A's queue is at most 2 deep its jobs wait for host A; the third waiting job spills the
 * site to B, which then serves them; /status (placement) and `edge_placement_spilled` show it; once A is idle and
 * the hold has passed the gateway's tick returns the site, and A serves again.
 */
import { expect } from "chai";
import { request } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import type { LocalAccount } from "viem";

import type { AppliedConfig } from "../../../node/context";
import { GatewayLink } from "../../../node/roles/host/link";
import { type NetworkConfig, type Region, emptyConfig } from "../../../offchain/common/protocol";
import { CHAIN, hostAccount, silentLog, waitUntil } from "../../shared/gatewayHarness";
import { type GatewayRole, startGatewayRole } from "../../shared/gatewayRole";

const A: Region = { country: "DE", region: "eu-central" };
const B: Region = { country: "FR", region: "eu-west" };
const KEY_A = "DE/eu-central";
const SITE = "shop.example.test";
const OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

const applied = (seq: number, doc: Partial<NetworkConfig>): AppliedConfig => ({
  version: 1,
  seq,
  hash: `0x${"00".repeat(32)}`,
  document: { ...emptyConfig(1), ...doc },
});

/** GET `path` of the site (`host`) at the front door: the status, which host served it, and the body. */
function get(
  front: string,
  path: string,
  host = SITE,
): Promise<{ status: number; servedBy: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${front}${path}`, { headers: { host } }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, servedBy: res.headers["x-served-by"] as string, body })); // prettier-ignore
    });
    req.on("error", reject);
    req.end();
  });
}

describe("gateway: a dynamic site spills to the next region and returns (D69)", function () {
  this.timeout(60_000);
  let gateway: GatewayRole;
  const links: GatewayLink[] = [];
  /** Host A's answers held until the test releases them. */
  const held: Array<() => void> = [];
  let holdA = true;

  const handler = (name: string) => (_request: unknown, response: Http2ServerResponse) => {
    const answer = () => {
      response.setHeader("x-edge-cache", "miss");
      response.setHeader("x-served-by", name);
      response.end("ok");
    };
    if (name === "A" && holdA) held.push(answer);
    else answer();
  };

  async function connect(account: LocalAccount, name: string, region: Region, capacity: number) {
    const link = new GatewayLink(
      { signer: { account, chainId: CHAIN }, log: silentLog },
      gateway.url,
      { capacity, region, publicUrl: () => "http://127.0.0.1:9", pingMs: 1_000, minBackoffMs: 20, maxBackoffMs: 200 },
      handler(name) as never,
    );
    links.push(link);
    const before = gateway.status().hosts;
    await link.want();
    await waitUntil(`host ${name} routable`, () => gateway.status().hosts > before);
  }

  before(async function () {
    gateway = await startGatewayRole({ key: `0x${"73".repeat(32)}`, config: { region: A } });
    await connect(hostAccount(0x31), "A", A, 1);
    await connect(hostAccount(0x32), "B", B, 4);
    const placement = { mode: "dynamic", queueDepth: 2, p99Ms: 600_000, holdMs: 200 };
    const site = { id: "shop", hostname: SITE, owner: OWNER, origin: "http://127.0.0.1:9", placement };
    // Enforced sites: one in the gateway's country but not its hosts' other one, one outside it (D69: 421).
    const enforced = (id: string, countries: string[]) => ({
      ...{ id, hostname: `${id}.example.test`, owner: OWNER, origin: "http://127.0.0.1:9" },
      placement: { mode: "enforced", countries },
    });
    const sites = [site, enforced("german", ["DE"]), enforced("french", ["FR"]), enforced("american", ["US"])];
    gateway.role.applyConfig!(applied(0, { sites } as Partial<NetworkConfig>));
  });

  after(async function () {
    holdA = false;
    for (const answer of held.splice(0)) answer();
    await Promise.all(links.map((link) => link.leave()));
    await gateway?.close();
  });

  const placement = () =>
    gateway.status().placement as { spilled: Array<{ site: string; region: string }>; regions: Record<string, { waiting: number }>; latencyMs: Record<string, number> }; // prettier-ignore

  it("waits for the own region's host up to queueDepth, spills past it, and comes back after the hold", async function () {
    // One job on host A (held): A is busy.
    const first = get(gateway.frontDoor, "/1");
    await waitUntil("host A holds a job", () => held.length === 1);
    // Two more wait for A (its queue depth 1, then 2: not over 2): B, idle, takes none of them.
    const waiting = [get(gateway.frontDoor, "/2"), get(gateway.frontDoor, "/3")];
    await waitUntil("two jobs waiting for A", () => placement().regions[KEY_A]?.waiting === 2);
    expect(placement().spilled).to.deep.equal([]);
    // The third makes A's queue 3 deep: the site spills to B, which serves the three waiting jobs.
    const third = get(gateway.frontDoor, "/4");
    const served = await Promise.all([...waiting, third]);
    expect(served.map((r) => [r.status, r.servedBy])).to.deep.equal([
      [200, "B"],
      [200, "B"],
      [200, "B"],
    ]);
    expect(placement().spilled.map(({ site, region }) => ({ site, region }))).to.deep.equal([{ site: "shop", region: KEY_A }]); // prettier-ignore
    const metrics = await gateway.registry.metrics();
    expect(metrics).to.include(`edge_placement_spilled{site="shop",region="${KEY_A}"} 1`);
    // While spilled (A busy or not), new jobs go to B.
    expect((await get(gateway.frontDoor, "/5")).servedBy).to.equal("B");

    // Load falls: A's job ends; after the hold the gateway's tick returns the site, and A serves again.
    holdA = false;
    for (const answer of held.splice(0)) answer();
    expect((await first).servedBy).to.equal("A");
    await waitUntil("the site returned to A", () => placement().spilled.length === 0, 10_000);
    expect(await gateway.registry.metrics()).not.to.include("edge_placement_spilled{");
    expect((await get(gateway.frontDoor, "/6")).servedBy).to.equal("A");
    // The gateway measured its latency to both regions from its links' pings (the dynamic order after its own).
    await waitUntil("the latency table", () => Object.keys(placement().latencyMs).length === 2, 10_000);
    expect(Object.keys(placement().latencyMs)).to.deep.equal([KEY_A, "FR/eu-west"].sort());
  });

  it("at the front door: 421 for an enforced site outside the gateway's country, its hosts only inside it", async function () {
    for (const id of ["french", "american"]) {
      const refused = await get(gateway.frontDoor, "/x", `${id}.example.test`);
      expect(refused.status, id).to.equal(421);
      expect(JSON.parse(refused.body), id).to.include({ code: "EDGE_NODE_PLACEMENT" });
      expect(JSON.parse(refused.body).error, id).to.equal(
        `this gateway (in DE/eu-central) does not serve the site: its placement is enforced ${id === "french" ? "FR" : "US"}`,
      );
    }
    // DE's site is served here, only by host A (DE), never by host B (FR, idle), even while A is busy.
    holdA = true;
    const jobs = [1, 2, 3].map((n) => get(gateway.frontDoor, `/g${n}`, "german.example.test"));
    await waitUntil("host A holds one job and two wait for it", () => held.length === 1 && gateway.status().queueDepth === 2); // prettier-ignore
    holdA = false;
    for (const answer of held.splice(0)) answer();
    expect((await Promise.all(jobs)).map((r) => [r.status, r.servedBy])).to.deep.equal([
      [200, "A"],
      [200, "A"],
      [200, "A"],
    ]);
  });
});
