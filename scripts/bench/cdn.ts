/**
 * Content delivery benchmark (issue 16): the gateway's front door and a host, each in its own process, side by side
 * with nginx (Debian's package, proxy_cache) in front of the same origin, under the same open-loop load (Newton's
 * engine, in this process). One run, one machine: a load generator, a gateway, a host, an origin and nginx share
 * its cores. Figures (bench/cdn.json; the table in docs/cdn.md, section "Benchmark"):
 *   - cached1k.rps: the highest rate (250 to 12,000 requests/s, 3 s each after a 0.5 s warm-up) at which p99
 *     stays under 50 ms with every planned request answered 200, 100 cached 1 KB objects in turn through the
 *     gateway's front door and a host (capacity 16, the daemon's default); the same search against nginx
 *     (cached1k.nginx.rps), and cached1k.vsNginx.ratio = ours / nginx's;
 *   - cached1k.p50.ms / p99.ms at 2,000 requests/s for 5 s (and nginx's);
 *   - miss100k.p50.ms / p99.ms: 100 KB objects, every URL distinct (all misses), 200 requests/s for 5 s;
 *   - scoreSpread.fastOverSlow: a second gateway with two hosts of capacity 4 and 2, an origin answering after
 *     20 ms, distinct URLs (all misses) at 450 requests/s for 5 s (1.5 times what the two can return): the jobs
 *     each returned (what its score counts), the fast host's over the slow host's;
 *   - gatewayHop.overhead.p50.ms: p50 of one cached 1 KB object through the gateway and host, minus p50 of the
 *     same object asked of the host's job handler (HostJobs) directly over a local HTTP/2 connection with the
 *     x-edge-* headers the gateway sends, both at 500 requests/s for 5 s.
 *
 *   npm run bench:cdn
 *   CDN_BENCH_PROFILE=4000 npm run bench:cdn   # only ours at 4,000/s for 10 s with --cpu-prof; writes nothing
 *   CDN_BENCH_QUICK=1 npm run bench:cdn        # a short trial of every step; writes nothing
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";

import { ConfigSchema } from "../../node/config";
import { BENCH_HOSTNAME, BENCH_SITE, startScript, stopAll } from "./cdn/common";
import { type Load, P99_BOUND_MS, QUICK, describe, run, search } from "./cdn/load";
import { startNginx } from "./cdn/nginx";
import { printProfiles } from "./cdn/profile";
import { writeCdnDoc } from "./cdn/report";

const ROOT = join(__dirname, "..", "..");
const OUT = join(ROOT, "bench", "cdn.json");
const DOC = join(ROOT, "docs", "cdn.md");
const KB = 1024;
/** The host's capacity (jobs at once): the daemon's default unless CDN_BENCH_CAPACITY says otherwise. */
const CAPACITY = Number(
  process.env.CDN_BENCH_CAPACITY ?? (ConfigSchema.properties.capacity as unknown as { default: number }).default,
);
/** The gateway hop's rate: below what the gateway and host sustain here, so it measures the hop, not a queue. */
const HOP_RATE = 500;
const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;
const paths = (n: number, make: (i: number) => string) => Array.from({ length: n }, (_, i) => make(i));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Gateway {
  api: string;
  front: string;
  device: string;
}
interface Host {
  device: string;
  direct: string;
}
interface Counts {
  hosts: string[];
  counts: Record<string, number>;
  queueWait: { sumMs: number; count: number };
}

const counts = async (gateway: Gateway) => (await (await fetch(`${gateway.api}/counts`)).json()) as Counts;

/** A gateway and its hosts (capacities), each its own process; resolves once the gateway routes to all. */
async function startEdge(
  origin: string,
  capacities: number[],
  keys: number[],
  children: ChildProcess[],
  flags: string[] = [],
) {
  const gateway = (await startScript<Gateway>("gateway", ["--origin", origin], children, flags)).info;
  const hosts: Host[] = [];
  for (const [i, capacity] of capacities.entries()) {
    const args = ["--gateway", gateway.api, "--capacity", String(capacity), "--key", String(keys[i])];
    hosts.push((await startScript<Host>("host", args, children, flags)).info);
  }
  for (let i = 0; (await counts(gateway)).hosts.length < hosts.length; i++) {
    if (i > 500) throw new Error("the gateway does not route to its hosts");
    await sleep(10);
  }
  return { gateway, hosts };
}

/** The job request a gateway sends its host for `path` of the site: the host's direct server takes it as is. */
function directLoad(host: Host, origin: string, path: string): Load {
  const headers = {
    "x-edge-kind": "cdn",
    "x-edge-site": BENCH_SITE,
    "x-edge-origin": origin,
    "x-edge-ttl": "0",
    "x-edge-max-object": String(10 * 1024 * KB),
    "x-edge-job": "direct",
    "x-forwarded-host": BENCH_HOSTNAME,
    "x-forwarded-proto": "http",
  };
  return { url: host.direct, paths: [path], headers, h2c: true };
}

/** `work`'s result, and the mean wait of the jobs it sent through `gateway`'s queue for a host's free slot (ms). */
async function withQueueWait<T>(gateway: Gateway, work: () => Promise<T>): Promise<[T, number]> {
  const before = (await counts(gateway)).queueWait;
  const result = await work();
  const after = (await counts(gateway)).queueWait;
  return [result, round((after.sumMs - before.sumMs) / Math.max(1, after.count - before.count))];
}

