/**
 * bench:dns's fixture (D60): one customer zone and a few site names, served by our DNS server and, rendered as
 * master files, by Knot; the query mix dnsperf sends to both (zone names of every type, a CNAME, NXDOMAIN, NODATA,
 * and site names, which are most of a CDN's queries).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import type { Catalogue } from "../../../node/context";
import type { NetworkConfig, Zone } from "../../../offchain/common/protocol";
import { emptyConfig } from "../../../offchain/common/protocol";

export const OWNER = "0x00000000000000000000000000000000000000c1";
export const SITES = ["www.shop.test", "cdn.news.test", "static.blog.test"];
export const GATEWAYS = ["127.0.0.11", "127.0.0.12"];
export const SITE_TTL = 5;
export const VERSION = 7;

const soa = {
  mname: "ns.edge.test",
  rname: "hostmaster.edge.test",
  refresh: 3600,
  retry: 600,
  expire: 86400,
  minimum: 60,
};

export const ZONE: Zone = {
  name: "bench.example",
  owner: OWNER,
  ttl: 300,
  soa,
  records: [
    { name: "@", type: "NS", data: "ns.edge.test" },
    { name: "@", type: "A", data: "192.0.2.1" },
    { name: "@", type: "MX", data: { preference: 10, exchange: "mail.bench.example" } },
    { name: "@", type: "TXT", data: "v=spf1 mx -all" },
    { name: "www", type: "A", data: "192.0.2.10" },
    { name: "www", type: "A", data: "192.0.2.11" },
    { name: "www", type: "AAAA", data: "2001:db8::10" },
    { name: "mail", type: "A", data: "192.0.2.25" },
    { name: "alias", type: "CNAME", data: "www.bench.example" },
    ...Array.from({ length: 50 }, (_, i) => ({ name: `host${i}`, type: "A" as const, data: `198.51.100.${i + 1}` })),
  ],
};

export function benchConfig(): NetworkConfig {
  return { ...emptyConfig(VERSION), zones: [ZONE], sites: SITES.map((hostname) => ({ hostname })) };
}

export function benchCatalogue(): Catalogue {
  return {
    atMs: Date.now(),
    endpoints: GATEWAYS.map((ip, i) => ({
      device: `0x${String(i + 1).repeat(40)}` as `0x${string}`,
      role: "gateway" as const,
      url: `http://${ip}:8080`,
      healthy: true,
      version: VERSION,
    })),
  };
}

/** The site names as zones of their own, for Knot (our server synthesizes these from the configuration). */
export function siteZones(): Zone[] {
  return SITES.map((name) => ({
    name,
    owner: OWNER,
    ttl: SITE_TTL,
    soa: { ...soa, minimum: SITE_TTL },
    records: GATEWAYS.map((data) => ({ name: "@", type: "A" as const, data })),
  }));
}

/** The query mix: half site names, half the customer zone (A, AAAA, MX, TXT, CNAME, NXDOMAIN, NODATA). */
export function writeQueries(dir: string): string {
  const zone = [
    "www.bench.example A",
    "www.bench.example AAAA",
    "bench.example MX",
    "bench.example TXT",
    "alias.bench.example A",
    "nothing.bench.example A",
    "mail.bench.example AAAA",
    ...Array.from({ length: 7 }, (_, i) => `host${i * 7}.bench.example A`),
  ];
  const sites = SITES.flatMap((name) => Array(Math.ceil(zone.length / SITES.length)).fill(`${name} A`));
  const lines = [...zone, ...sites.slice(0, zone.length)];
  const file = join(dir, "queries.txt");
  writeFileSync(file, lines.join("\n") + "\n");
  return file;
}
