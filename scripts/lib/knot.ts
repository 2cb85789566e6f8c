/**
 * Knot DNS (Debian's knot package, /usr/sbin/knotd) serving customers' zones from master files rendered by
 * `renderZoneFile` (node/roles/stargate/dnsZones.ts): the reference server Edge DNS's answers are compared with
 * (test/node/dnsKnot.test.ts) and benchmarked against (scripts/bench/dns.ts). It runs on a free loopback port
 * (UDP and TCP) with a temporary configuration, rundir and storage, and is killed on `stop()`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import type { Zone } from "../../offchain/common/protocol/zones";
import { renderZoneFile } from "../../node/roles/stargate/dnsZones";

export const KNOTD = process.env.EDGE_KNOTD ?? "/usr/sbin/knotd";

export interface KnotOptions {
  zones: { zone: Zone; serial: number }[];
  host?: string;
  /** 0 or absent: a free port. */
  port?: number;
  /** Knot's UDP and TCP worker threads (the benchmark pins one core: 1 each). */
  udpWorkers?: number;
  tcpWorkers?: number;
  /** Command prefix, e.g. ["taskset", "-c", "1"]. */
  prefix?: string[];
}

export interface KnotServer {
  host: string;
  port: number;
  process: ChildProcess;
  /** What knotd printed (warnings and errors), for failures' messages. */
  output(): string;
  stop(): Promise<void>;
}

export const knotInstalled = () => existsSync(KNOTD);

/** A port free for both UDP and TCP on `host` now. */
export async function freeDnsPort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket("udp4");
    const port = await new Promise<number>((resolve) => udp.bind(0, host, () => resolve(udp.address().port)));
    const free = await new Promise<boolean>((resolve) => {
      const tcp = createServer();
      tcp.once("error", () => resolve(false));
      tcp.listen(port, host, () => tcp.close(() => resolve(true)));
    });
    udp.close();
    if (free) return port;
  }
  throw new Error("no free port for UDP and TCP");
}

/** Whether a DNS server answers an SOA query for `zone` at host:port over UDP. */
function answers(host: string, port: number, zone: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    const labels = zone.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
    const query = Buffer.concat([
      Buffer.from([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      ...labels,
      Buffer.from([0, 0, 6, 0, 1]),
    ]);
    const timer = setTimeout(() => finish(false), 200);
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.close();
      resolve(ok);
    };
    // A NOERROR (rcode 0) answer with aa: the zone is loaded.
    socket.on("message", (msg) => finish(msg.length >= 12 && (msg[3] & 0x0f) === 0 && (msg[2] & 0x04) !== 0));
    socket.on("error", () => finish(false));
    socket.send(query, port, host);
  });
}

export async function startKnot(options: KnotOptions): Promise<KnotServer> {
  if (!knotInstalled()) throw new Error(`knotd is not installed at ${KNOTD} (Debian: apt-get install knot)`);
  const host = options.host ?? "127.0.0.1";
  const port = options.port || (await freeDnsPort(host));
  const dir = mkdtempSync(join(tmpdir(), "edge-knot-"));
  const zones = options.zones.map(({ zone, serial }) => {
    const file = join(dir, `${zone.name}.zone`);
    writeFileSync(file, renderZoneFile(zone, serial));
    return `  - domain: ${zone.name}\n    file: ${file}\n`;
  });
  const conf = join(dir, "knot.conf");
  writeFileSync(
    conf,
    [
      "server:",
      `    rundir: ${dir}`,
      `    listen: ${host}@${port}`,
      `    udp-workers: ${options.udpWorkers ?? 1}`,
      `    tcp-workers: ${options.tcpWorkers ?? 1}`,
      "    background-workers: 1",
      "database:",
      `    storage: ${dir}`,
      "control:",
      `    listen: ${join(dir, "knot.sock")}`,
      "log:",
      "  - target: stderr",
      "    any: warning",
      "template:",
      "  - id: default",
      `    storage: ${dir}`,
      "    semantic-checks: on",
      "    zonefile-sync: -1",
      "    journal-content: none",
      "zone:",
      ...zones,
      "",
    ].join("\n"),
  );
  const [command, ...args] = [...(options.prefix ?? []), KNOTD, "-c", conf];
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  const first = options.zones[0]?.zone.name;
  while (first !== undefined && !(await answers(host, port, first))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`knotd did not serve ${first} on ${host}:${port}: ${output.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { host, port, process: child, output: () => output, stop };
}
