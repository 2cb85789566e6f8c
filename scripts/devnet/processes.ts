/** The devnet's child processes, each on a free loopback port and logging to its own file in the run directory. */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

import { DevnetError, ROOT } from "./common";

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A binary of node_modules/.bin. */
export const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);
/** Node's arguments to run a TypeScript file, as the npm scripts do. */
export const tsNode = ["-r", "ts-node/register/transpile-only"];

export class Processes {
  readonly children: Array<{ name: string; child: ChildProcess; log: string }> = [];
  private stopping = false;

  constructor(private readonly dir: string) {}

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
