/** Shared by the CDN benchmark's processes: the site, a quiet log, listening, and starting a child process. */
import { type ChildProcess, spawn } from "node:child_process";
import type { Server } from "node:http";
import type { Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const BENCH_CHAIN = 31337;
export const BENCH_SITE = "bench";
export const BENCH_HOSTNAME = "bench.example.test";
export const BENCH_OWNER = "0x00000000000000000000000000000000000000aa";

/** Warnings and errors to stderr (a failing request says why); nothing per request otherwise, as the daemon. */
const say = (level: string) => (obj: object, msg?: string) => console.error(level, msg ?? "", JSON.stringify(obj));
export const benchLog = {
  info() {},
  debug() {},
  warn: say("warn"),
  error: say("error"),
  child: () => benchLog,
} as never;

/** Listens on 127.0.0.1, a free port; resolves with the server's URL. */
export async function listen(server: Server | Http2Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A child process of the benchmark in its own process group, and the JSON it printed on its first line. */
export interface Child<T> {
  process: ChildProcess;
  info: T;
}

/**
 * Starts one of this directory's scripts (`name`.ts) under ts-node in a process group of its own, with `nodeFlags`
 * (e.g. --cpu-prof), and waits for its first stdout line (JSON). Its stderr goes to the benchmark's.
 */
export function startScript<T>(
  name: string,
  args: string[],
  children: ChildProcess[],
  nodeFlags: string[] = [],
): Promise<Child<T>> {
  const script = join(__dirname, `${name}.ts`);
  const child = spawn(process.execPath, [...nodeFlags, "-r", "ts-node/register/transpile-only", script, ...args], {
    cwd: join(__dirname, "..", "..", ".."),
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  children.push(child);
  return firstJsonLine<T>(child, name);
}

/** Spawns `command` in a process group of its own (nginx: the master and its workers). */
export function startGroup(command: string, args: string[], children: ChildProcess[]): ChildProcess {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "inherit"], detached: true });
  children.push(child);
  return child;
}

function firstJsonLine<T>(child: ChildProcess, name: string): Promise<Child<T>> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`${name} printed nothing within 60 s`)), 60_000);
    child.once("exit", (code) => reject(new Error(`${name} exited (${code}) before it started`)));
    lines.once("line", (line) => {
      clearTimeout(timer);
      try {
        resolve({ process: child, info: JSON.parse(line) as T });
      } catch {
        reject(new Error(`${name} printed ${line.slice(0, 200)}`));
      }
    });
  });
}

/**
 * Stops every child: SIGTERM to its process group (the scripts exit and write their CPU profiles; nginx's master
 * stops its workers), then SIGKILL to any group still there after `graceMs`.
 */
export async function stopAll(children: ChildProcess[], graceMs = 5_000): Promise<void> {
  const alive = (pid: number) => {
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const pids = children.map((c) => c.pid).filter((pid): pid is number => pid !== undefined);
  for (const pid of pids) if (alive(pid)) process.kill(-pid, "SIGTERM");
  const until = Date.now() + graceMs;
  while (Date.now() < until && pids.some(alive)) await new Promise((r) => setTimeout(r, 50));
  for (const pid of pids) if (alive(pid)) process.kill(-pid, "SIGKILL");
}
