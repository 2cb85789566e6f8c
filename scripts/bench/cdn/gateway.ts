/**
 * The CDN benchmark's gateway, in its own process, without a chain: the real HostRegistry (every host admitted:
 * the benchmark stands in for the chain view), job queue, hosts' links on an API server, and the real front door
 * (CdnFrontDoor, metrics, a sampled content check one in 100 as the daemon's default) for one site, `bench.test`,
 * whose origin is `--origin`. Queue and timeouts are the daemon's defaults. Usage and job counts go to memory.
 *
 *   node -r ts-node/register/transpile-only scripts/bench/cdn/gateway.ts --origin http://127.0.0.1:N
 *
 * Prints {"api": url, "front": url, "device": address} on its first line. GET /counts on the API server answers
 * the routable hosts, the jobs each host returned so far (what its score counts), the jobs' summed wait in the
 * queue for a host's free slot, and the usage billed. Exits on SIGTERM (writing a --cpu-prof profile).
 */
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Registry } from "prom-client";
import { privateKeyToAccount } from "viem/accounts";

import { CdnFrontDoor } from "../../../node/roles/gateway/cdn";
import { createCdnMetrics } from "../../../node/roles/gateway/cdnMetrics";
import { ContentChecker } from "../../../node/roles/gateway/contentCheck";
import { HostRegistry, routeLinks } from "../../../node/roles/gateway/hosts";
import { HostLinks, type HostLink } from "../../../node/roles/gateway/links";
import { JobQueue } from "../../../node/roles/gateway/queue";
import { SiteIndex, parseSites } from "../../../node/roles/gateway/sites";
import { WorkTracker } from "../../../node/workTracker";
import { initTracing } from "../../../offchain/common/tracing";
import { BENCH_CHAIN, BENCH_HOSTNAME, BENCH_OWNER, BENCH_SITE, benchLog, listen } from "./common";

const DEFAULTS = { queueMax: 10_000, queueWaitMs: 10_000, jobTimeoutMs: 10_000, linkPingMs: 10_000, verifyOneIn: 100 };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { origin: { type: "string" } } });
  if (!values.origin) throw new Error("--origin is required");
  const account = privateKeyToAccount(`0x${"51".repeat(32)}`);
  const signer = { account, chainId: BENCH_CHAIN };
  // As the daemon without an OTLP endpoint: trace context carried, no spans exported.
  const tracing = initTracing({ serviceName: "edge-gateway", env: {} });
  const hosts = new HostRegistry({
    signer,
    log: benchLog,
    chainAdmits: () => true,
    stale: () => false,
    serving: () => true,
  });
  const registry = new Registry();
  let onStart: ((waitedMs: number) => void) | undefined;
  const queue = new JobQueue<HostLink>(
    { maxLength: DEFAULTS.queueMax, maxWaitMs: DEFAULTS.queueWaitMs, onStart: (ms) => onStart?.(ms) },
    (link) => hosts.usable(link),
    (except) => hosts.anyRoutable(except),
  );
  const links = new HostLinks({ log: benchLog }, routeLinks(hosts, queue), DEFAULTS.linkPingMs);
  const metrics = createCdnMetrics(registry, {
    queueDepth: () => queue.depth,
    linkedHosts: () => hosts.routable().length,
    capacity: () => hosts.routable().reduce((sum, [, entry]) => sum + entry.link.capacity, 0),
  });
  const waits = { sumMs: 0, count: 0 };
  onStart = (waitedMs) => {
    metrics.queueWait.observe(waitedMs / 1000);
    waits.sumMs += waitedMs;
    waits.count += 1;
  };
  const counts: Record<string, number> = {};
  const usage: Record<string, bigint> = {};
  const sites = new SiteIndex(
    parseSites({
      sites: [{ id: BENCH_SITE, hostname: BENCH_HOSTNAME, owner: BENCH_OWNER, origin: values.origin }],
    }),
    "bench",
  );
  const door = new CdnFrontDoor(
    { signer, log: benchLog, serving: () => true, work: new WorkTracker(), tracing },
    {
      sites,
      queue,
      hosts,
      reports: { count: (host: string) => void (counts[host] = (counts[host] ?? 0) + 1) },
      usage: {
        addAll: (_owner: string, _service: string, lines: ReadonlyArray<readonly [string, bigint]>) =>
          void lines.forEach(([metric, q]) => (usage[metric] = (usage[metric] ?? 0n) + q)),
      },
      checker: new ContentChecker({
        oneIn: DEFAULTS.verifyOneIn,
        maxBytes: 10 * 1024 * 1024,
        timeoutMs: DEFAULTS.jobTimeoutMs,
      }),
      metrics,
    },
    DEFAULTS.jobTimeoutMs,
  );
  const api = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    const body =
      path === "/status"
        ? { device: account.address }
        : path === "/counts"
          ? {
              hosts: hosts.routable().map(([host]) => host),
              counts,
              queueWait: waits,
              usage: Object.fromEntries(Object.entries(usage).map(([k, v]) => [k, Number(v)])),
            }
          : undefined;
    response.writeHead(body ? 200 : 404, { "content-type": "application/json" });
    response.end(JSON.stringify(body ?? { error: "not found" }));
  });
  links.attach(api);
  const front = createServer((request, response) => door.handle(request, response));
  front.keepAliveTimeout = 65_000; // as the daemon's front door (frontDoor.ts)
  const [apiUrl, frontUrl] = [await listen(api), await listen(front)];
  console.log(JSON.stringify({ api: apiUrl, front: frontUrl, device: account.address }));
}

process.on("SIGTERM", () => process.exit(0));
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
