/** The devnet's child processes, each on a free loopback port and logging to its own file in the run directory. */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

import { DevnetError, ROOT, failureChecks } from "./common";

export async function freePort(): Promise<number> {
  // Below the kernel's ephemeral range (32768-60999 here): a port the OS hands out for port 0 is free now, but any
  // outgoing connection may take it before the node binds it (a host died with EADDRINUSE on a loaded machine).
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Ports this process handed out (never twice). */
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A binary of node_modules/.bin. */
export const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);
/** Node's arguments to run a TypeScript file, as the npm scripts do. */
export const tsNode = ["-r", "ts-node/register/transpile-only"];

export class Processes {
  readonly children: Array<{ name: string; child: ChildProcess; log: string }> = [];
  private stopping = false;

  constructor(private readonly dir: string) {
    // Every wait of the run ends at once when one of its processes has died, naming it (not after its timeout).
    failureChecks.add(() => this.check());
  }

  /** Starts `command args` with its output in <dir>/<name>.log; a process that dies early fails the devnet. */
  start(name: string, command: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    return this.spawn(name, command, args, env, false);
  }

  /**
   * Starts a process that is meant to end (Newton's load): resolves once it exited 0; any other exit, or one
   * cut short by the devnet stopping, rejects and fails the devnet.
   */
  runToEnd(name: string, command: string, args: string[], env: Record<string, string> = {}): Promise<void> {
    const child = this.spawn(name, command, args, env, true);
    const log = join(this.dir, `${name}.log`);
    return new Promise((resolve, reject) =>
      child.on("exit", (code, signal) => {
        if (code === 0) return resolve();
        const failure = new DevnetError(`${name} exited (${code ?? signal}); see ${log}`);
        if (!this.stopping) this.failure ??= failure;
        reject(failure);
      }),
    );
  }

  private spawn(name: string, command: string, args: string[], env: Record<string, string>, ends: boolean) {
    const log = join(this.dir, `${name}.log`);
    const out = createWriteStream(log);
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    if (!ends)
      child.on("exit", (code, signal) => {
        if (!this.stopping) this.failure ??= new DevnetError(`${name} exited (${code ?? signal}); see ${log}`);
      });
    this.children.push({ name, child, log });
    return child;
  }

  failure?: DevnetError;
  private readonly stops: Array<() => Promise<void>> = [];

  /** Something the devnet started outside these children (Pebble): stopped with them. */
  atStop(stop: () => Promise<void>): void {
    this.stops.push(stop);
  }

  check(): void {
    if (this.failure) throw this.failure;
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([
      ...this.stops.splice(0).map((stop) => stop().catch(() => undefined)),
      ...this.children.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
            child.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill("SIGTERM");
          }),
      ),
    ]);
  }
}
