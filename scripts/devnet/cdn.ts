/**
 * Content delivery on the devnet (issue 16): one site, `demo.edge.test`, owned by customer A, whose origin is
 * origin.ts in its own process; both gateways open a front door for it (`--sites`, `--cdn-port 0`). Hosts are
 * spread over the gateways in turn (host-1, host-3, ... to gateway-2; host-2, host-4, ... to gateway-1) and run
 * CAPACITY jobs at once, except FAST_HOST, which runs FAST_CAPACITY: the fast host on gateway-1 must earn a
 * higher score than each of its peers there (cdnChecks.ts).
 *
 * Newton (load.ts, its own process) loads the site through each front door for most of the run: the cacheable
 * objects at CACHED_RATE each, and the no-store path at a rate that keeps the gateway's hosts busy about
 * UTILISATION of their slots once host-1 has left (each such job holds a slot for the origin's LIVE_LATENCY_MS).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import type { Chain } from "./chain";
import { type DevAccount, DevnetError, type StepLog, waitFor } from "./common";
import type { LoadPlan, LoadRow } from "./load";
import { LIVE_LATENCY_MS, OBJECTS } from "./origin";
import type { Options } from "./options";
import { type Processes, freePort, tsNode } from "./processes";
import { DYNAMIC_PLACEMENT, DYNAMIC_SITE } from "./spill";

export const SITE = { id: "demo", hostname: "demo.edge.test" };
export const FAST_HOST = "host-2";
export const FAST_CAPACITY = 8;
export const CAPACITY = 4;
/** The evicted host (timeline.ts): its slots are left out when sizing its gateway's load. */
export const EVICTED = "host-1";
/**
 * Share of a gateway's slots the no-store load keeps busy, counting the origin's answer only: a job also spends
 * the gateway's and host's own time (300 ms answers took 330-360 ms of a slot with the 2 cores shared at load 10),
 * so the slots are 75-85% busy, and the queue stays short.
 */
const UTILISATION = 0.7;
/** Requests per second of each cacheable object, per gateway. */
const CACHED_RATE = 3;

export const capacityOf = (host: string) => (host === FAST_HOST ? FAST_CAPACITY : CAPACITY);

/** The gateway each host links to, by the order of the nodes (stargate, gateway-1, gateway-2, host-1, ...). */
export function gatewayOf(nodes: Array<{ name: string; role: string }>, host: string): string {
  const gateways = nodes.filter((n) => n.role === "gateway");
  // Hosts past the fourth join host-1's gateway: the fast host's gateway keeps one peer (their scores are compared,
  // and with spare capacity a third host makes the comparison luck), and host-1's, which loses host-1 to eviction,
  // keeps three hosts for Edge Storage's repair (storage.ts).
  const n = Number(/^host-(\d+)$/.exec(host)?.[1] ?? 0);
  const i = nodes.findIndex((node) => node.name === (n > 4 ? "host-1" : host));
  return gateways[i % gateways.length].name;
}

/** Starts the origin (`origin.log`) and waits until it answers. */
export async function startOrigin(procs: Processes): Promise<string> {
  const url = `http://127.0.0.1:${await freePort()}`;
  procs.start("origin", process.execPath, [...tsNode, "scripts/devnet/origin.ts", new URL(url).port]);
  await waitFor("the origin", async () => (await fetch(`${url}/static/1k`)).status === 200, 60_000);
  return url;
}

/** The gateways' sites file (docs/cdn.md "Sites file"): the demo site and the dynamic one, owned by `owner`. */
export function writeSites(dir: string, owner: DevAccount, origin: string): string {
  const file = join(dir, "sites.json");
  const site = { ...SITE, owner: owner.address, origin, cache: { defaultTtlSeconds: 0 } };
  // The dynamic site of the spill step (spill.ts, D71): the same origin, placed by region.
  const dynamic = { ...DYNAMIC_SITE, owner: owner.address, origin, cache: { defaultTtlSeconds: 0 }, placement: DYNAMIC_PLACEMENT }; // prettier-ignore
  writeFileSync(file, JSON.stringify({ sites: [site, dynamic] }, null, 2));
  return file;
}

export interface Load {
  plan: LoadPlan;
  /** Resolves with Newton's figures once its run ended. */
  done: Promise<LoadRow[]>;
}

/**
 * Starts Newton's load through every gateway's front door (`frontDoors` by gateway name) until 1 s before the
 * last epoch ends, so all of it is in billing period 0 and the scores of every epoch.
 */
export async function startLoad(
  run: { dir: string; opts: Options },
  chain: Chain,
  nodes: Array<{ name: string; role: string }>,
  frontDoors: Record<string, string>,
  procs: Processes,
  log: StepLog,
): Promise<Load> {
  const { dir, opts } = run;
  const lastEnd = chain.genesis + opts.epochs * opts.epochSeconds;
  const durationMs = (lastEnd - (await chain.now()) - 1) * 1000;
  if (durationMs < 5_000)
    throw new DevnetError(
      `the epochs end in ${durationMs / 1000 + 1} s: too late to load the site (a very slow start)`,
    );
  const hosts = nodes.filter((n) => n.role === "host" && n.name !== EVICTED);
  const plan: LoadPlan = {
    hostname: SITE.hostname,
    durationMs,
    cachedRate: CACHED_RATE,
    objects: Object.keys(OBJECTS),
    gateways: Object.entries(frontDoors).map(([name, frontDoor]) => {
      const slots = hosts.filter((h) => gatewayOf(nodes, h.name) === name).reduce((s, h) => s + capacityOf(h.name), 0);
      return { name, frontDoor, liveRate: Math.round((UTILISATION * slots * 1000) / LIVE_LATENCY_MS) };
    }),
  };
  const planFile = join(dir, "newton-plan.json");
  const outFile = join(dir, "newton.json");
  writeFileSync(planFile, JSON.stringify(plan, null, 2));
  const done = procs
    .runToEnd("newton", process.execPath, [...tsNode, "scripts/devnet/load.ts", planFile, outFile])
    .then(() => JSON.parse(readFileSync(outFile, "utf8")) as LoadRow[]);
  done.catch(() => undefined); // awaited later; a failure also fails the devnet through procs.check()
  const rates = plan.gateways.map((g) => `${g.name} ${g.liveRate} + ${CACHED_RATE * plan.objects.length}`);
  log.step(
    `newton: ${SITE.hostname} through both front doors for ${Math.round(durationMs / 1000)} s, requests/s ` +
      `no-store + cached: ${rates.join(", ")} (no-store jobs take ${LIVE_LATENCY_MS} ms of a host's slot)`,
  );
  return { plan, done };
}