async function cached(gateway: Gateway, ours: Load, nginx: Load, results: Record<string, number>) {
  for (const load of [ours, nginx]) await run(load, 500, 1_000); // every object fetched once: warm
  const mine = await search("ours", ours, 3_000);
  const theirs = await search("nginx", nginx, 3_000);
  results["cached1k.rps"] = mine.rps;
  results["cached1k.nginx.rps"] = theirs.rps;
  results["cached1k.nginx.searchTopReached"] = theirs.top ? 1 : 0;
  results["cached1k.vsNginx.ratio"] = theirs.rps > 0 ? round(mine.rps / theirs.rps) : 0;
  for (const [prefix, load] of [
    ["cached1k", ours],
    ["cached1k.nginx", nginx],
  ] as const) {
    await sleep(2_000);
    const [s, wait] = await withQueueWait(gateway, () => run(load, 2_000, 5_000));
    console.log(`${prefix} at 2,000 rps: ${describe(s)}`);
    if (load === ours) results["cached1k.queueWait.mean.ms"] = wait;
    results[`${prefix}.p50.ms`] = round(s.latencyMs.p50);
    results[`${prefix}.p99.ms`] = round(s.latencyMs.p99);
  }
}

async function misses(ours: Load, nginx: Load, results: Record<string, number>) {
  for (const [prefix, load] of [
    ["miss100k", ours],
    ["miss100k.nginx", nginx],
  ] as const) {
    const s = await run(load, 200, 5_000);
    console.log(`${prefix} at 200 rps: ${describe(s)}`);
    results[`${prefix}.p50.ms`] = round(s.latencyMs.p50);
    results[`${prefix}.p99.ms`] = round(s.latencyMs.p99);
    results[`${prefix}.answered200`] = s.statuses["200"] ?? 0;
  }
}

async function hop(ours: Load, direct: Load, results: Record<string, number>) {
  for (const load of [ours, direct]) await run(load, HOP_RATE, 1_000);
  const via = await run(ours, HOP_RATE, 5_000);
  const straight = await run(direct, HOP_RATE, 5_000);
  console.log(`hop via the gateway: ${describe(via)}\nhop direct: ${describe(straight)}`);
  results["gatewayHop.viaGateway.p50.ms"] = round(via.latencyMs.p50);
  results["gatewayHop.direct.p50.ms"] = round(straight.latencyMs.p50);
  results["gatewayHop.overhead.p50.ms"] = round(via.latencyMs.p50 - straight.latencyMs.p50);
  results["gatewayHop.rps"] = HOP_RATE;
}

async function spread(origin: string, children: ChildProcess[], results: Record<string, number>) {
  const { gateway, hosts } = await startEdge(origin, [4, 2], [0x41, 0x42], children);
  const [fast, slow] = hosts;
  const load: Load = {
    url: gateway.front,
    headers: { host: BENCH_HOSTNAME },
    paths: paths(2_250, (i) => `/spread/${i}?size=1024&delay=20`),
  };
  const s = await run(load, 450, 5_000);
  console.log(`saturation: ${describe(s)}`);
  const { counts: jobs } = await counts(gateway);
  console.log(`jobs returned: fast ${jobs[fast.device]}, slow ${jobs[slow.device]}`);
  results["scoreSpread.fast.jobs"] = jobs[fast.device] ?? 0;
  results["scoreSpread.slow.jobs"] = jobs[slow.device] ?? 0;
  results["scoreSpread.fastOverSlow"] = round((jobs[fast.device] ?? 0) / (jobs[slow.device] ?? 1));
}

async function main(): Promise<void> {
  const children: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), "edge-cdn-bench-"));
  const profile = Number(process.env.CDN_BENCH_PROFILE ?? 0);
  const flags = profile > 0 ? ["--cpu-prof", `--cpu-prof-dir=${join(dir, "profiles")}`] : [];
  const results: Record<string, number> = {
    "machine.cores": cpus().length,
    "machine.load1.start": loadavg()[0],
    "cached1k.host.capacity": CAPACITY,
  };
  try {
    const origin = (await startScript<{ url: string }>("origin", [], children)).info.url;
    const { gateway, hosts } = await startEdge(origin, [CAPACITY], [0x31], children, flags);
    const site = { host: BENCH_HOSTNAME };
    const objects = paths(100, (i) => `/cached/${i}?size=${KB}`);
    const ours: Load = { url: gateway.front, headers: site, paths: objects };
    if (profile > 0) {
      await run(ours, 500, 1_000);
      const [s, wait] = await withQueueWait(gateway, () => run(ours, profile, 10_000));
      console.log(`ours at ${profile} rps, profiled: ${describe(s)}; queue wait mean ${wait} ms`);
      await stopAll(children);
      return printProfiles(join(dir, "profiles"));
    }
    const nginx: Load = { ...ours, url: await startNginx(join(dir, "nginx"), origin, children) };
    await cached(gateway, ours, nginx, results);
    const hopPath = "/hop?size=1024";
    await hop({ ...ours, paths: [hopPath] }, directLoad(hosts[0], origin, hopPath), results);
    const big = (prefix: string) => paths(1_000, (i) => `/${prefix}/${i}?size=${100 * KB}`);
    await misses({ ...ours, paths: big("miss") }, { ...nginx, paths: big("miss-nginx") }, results);
    await spread(origin, children, results);
  } finally {
    await stopAll(children);
    rmSync(dir, { recursive: true, force: true });
  }
  if (profile > 0 || QUICK) return console.table(results);
  results["machine.load1.end"] = loadavg()[0];
  const sorted = Object.fromEntries(Object.entries(results).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(OUT, JSON.stringify(sorted, null, 2) + "\n");
  console.table(sorted);
  await writeCdnDoc(DOC, sorted, { p99BoundMs: P99_BOUND_MS, cpu: cpus()[0]?.model ?? "unknown" });
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
