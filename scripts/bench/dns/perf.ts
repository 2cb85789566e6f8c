/**
 * bench:dns's measures with dnsperf 2.10 (Debian `dnsperf`, D60), run on core 0 (`taskset -c 0`) against a server on
 * core 1:
 * - `maxQps`: an unlimited run (dnsperf keeps `outstanding` queries in flight) gives an upper bound; then a binary
 *   search with -Q between 0.1 and 1.2 times it finds the highest rate dnsperf achieves (98% of the asked rate)
 *   with no query lost (dnsperf's own count: no answer within its 1 s timeout; a rate gets a second try, as the
 *   machine is shared);
 * - `latency`: a run at a fixed -Q with -v (dnsperf prints each query's latency; it has no percentile option), p50
 *   and p99 from those.
 */
import { spawn } from "node:child_process";

export interface PerfRun {
  sent: number;
  completed: number;
  lost: number;
  qps: number;
  latencies: number[];
}

export interface PerfTarget {
  port: number;
  queries: string;
}

function field(text: string, label: string): number {
  const match = new RegExp(`${label}:\\s+([\\d.]+)`).exec(text);
  if (!match) throw new Error(`dnsperf printed no "${label}":\n${text.slice(-2000)}`);
  return Number(match[1]);
}

export async function dnsperf(
  target: PerfTarget,
  {
    seconds,
    qps,
    verbose = false,
    outstanding = 200,
  }: { seconds: number; qps?: number; verbose?: boolean; outstanding?: number },
): Promise<PerfRun> {
  const args = ["-c", "0", "dnsperf", "-s", "127.0.0.1", "-p", String(target.port), "-d", target.queries];
  args.push("-l", String(seconds), "-c", "4", "-q", String(outstanding), "-t", "1");
  if (qps !== undefined) args.push("-Q", String(Math.round(qps)));
  if (verbose) args.push("-v");
  const child = spawn("taskset", args, { stdio: ["ignore", "pipe", "pipe"] });
  const latencies: number[] = [];
  let tail = "";
  let pending = "";
  child.stdout.on("data", (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith("> ")) latencies.push(Number(line.slice(line.lastIndexOf(" ") + 1)) * 1000);
      else tail += line + "\n";
    }
  });
  child.stderr.on("data", (chunk: Buffer) => (tail += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  tail += pending;
  if (code !== 0) throw new Error(`dnsperf exited ${code}:\n${tail.slice(-2000)}`);
  return {
    sent: field(tail, "Queries sent"),
    completed: field(tail, "Queries completed"),
    lost: field(tail, "Queries lost"),
    qps: field(tail, "Queries per second"),
    latencies,
  };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** The highest rate with no loss (queries a second, as dnsperf measured it at that rate). */
export async function maxQps(
  target: PerfTarget,
  {
    seconds = 5,
    steps = 7,
    log = console.log,
  }: { seconds?: number; steps?: number; log?: (line: string) => void } = {},
): Promise<{ qps: number; unlimited: PerfRun }> {
  await dnsperf(target, { seconds: 2 }); // warm-up (JIT, caches)
  const unlimited = await dnsperf(target, { seconds });
  log(`  unlimited: ${unlimited.qps.toFixed(0)} q/s, lost ${unlimited.lost}`);
  // Wide bounds: on a shared machine the lossless rate can be far under the unlimited run's.
  let low = unlimited.qps * 0.1;
  let high = unlimited.qps * 1.2;
  let best = unlimited.lost === 0 ? unlimited.qps : 0;
  for (let step = 0; step < steps; step += 1) {
    const asked = (low + high) / 2;
    // Two tries: the machine is shared, and one stall elsewhere can lose a query that the server would answer.
    let run = await dnsperf(target, { seconds, qps: asked, outstanding: 500 });
    const cleanRun = (r: PerfRun) => r.lost === 0 && r.qps >= asked * 0.98;
    if (!cleanRun(run)) run = await dnsperf(target, { seconds, qps: asked, outstanding: 500 });
    const clean = cleanRun(run);
    log(`  -Q ${asked.toFixed(0)}: ${run.qps.toFixed(0)} q/s, lost ${run.lost}${clean ? "" : " (over)"}`);
    if (clean) {
      best = Math.max(best, run.qps);
      low = asked;
    } else high = asked;
  }
  if (best === 0) throw new Error("no rate without loss");
  return { qps: Math.round(best), unlimited };
}

/** p50/p99 latency (ms) at `qps`, from dnsperf -v's per-query latencies. */
export async function latencyAt(
  target: PerfTarget,
  qps: number,
  seconds = 10,
): Promise<{ p50: number; p99: number; lost: number }> {
  const run = await dnsperf(target, { seconds, qps, verbose: true, outstanding: 500 });
  return { p50: percentile(run.latencies, 50), p99: percentile(run.latencies, 99), lost: run.lost };
}
