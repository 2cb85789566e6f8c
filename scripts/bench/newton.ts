/**
 * Newton benchmark (test servers in their own process, loopback only):
 *   - maxRate.rps: the highest rate tried (1,000 to 12,000 requests/s, 3 s each after a warm-up) at which the
 *     schedule lag p99 stays at or under 2 ms against a server that answers at once, with every planned request
 *     answered and none dropped;
 *   - accuracy.fixed50ms.p50.errorMs / p99.errorMs: measured minus injected latency against a server that
 *     answers after 50 ms, 200 requests/s for 5 s;
 *   - vsAutocannon.p50.ratio: Newton's p50 over autocannon's on that same server in the same run (autocannon
 *     closed-loop with 10 connections, which is the same ~200 requests/s against a 50 ms server).
 * Writes bench/newton.json and the table in docs/newton.md.
 *
 *   npm run bench:newton
 */
import { join } from "node:path";
import autocannon from "autocannon";

import { LoadRun, type TargetSummary } from "../../offchain/newton/engine";
import { startTestServer } from "../lib/httpTestServer";
import { writeBenchResults } from "./report";

const ROOT = join(__dirname, "..", "..");
const OUT = join(ROOT, "bench", "newton.json");
const DOC = join(ROOT, "docs", "newton.md");
const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

async function load(url: string, rate: number, durationMs: number): Promise<TargetSummary> {
  const run = new LoadRun([{ id: "bench", url, method: "GET", headers: {} }], {
    rate,
    durationMs,
    maxConcurrency: 512,
    timeoutMs: 10_000,
  });
  const [summary] = await run.start();
  return summary;
}

async function main(): Promise<void> {
  const results: Record<string, number> = {};

  // ------------------------------------------------------------------------------------------ max rate
  const fast = await startTestServer("fixed", { delay: 0 });
  try {
    let best = 0;
    let misses = 0;
    for (const rate of [1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 8_000, 10_000, 12_000]) {
      await load(`${fast.url}/`, rate, 500); // warm-up: connections open, code optimised
      const s = await load(`${fast.url}/`, rate, 3_000);
      const ok = s.scheduleLagMs.p99 <= 2 && s.dropped === 0 && s.errors === 0 && s.responses === s.planned;
      console.log(
        `${rate} rps: lag p50 ${s.scheduleLagMs.p50} p99 ${s.scheduleLagMs.p99} ms, latency p99 ${s.latencyMs.p99} ms, ` +
          `${s.responses}/${s.planned} answered, ${s.dropped} dropped${ok ? "" : "  <- over"}`,
      );
      results[`lag.p99.ms@${rate}`] = s.scheduleLagMs.p99;
      if (ok) {
        best = rate;
        misses = 0;
      } else if (++misses === 2) break;
    }
    results["maxRate.rps"] = best;
  } finally {
    await fast.close();
  }

  // ------------------------------------------------------------------------------------------ accuracy
  const slow = await startTestServer("fixed", { delay: 50 });
  try {
    await load(`${slow.url}/`, 200, 1_000);
    const s = await load(`${slow.url}/`, 200, 5_000);
    results["accuracy.fixed50ms.p50.errorMs"] = round(s.latencyMs.p50 - 50);
    results["accuracy.fixed50ms.p99.errorMs"] = round(s.latencyMs.p99 - 50);
    results["accuracy.fixed50ms.requests"] = s.responses;
    // Closed loop, 10 connections against a 50 ms server: ~200 requests/s, the same load. (autocannon's own rate
    // limit, overallRate, reports latencies from when its limiter releases a request: p50 26 ms on this server.)
    const cannon = await autocannon({ url: `${slow.url}/`, connections: 10, duration: 5 });
    results["vsAutocannon.autocannon.p50.ms"] = cannon.latency.p50;
    results["vsAutocannon.newton.p50.ms"] = round(s.latencyMs.p50);
    results["vsAutocannon.p50.ratio"] = round(s.latencyMs.p50 / cannon.latency.p50);
  } finally {
    await slow.close();
  }

  await writeBenchResults(OUT, DOC, "newton-bench", results, TARGETS);
}

const TARGETS: Record<string, string> = {
  "maxRate.rps": ">= 5,000",
  "accuracy.fixed50ms.p50.errorMs": "<= 2",
  "accuracy.fixed50ms.p99.errorMs": "<= 2",
  "vsAutocannon.p50.ratio": "0.95 - 1.05",
};

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
