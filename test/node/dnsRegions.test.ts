/**
 * Edge DNS by region (issue 20, D69): the configuration's regions table places a client (its EDNS client subnet,
 * else the resolver's address), site answers name the nearest region's gateways among those the site's placement
 * allows, and an enforced site is never answered with a gateway outside its countries. The last test asks the real
 * server with dig (dnsutils), from loopback source addresses standing for two regions.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";

import { expect } from "chai";
import * as packet from "dns-packet";
import type { Address } from "viem";

import type { NetworkConfig } from "../../offchain/common/protocol";
import type { Catalogue } from "../../node/context";
import { RCODE, answer, answerClient } from "../../node/roles/stargate/dnsAnswer";
import { DnsIndexer } from "../../node/roles/stargate/dnsIndex";
import { ClientRegions } from "../../node/roles/stargate/dnsRegions";
import { type DnsServer, createDns } from "../../node/roles/stargate/dns";
import { respond } from "../../node/roles/stargate/dnsWire";
import { SITE, decode, dnsConfig, dnsContext, gateway, networkConfig, query } from "./dnsFixture";

const run = promisify(execFile);
const DE = { country: "DE", region: "eu-central" };
const US = { country: "US", region: "us-east" };
const REGIONS: NetworkConfig["regions"] = {
  clients: [
    { range: "127.0.0.0/8", region: "US/us-east" },
    { range: "127.0.1.0/24", region: "DE/eu-central" },
    { range: "127.0.2.0/24", region: "FR/eu-west" },
    { range: "2001:db8::/32", region: "DE/eu-central" },
  ],
  latency: [
    { from: "FR/eu-west", to: "DE/eu-central", ms: 12 },
    { from: "FR/eu-west", to: "US/us-east", ms: 80 },
  ],
};
// gateway 1 (127.0.0.11) in DE, 2 (.12) in US, 3 (.13) undeclared.
const endpoints = (healthy = [true, true, true]): Catalogue => ({
  atMs: 1,
  endpoints: [
    { ...gateway(1, healthy[0]), region: DE },
    { ...gateway(2, healthy[1]), region: US },
    gateway(3, healthy[2]),
  ],
});
const ENFORCED = "gdpr.edge.test";
const STATIC = "pinned.edge.test";
const BROKEN = "broken.edge.test";

function config(): NetworkConfig {
  const base = networkConfig(7, { regions: REGIONS });
  return {
    ...base,
    sites: [
      ...base.sites,
      { id: "gdpr", hostname: ENFORCED, placement: { mode: "enforced", countries: ["DE", "FR"] } },
      { id: "pinned", hostname: STATIC, placement: { mode: "static", gateways: [gateway(2).device] } },
      { id: "broken", hostname: BROKEN, placement: { mode: "enforced", countries: ["EU"] } },
    ],
  };
}

const log = { warn: () => undefined };
const index = (cat = endpoints(), cfg = config()) =>
  new DnsIndexer({ siteTtl: 5, nameserver: "ns.edge.test", log }).current(cfg, cat)!;
const addresses = (name: string, client: string | undefined, idx = index()) => {
  const reply = answer(idx, name, "A", 0, client);
  return reply.rcode === RCODE.NOERROR ? reply.answers.map((a) => (a as { data: string }).data).sort() : reply.rcode;
};

describe("Edge DNS by region (issue 20, D69)", function () {
  this.timeout(30_000);

  it("places a client by the longest matching range, a client subnet only by ranges no longer than it", () => {
    const regions = new ClientRegions(REGIONS);
    expect(regions.regionOf("127.0.1.9")).to.deep.equal({ region: "DE/eu-central", scope: 24 });
    expect(regions.regionOf("127.9.9.9")).to.deep.equal({ region: "US/us-east", scope: 8 });
    expect(regions.regionOf("::ffff:127.0.1.9")).to.deep.equal({ region: "DE/eu-central", scope: 24 });
    expect(regions.regionOf("2001:db8:1::5")).to.deep.equal({ region: "DE/eu-central", scope: 32 });
    // A /16 subnet cannot be placed inside a /24 range: only the /8 holds it.
    expect(regions.regionOf("127.0.0.0", 16)).to.deep.equal({ region: "US/us-east", scope: 8 });
    expect(regions.regionOf("10.0.0.1")).to.equal(undefined);
    expect(regions.regionOf("not an address")).to.equal(undefined);
    expect(regions.orderFrom("FR/eu-west", ["US/us-east", "AU/ap-southeast", "DE/eu-central"])).to.deep.equal([
      "DE/eu-central",
      "US/us-east",
      "AU/ap-southeast",
    ]);
    expect(new ClientRegions(undefined).empty).to.equal(true);
  });

  it("answers a client with its own region's gateways, else the nearest by latency; an unplaced client with all", () => {
    expect(addresses(SITE, "DE/eu-central")).to.deep.equal(["127.0.0.11"]);
    expect(addresses(SITE, "US/us-east")).to.deep.equal(["127.0.0.12"]);
    expect(addresses(SITE, "FR/eu-west")).to.deep.equal(["127.0.0.11"]);
    expect(addresses(SITE, undefined)).to.deep.equal(["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
    // DE's gateway unhealthy: FR's nearest left is US.
    expect(addresses(SITE, "FR/eu-west", index(endpoints([false, true, true])))).to.deep.equal(["127.0.0.12"]);
    // Without a regions table, regions are ignored.
    const plain = index(endpoints(), { ...config(), regions: undefined });
    expect(addresses(SITE, undefined, plain)).to.deep.equal(["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
  });

  it("never answers an enforced site with a gateway outside its countries: SERVFAIL when none is left", () => {
    for (const client of ["DE/eu-central", "US/us-east", "FR/eu-west", undefined])
      expect(addresses(ENFORCED, client), String(client)).to.deep.equal(["127.0.0.11"]);
    expect(addresses(ENFORCED, "US/us-east", index(endpoints([false, true, true])))).to.equal(RCODE.SERVFAIL);
    // A static site: only the gateway it names, wherever the client is.
    for (const client of ["DE/eu-central", undefined]) expect(addresses(STATIC, client)).to.deep.equal(["127.0.0.12"]);
    // A malformed placement: the name is not served as a site at all (gateways refuse it too).
    expect(answer(index(), BROKEN, "A", 0, "DE/eu-central").rcode).to.equal(RCODE.REFUSED);
  });

  describe("on the wire", () => {
    const ecs = (ip: string, sourcePrefixLength: number, family = 1, scopePrefixLength = 0) =>
      ({
        additionals: [
          {
            name: ".",
            type: "OPT" as const,
            udpPayloadSize: 1232,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [{ code: 8, family, sourcePrefixLength, scopePrefixLength, ip }],
          },
        ],
      }) as unknown as Partial<packet.Packet>;
    const subnetOf = (bytes: Buffer) =>
      (decode(bytes).additionals?.find((a) => a.type === "OPT") as packet.OptAnswer | undefined)?.options?.find(
        (o) => o.code === 8,
      ) as { sourcePrefixLength: number; scopePrefixLength: number } | undefined;

    it("places a query by its client subnet, echoes it with the answer's scope, and refuses a malformed one", () => {
      const idx = index();
      const lookup = (name: string, type: string, subnet?: { ip: string; sourcePrefixLength: number }) =>
        answerClient(idx, name, type, 0, "10.9.9.9", subnet);
      const de = respond(query(SITE, "A", ecs("127.0.1.0", 24)), false, lookup).response!;
      expect(decode(de).answers!.map((a) => (a as { data: string }).data)).to.deep.equal(["127.0.0.11"]);
      expect(subnetOf(de)).to.include({ sourcePrefixLength: 24, scopePrefixLength: 24 });
      const zone = respond(query("www.example.com", "A", ecs("127.0.1.0", 24)), false, lookup).response!;
      expect(subnetOf(zone)).to.include({ scopePrefixLength: 0 });
      for (const bad of [ecs("127.0.1.0", 40), ecs("127.0.1.0", 24, 1, 24), ecs("127.0.1.0", 24, 3)]) {
        const outcome = respond(query(SITE, "A", bad), false, lookup);
        expect(outcome.rcode, JSON.stringify(bad.additionals)).to.equal(RCODE.FORMERR);
      }
    });

    it("dig from two regions' addresses, and with +subnet, gets each region's gateway from the real server", async function () {
      if (!existsSync("/usr/bin/dig")) this.skip();
      const ctx = dnsContext();
      const cfg = config();
      const cat = endpoints();
      const server: DnsServer = createDns(ctx, dnsConfig(), {
        config: () => cfg,
        catalogue: () => cat,
        bill: (_owner: Address) => undefined,
      })!;
      await server.start();
      try {
        const port = String(server.address()!.port);
        const dig = async (...args: string[]) =>
          (await run("dig", ["@127.0.0.1", "-p", port, "+short", "+tries=1", "+time=2", ...args])).stdout
            .trim()
            .split("\n")
            .sort();
        expect(await dig("-b", "127.0.1.5", SITE, "A")).to.deep.equal(["127.0.0.11"]);
        expect(await dig("-b", "127.0.0.1", SITE, "A")).to.deep.equal(["127.0.0.12"]);
        expect(await dig("-b", "127.0.0.1", "+subnet=127.0.2.0/24", SITE, "A")).to.deep.equal(["127.0.0.11"]);
        expect(await dig("-b", "127.0.0.1", ENFORCED, "A")).to.deep.equal(["127.0.0.11"]);
      } finally {
        await server.stop();
      }
    });
  });
});
