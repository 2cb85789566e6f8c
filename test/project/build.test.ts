/**
 * `npm run build` (bin/build.js): the compiled daemon, services and Console in dist/, and package.json's `bin`
 * commands that run them. Builds unless dist/ is newer than every source it is built from.
 */
import { expect } from "chai";
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

import { consoleAssets } from "../../console/bundle";

const ROOT = join(__dirname, "..", "..");
const BUILT = join(ROOT, "dist", ".built");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> };

/** How each command shows its help: the services' help is their `serve` command's. */
const HELP: Record<string, string[]> = {
  "edge-node": ["--help"],
  "edge-oracle": ["serve", "--help"],
  "edge-billing": ["serve", "--help"],
  "edge-certs": ["serve", "--help"],
  "edge-storage": ["--help"],
  "edge-newton": ["serve", "--help"],
  "edge-rollout": ["--help"],
  "edge-console": ["--help"],
};

function newestSource(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestSource(join(path, name))));
}

function distIsFresh(): boolean {
  if (!existsSync(BUILT)) return false;
  const sources = ["offchain", "node", "console", "bin", "package.json", "tsconfig.json", "tsconfig.build.json"];
  return statSync(BUILT).mtimeMs > Math.max(...sources.map((source) => newestSource(join(ROOT, source))));
}

function runCommand(file: string, args: string[]) {
  // The file itself, not `node file`: its shebang and execute bit are part of what is tested.
  return spawnSync(join(ROOT, file), args, { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
}

describe("build: npm run build and the bin commands", function () {
  this.timeout(300_000);

  before(function () {
    if (!distIsFresh()) execFileSync(process.execPath, [join(ROOT, "bin", "build.js")], { cwd: ROOT, stdio: "pipe" });
  });

  it("has exactly the seven commands, each a compiled file in dist/ with a shebang and the execute bit", function () {
    expect(Object.keys(pkg.bin).sort()).to.deep.equal(Object.keys(HELP).sort());
    for (const file of Object.values(pkg.bin)) {
      expect(file).to.match(/^dist\/.+\.js$/);
      expect(readFileSync(join(ROOT, file), "utf8")).to.match(/^#!\/usr\/bin\/env node\n/);
      accessSync(join(ROOT, file), constants.X_OK);
    }
  });

  for (const [command, args] of Object.entries(HELP)) {
    it(`${command} ${args.join(" ")} prints its usage and exits 0`, function () {
      const result = runCommand(pkg.bin[command], args);
      expect(result.stderr, result.stderr).to.equal("");
      expect(result.status).to.equal(0);
      expect(result.stdout).to.match(/usage: /);
    });
  }

  it("edge-newton serve starts, logs that it started, and stops cleanly on SIGTERM", async function () {
    const child = spawn(join(ROOT, pkg.bin["edge-newton"]), ["serve", "--port", "0"], {
      cwd: ROOT,
      env: { ...process.env, EDGE_NEWTON_TOKEN: "build-test-token-0123456789" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const output = await untilLine(child, "newton started", exited);
    expect(output).to.include('"newton started"');
    child.kill("SIGTERM");
    expect(await exited).to.equal(0);
  });

  it("the compiled Console bundles the same page as the TypeScript one (dist/console/web links to console/web)", function () {
    const script =
      "require('./dist/console/bundle.js').consoleAssets().then((a) => process.stdout.write(" +
      "require('node:crypto').createHash('sha256').update(a.html + a.js + a.css).digest('hex')))";
    const compiled = execFileSync(process.execPath, ["-e", script], { cwd: ROOT, encoding: "utf8" });
    return consoleAssets().then((a) => {
      expect(compiled).to.equal(
        createHash("sha256")
          .update(a.html + a.js + a.css)
          .digest("hex"),
      );
    });
  });
});

/** Resolves with the output so far once a line contains `marker`; rejects if the process exits first. */
function untilLine(child: ChildProcess, marker: string, exited: Promise<number | null>): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(marker)) resolve(output);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    void exited.then((code) => reject(new Error(`exited (${code}) before "${marker}":\n${output}`)));
  });
}
