/**
 * Edge DNS benchmark (issue 18, D60): bench/dns.json and the table in docs/dns.md "Benchmark".
 *
 * - `qps`: the highest rate dnsperf (Debian dnsperf 2.10, on core 0) gets answered with no query lost from our DNS
 *   server (node/roles/stargate/dns.ts in a process of its own pinned to core 1, `taskset -c 1`) serving a
 *   customer's zone and site names (dns/fixture.ts); `vsKnot.ratio`: that over Knot's (knotd, one UDP worker, also
 *   pinned to core 1) serving the same zones on the same machine; `p99.ms` (and p50) at half of `qps`, from
 *   dnsperf's per-query latencies (dns/perf.ts);
 * - `rollout.*`: 2 gateways and 1 stargate rolled (update = restart the daemon's process) on the network of
 *   scripts/lib/rolloutNet.ts while Newton loads the site at a constant rate through names the stargates resolve
 *   behind the anycast router: failed requests (must be 0), seconds, each node's seconds, latency before and during.
 *
 *   npm run bench:dns
 *   DNS_BENCH_QUICK=1 npm run bench:dns   # short runs; prints, writes nothing
 */
import { loadavg } from "node:os";
import { join } from "node:path";

import { rollUnderLoad } from "../lib/rolloutLoad";
import { startRolloutNet } from "../lib/rolloutNet";
import { measureDnsServers } from "./dns/measure";
import { writeBenchResults } from "./report";

const ROOT = join(__dirname, "..", "..");
const QUICK = process.env.DNS_BENCH_QUICK === "1";
const RATE = 20;

const TARGETS: Record<string, string> = {
  qps: "reported (one core, no loss)",
  "vsKnot.ratio": ">= 0.3",
  "vsKnot.knotQps": "reported (knotd, one UDP worker, one core)",
  "p99.ms": "reported (at 50% of qps)",
  "p50.ms": "reported (at 50% of qps)",
  "rollout.failedRequests": "0",
  "rollout.seconds": "reported (2 gateways, 1 stargate)",
  "rollout.requests": `reported (${RATE}/s through DNS)`,
};

async function measureRollout(): Promise<Record<string, number>> {
  const net = await startRolloutNet();
  try {
    const order = ["gateway-1", "gateway-2", "stargate-1"];
    const result = await rollUnderLoad(net, { order, rate: RATE, log: console.log });
    if (!result.rollout.ok) throw new Error(`the rollout failed: ${JSON.stringify(result.rollout.failure)}`);
    console.log(
      "failed requests by step:",
      result.failuresByStep,
      "DNS answers other than NOERROR:",
      result.dnsProblems,
    );
    const figures: Record<string, number> = {
      "rollout.failedRequests": result.failedRequests,
      "rollout.seconds": Math.round(result.rollout.seconds * 10) / 10,
      "rollout.requests": result.requests,
      "rollout.drainedAnswers": result.drainedAnswers.length,
      "rollout.latency.before.p50.ms": result.latency.before.p50,
      "rollout.latency.before.p99.ms": result.latency.before.p99,
      "rollout.latency.during.p50.ms": result.latency.during.p50,
      "rollout.latency.during.p99.ms": result.latency.during.p99,
    };
    for (const [name, seconds] of Object.entries(result.nodeSeconds)) figures[`rollout.node.${name}.seconds`] = seconds;
    TARGETS["rollout.drainedAnswers"] = "0 (DNS answers naming a gateway while drained)";
    return figures;
  } finally {
    await net.close();
  }
}

async function main(): Promise<void> {
  const load = loadavg()[0].toFixed(2);
  console.log(`load average at start: ${load} (the DNS figures assume the machine is otherwise idle)`);
  const results: Record<string, number> = {};
  Object.assign(results, await measureDnsServers({ seconds: QUICK ? 1 : 5 }));
  console.log(results);
  Object.assign(results, await measureRollout());
  results["loadAverage.start"] = Number(load);
  TARGETS["loadAverage.start"] = "the machine's 1-minute load when the run started (2 cores)";
  if (QUICK) return void console.log(results);
  await writeBenchResults(join(ROOT, "bench", "dns.json"), join(ROOT, "docs", "dns.md"), "dns-bench", results, TARGETS);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
