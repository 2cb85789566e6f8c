/**
 * The devnet's Edge DNS (issue 18): the stargate answers DNS on its own port, for customer A's zone (published with
 * configuration version 1) and for the demo site's hostname, which resolves to the serving gateways (each listens on
 * its own loopback address). The devnet shows, with Debian's `dig`:
 * - the site's name returns every serving gateway; a gateway drained through the Network API (the rollout's first
 *   step, `node.drain`) drops out of the answers, and comes back when undrained;
 * - customer A's zone answers A, MX and TXT, NXDOMAIN with its SOA for a missing name, REFUSED outside our zones.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { request } from "undici";
import type { Address } from "viem";

import type { Zone } from "../../offchain/common/protocol";
import { DevnetError, type StepLog, waitFor } from "./common";
import { teamHeaders } from "./control";

const run = promisify(execFile);

/** Customer A's zone: served by the stargate, its queries billed to A as `dns` `queries`. */
export const ZONE_NAME = "customer-a.test";
export function demoZone(owner: Address): Zone {
  return {
    name: ZONE_NAME,
    owner,
    ttl: 300,
    soa: {
      mname: `ns.${ZONE_NAME}`,
      rname: `hostmaster.${ZONE_NAME}`,
      refresh: 3600,
      retry: 600,
      expire: 86_400,
      minimum: 60,
    },
    records: [
      { name: "@", type: "NS", data: `ns.${ZONE_NAME}` },
      { name: "ns", type: "A", data: "127.0.0.1" },
      { name: "www", type: "A", data: "192.0.2.10" },
      { name: "@", type: "MX", data: { preference: 10, exchange: `mail.${ZONE_NAME}` } },
      { name: "mail", type: "A", data: "192.0.2.25" },
      { name: "@", type: "TXT", data: "v=spf1 mx -all" },
      { name: "docs", type: "CNAME", data: "demo.edge.test" },
    ],
  };
}

export interface DigAnswer {
  status: string;
  answers: string[];
}

/** `dig @127.0.0.1 -p <port> <name> <type>`: the status and the answer section's data, sorted. */
export async function dig(port: number, name: string, type = "A"): Promise<DigAnswer> {
  const { stdout } = await run(
    "dig",
    ["@127.0.0.1", "-p", String(port), name, type, "+noall", "+comments", "+answer"],
    {
      timeout: 10_000,
    },
  );
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1];
  if (!status) throw new DevnetError(`dig printed no status for ${name} ${type}: ${stdout}`);
  const answers = stdout
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith(";"))
    .map((line) => line.split(/\s+/).slice(4).join(" "))
    .sort();
  return { status, answers };
}

export interface DnsShown {
  /** The site's addresses with every gateway serving, with one drained, and after it was undrained. */
  site: { all: string[]; drained: string[]; back: string[]; drainedGateway: string; dropMs: number };
  zone: Record<string, DigAnswer>;
  /** Queries of customer A's zone the stargate answered (not REFUSED): what A's bill must carry as dns queries. */
  billable: number;
}

/**
 * Checks the site's answers name every serving gateway and only those, drains the last gateway out of DNS through
 * the Network API and waits until no answer names it (and back), then queries customer A's zone.
 */
export async function showDns(
  ctx: { dnsPort: number; stargateUrl: string; password: string; site: string; log: StepLog },
  gateways: Array<{ name: string; address: Address; ip: string }>,
): Promise<DnsShown> {
  const { dnsPort, site } = ctx;
  const ips = gateways.map((g) => g.ip).sort();
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  const answersFor = async (expected: string[]) =>
    waitFor(
      `dig ${site} naming ${expected.join(", ")}`,
      async () => {
        const answer = await dig(dnsPort, site);
        return answer.status === "NOERROR" && same(answer.answers, expected) ? answer.answers : undefined;
      },
      30_000,
    );
  const all = await answersFor(ips);
  const drainedGateway = gateways[gateways.length - 1];
  const auth = await teamHeaders(ctx.stargateUrl, ctx.password);
  const path = `${ctx.stargateUrl}/api/nodes/${drainedGateway.address}/drain`;
  const started = Date.now();
  const drain = await request(path, { method: "POST", headers: auth, body: "{}" });
  const drainBody = await drain.body.text();
  if (drain.statusCode >= 300) throw new DevnetError(`POST ${path} answered ${drain.statusCode}: ${drainBody}`);
  const drained = await answersFor(ips.filter((ip) => ip !== drainedGateway.ip));
  const dropMs = Date.now() - started;
  const undrain = await request(path, { method: "DELETE", headers: { authorization: auth.authorization } });
  const undrainBody = await undrain.body.text();
  if (undrain.statusCode >= 300) throw new DevnetError(`DELETE ${path} answered ${undrain.statusCode}: ${undrainBody}`);
  const back = await answersFor(ips);
  ctx.log.step(
    `Edge DNS: dig @127.0.0.1 -p ${dnsPort} ${site} -> ${all.join(", ")}; ${drainedGateway.name} drained through ` +
      `the Network API -> ${drained.join(", ")} after ${dropMs} ms; undrained -> ${back.join(", ")}`,
  );
  const zone: Record<string, DigAnswer> = {};
  for (const [name, type] of [
    [`www.${ZONE_NAME}`, "A"],
    [ZONE_NAME, "MX"],
    [ZONE_NAME, "TXT"],
    [`missing.${ZONE_NAME}`, "A"],
    ["example.org", "A"],
  ])
    zone[`${name} ${type}`] = await dig(dnsPort, name, type);
  const expect: Record<string, string> = {
    [`www.${ZONE_NAME} A`]: "NOERROR",
    [`${ZONE_NAME} MX`]: "NOERROR",
    [`${ZONE_NAME} TXT`]: "NOERROR",
    [`missing.${ZONE_NAME} A`]: "NXDOMAIN",
    ["example.org A"]: "REFUSED",
  };
  for (const [query, status] of Object.entries(expect))
    if (zone[query].status !== status)
      throw new DevnetError(`dig ${query} answered ${zone[query].status}, not ${status}`);
  ctx.log.step(
    `Edge DNS: customer A's zone ${ZONE_NAME}: ` +
      Object.entries(zone)
        .map(([q, a]) => `${q} ${a.status}${a.answers.length ? ` ${a.answers.join(" / ")}` : ""}`)
        .join("; "),
  );
  const billable = Object.entries(zone).filter(([q, a]) => q.includes(ZONE_NAME) && a.status !== "REFUSED").length;
  return { site: { all, drained, back, drainedGateway: drainedGateway.name, dropMs }, zone, billable };
}
