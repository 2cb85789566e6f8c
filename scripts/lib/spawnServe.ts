/** A service's CLI (`<cli> serve …`) as its own process, as its npm script runs it (ts-node): crash tests, benchmarks. */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..");

export interface Child {
  process: ChildProcess;
  /** The service's URL, from its `started` log line; rejects if it exits first. */
  url: Promise<string>;
  exited: Promise<number | null>;
  /** Its output so far (stdout and stderr, the last 200 lines): to explain a failing assertion. */
  output(): string;
}

export function spawnServe(
  cli: string,
  args: string[],
  env: Record<string, string>,
  started: string,
  nodeArgs: string[] = [],
): Child {
  const child = spawn(process.execPath, [...nodeArgs, "-r", "ts-node/register/transpile-only", cli, "serve", ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString().split("\n").filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - 200));
  };
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk;
    keep(chunk);
  });
  child.stdout!.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = new Promise<string>((resolve, reject) => {
    let buffer = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      for (const line of buffer.split("\n")) {
        if (line.includes(`"${started}"`)) resolve(JSON.parse(line).url);
      }
    });
    void exited.then((code) => reject(new Error(`${cli} exited (${code}) before it started: ${stderr}`)));
  });
  url.catch(() => undefined);
  return { process: child, url, exited, output: () => lines.join("\n") };
}
