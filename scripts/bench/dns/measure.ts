/**
 * bench:dns's server measures (D60): our DNS server (a child process pinned to core 1 running server.ts) and Knot
 * (knot.ts, also on core 1) serve the fixture one after the other; dnsperf on core 0 finds each one's highest rate
 * without loss, then measures our latency at half of ours.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { VERSION, ZONE, siteZones, writeQueries } from "./fixture";
import { freeDnsPort, startKnot } from "../../lib/knot";
import { latencyAt, maxQps } from "./perf";
import { waitForDns } from "./probe";

const ROOT = join(__dirname, "..", "..", "..");

export interface DnsFigures {
  qps: number;
  "vsKnot.ratio": number;
  "vsKnot.knotQps": number;
  "p99.ms": number;
  "p50.ms": number;
}

async function startOurs(port: number): Promise<() => Promise<void>> {
  const child = spawn(
    "taskset",
    ["-c", "1", process.execPath, "-r", "ts-node/register/transpile-only", join(__dirname, "server.ts")],
    { cwd: ROOT, env: { ...process.env, DNS_BENCH_PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const stop = async () => {
    child.kill("SIGTERM");
    await exited;
  };
  try {
    await waitForDns(port, ZONE.name, () => child.exitCode !== null && output, 60_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return stop;
}

export async function measureDnsServers({ seconds = 5, log = console.log } = {}): Promise<DnsFigures> {
  const dir = mkdtempSync(join(tmpdir(), "bench-dns-"));
  try {
    const queries = writeQueries(dir);
    const port = await freeDnsPort();
    log("our DNS server (dns.ts, one core):");
    const stopOurs = await startOurs(port);
    let ours: number;
    let latency: { p50: number; p99: number; lost: number };
    try {
      ours = (await maxQps({ port, queries }, { seconds, log })).qps;
      latency = await latencyAt({ port, queries }, ours / 2, seconds * 2);
      log(
        `  at ${Math.round(ours / 2)} q/s: p50 ${latency.p50.toFixed(3)} ms, p99 ${latency.p99.toFixed(3)} ms, lost ${latency.lost}`,
      );
    } finally {
      await stopOurs();
    }
    log("knotd (one UDP worker, one core):");
    const knot = await startKnot({
      zones: [ZONE, ...siteZones()].map((zone) => ({ zone, serial: VERSION })),
      udpWorkers: 1,
      tcpWorkers: 1,
      prefix: ["taskset", "-c", "1"],
    });
    let knotQps: number;
    try {
      knotQps = (await maxQps({ port: knot.port, queries }, { seconds, log })).qps;
    } finally {
      await knot.stop();
    }
    return {
      qps: ours,
      "vsKnot.ratio": Math.round((ours / knotQps) * 1000) / 1000,
      "vsKnot.knotQps": knotQps,
      "p99.ms": Math.round(latency.p99 * 1000) / 1000,
      "p50.ms": Math.round(latency.p50 * 1000) / 1000,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  measureDnsServers({ seconds: Number(process.env.DNS_BENCH_SECONDS ?? 3) }).then(
    (figures) => {
      console.log(figures);
      process.exit(0);
    },
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
