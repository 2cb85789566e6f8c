/**
 * healthChecks.targetsPerCore (issue 17 benchmark, D55): how many endpoints one stargate's health checker
 * (node/roles/stargate/health.ts) checks every interval (10 s) on one core with check latency p99 under 100 ms.
 *
 * The endpoints are served by ONE child process (spawned, so it does not share the checker's core): one HTTP
 * server on 0.0.0.0 answering GET /ready like a node (200 {"ready":true}, keep-alive 72 s as fastify's), reached as
 * distinct endpoints http://127.0.X.Y:<port> (each its own origin, connection and record in the checker). The
 * checker runs in this process, one interval of warm-up (connections opened), then `seconds` measured.
 *
 * A size passes when every check of the window succeeded, none waited in the queue or took longer than the
 * interval, each endpoint was checked once per interval (99 % of the expected count at least), the p99 latency is
 * under 100 ms, and the process's CPU time (process.cpuUsage, user + system) over the window is at most one core.
 * `targets` may be a list of sizes tried in order until one fails; targetsPerCore is the largest size that passed
 * (0 if none). `projectedTargetsPerCore` divides it by the share of a core it used (an extrapolation, labelled so).
 *
 * Standalone: npx ts-node --transpile-only scripts/bench/control/health.ts [targets,...] [seconds] [intervalMs]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";

import { HealthChecker, type HealthTarget } from "../../../node/roles/stargate/health";

const SERVER = `
const http = require("node:http");
const server = http.createServer((req, res) => {
  if (req.url === "/ready") { res.setHeader("content-type", "application/json"); res.end('{"ready":true}'); return; }
  if (req.url === "/health") { res.end('{"ok":true}'); return; }
  res.statusCode = 404; res.end();
});
server.keepAliveTimeout = 72000;
server.headersTimeout = 75000;
server.maxConnections = 60000;
server.listen(0, "0.0.0.0", () => process.stdout.write(server.address().port + "\\n"));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
`;

export interface HealthFigures {
  "healthChecks.targetsPerCore": number;
  "healthChecks.projectedTargetsPerCore": number;
  "healthChecks.intervalMs": number;
  "healthChecks.runs": SizeFigures[];
}

export interface SizeFigures {
  targets: number;
  passed: boolean;
  checks: number;
  expectedChecks: number;
  failed: number;
  "p50.ms": number;
  "p99.ms": number;
  "max.ms": number;
  "maxWait.ms": number;
  cpuCores: number;
  checksPerSecond: number;
}

const quantile = (sorted: Float64Array, q: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const round = (n: number, digits = 2) => Number(n.toFixed(digits));

async function startServer(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ["-e", SERVER], { stdio: ["pipe", "pipe", "inherit"] });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  return { child, port: Number(line.toString().trim()) };
}

/** `count` endpoints, each its own loopback address on the one server's port. */
function endpoints(count: number, port: number): HealthTarget[] {
  return Array.from({ length: count }, (_, i) => ({
    device: `0x${(i + 1).toString(16).padStart(40, "0")}`,
    role: "host",
    url: `http://127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}:${port}`,
    version: 1,
  }));
}

async function measureSize(targets: number, seconds: number, intervalMs: number, port: number): Promise<SizeFigures> {
  const list = endpoints(targets, port);
  const expectedChecks = Math.floor((targets * seconds * 1000) / intervalMs);
  const latencies = new Float64Array(Math.ceil(expectedChecks * 1.5) + 16);
  let measuring = false;
  let checks = 0;
  let failed = 0;
  let maxWait = 0;
  const checker = new HealthChecker({
    targets: () => list,
    admits: () => true,
    intervalMs,
    onCheck(latencyMs, result, waitMs) {
      if (!measuring) return;
      if (checks < latencies.length) latencies[checks] = latencyMs;
      checks++;
      if (result !== "ready") failed++;
      if (waitMs > maxWait) maxWait = waitMs;
    },
  });
  checker.start();
  await new Promise((resolve) => setTimeout(resolve, intervalMs)); // warm-up: every endpoint connected once
  const cpu = process.cpuUsage();
  const wallStart = performance.now();
  measuring = true;
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  measuring = false;
  const wallMs = performance.now() - wallStart;
  const used = process.cpuUsage(cpu);
  await checker.stop();
  const sorted = latencies.subarray(0, Math.min(checks, latencies.length)).sort();
  const cpuCores = (used.user + used.system) / 1000 / wallMs;
  const p99 = quantile(sorted, 0.99);
  const max = quantile(sorted, 1);
  const passed =
    failed === 0 && checks >= 0.99 * expectedChecks && p99 < 100 && max + maxWait < intervalMs && cpuCores <= 1;
  return {
    targets,
    passed,
    checks,
    expectedChecks,
    failed,
    "p50.ms": round(quantile(sorted, 0.5)),
    "p99.ms": round(p99),
    "max.ms": round(max),
    "maxWait.ms": round(maxWait),
    cpuCores: round(cpuCores, 4),
    checksPerSecond: round((checks * 1000) / wallMs, 1),
  };
}

export async function measureHealthChecks({
  targets = [2_500, 5_000, 10_000] as number | number[],
  seconds = 20,
  intervalMs = 10_000,
} = {}): Promise<HealthFigures> {
  const sizes = Array.isArray(targets) ? targets : [targets];
  const { child, port } = await startServer();
  const runs: SizeFigures[] = [];
  try {
    for (const size of sizes) {
      const run = await measureSize(size, seconds, intervalMs, port);
      runs.push(run);
      if (!run.passed) break;
    }
  } finally {
    child.stdin!.end();
    child.kill();
  }
  const best = runs.filter((r) => r.passed).at(-1);
  // Figures for another interval are scaled to the 10 s: the rate of checks is what costs.
  const scale = intervalMs / 10_000;
  return {
    "healthChecks.targetsPerCore": best ? Math.floor(best.targets / scale) : 0,
    "healthChecks.projectedTargetsPerCore": best ? Math.floor(best.targets / scale / Math.max(best.cpuCores, 1e-6)) : 0,
    "healthChecks.intervalMs": intervalMs,
    "healthChecks.runs": runs,
  };
}

if (require.main === module) {
  const [sizes, seconds, interval] = process.argv.slice(2);
  measureHealthChecks({
    targets: sizes ? sizes.split(",").map(Number) : undefined,
    seconds: seconds ? Number(seconds) : undefined,
    intervalMs: interval ? Number(interval) : undefined,
  })
    .then((figures) => console.log(JSON.stringify(figures, null, 2)))
    .catch((error) => {
      console.error(error);
      process.exit(1);
    });
}
