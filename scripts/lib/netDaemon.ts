/**
 * Processes and ports of the test networks (scripts/lib/rolloutNet.ts): a daemon is a TypeScript entry point run
 * as its own process (`node -r ts-node/register/transpile-only <script> ...`, as the npm scripts run it), its output
 * kept (last 300 lines) and appended to a log file; stop is SIGTERM (the graceful stop), SIGKILL after 20 s.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { createWriteStream } from "node:fs";
import { createServer as createTcpServer } from "node:net";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..");

/**
 * A port free on `host` below the kernel's ephemeral range (32768 and up here): a daemon restarted on its port must
 * find it free, and an ephemeral port may meanwhile be some outgoing connection's.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if ((await portFree(host, port)) && (await udpFree(host, port))) return port;
  }
}

/** A port free on every one of `hosts` (gateways sharing a front door port on their own addresses). */
export async function sharedPort(hosts: string[]): Promise<number> {
  for (;;) {
    const port = await freePort(hosts[0]);
    let free = true;
    for (const host of hosts.slice(1)) free = free && (await portFree(host, port));
    if (free) return port;
  }
}

async function udpFree(host: string, port: number): Promise<boolean> {
  const socket = createSocket("udp4");
  const ok = await new Promise<boolean>((resolve) => {
    socket.once("error", () => resolve(false));
    socket.bind(port, host, () => resolve(true));
  });
  socket.close();
  return ok;
}

export async function portFree(host: string, port: number): Promise<boolean> {
  const server = createTcpServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, host, () => resolve(true));
  });
  if (ok) await new Promise((resolve) => server.close(resolve));
  return ok;
}

export async function waitUntil<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The sum of a metric's samples in Prometheus text (0 when absent), over those with the labels given. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const pairs = [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)];
    const have = Object.fromEntries(pairs.map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

export interface DaemonNode {
  name: string;
  /** Its API: `readyPath` is asked there. */
  url: string;
  /** Times it was (re)started. */
  starts: number;
}

export class Daemon {
  child?: ChildProcess;
  exited?: Promise<void>;
  private lines: string[] = [];

  constructor(
    readonly node: DaemonNode,
    public args: string[],
    private readonly env: Record<string, string>,
    private readonly logFile: string,
    private readonly script = "node/cli.ts",
    private readonly readyPath = "/ready",
  ) {}

  start(): void {
    this.node.starts += 1;
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", this.script, ...this.args], {
      cwd: ROOT,
      env: { ...process.env, ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out = createWriteStream(this.logFile, { flags: "a" });
    const keep = (chunk: Buffer) => {
      out.write(chunk);
      this.lines.push(...chunk.toString().split("\n").filter(Boolean));
      this.lines.splice(0, Math.max(0, this.lines.length - 300));
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    this.exited = new Promise((resolve) => child.on("exit", () => resolve()));
    this.child = child;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.kill("SIGTERM");
    await this.exited;
    clearTimeout(timer);
  }

  async ready(timeoutMs = 240_000): Promise<void> {
    await waitUntil(
      `${this.node.name} ready`,
      async () => {
        if (this.child?.exitCode !== null) throw new Error(`${this.node.name} exited:\n${this.output()}`);
        return (await fetch(`${this.node.url}${this.readyPath}`)).status === 200;
      },
      timeoutMs,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${this.output()}`);
    });
  }

  output(): string {
    return this.lines.join("\n");
  }
}
