/**
 * The import rules `npm run lint` checks with dependency-cruiser (.dependency-cruiser.cjs): run on a small
 * made-up tree that breaks each rule once and keeps each exception once.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const ROOT = join(__dirname, "..", "..");
const CONFIG = join(ROOT, ".dependency-cruiser.cjs");
const DEPCRUISE = join(
  ROOT,
  "node_modules",
  "dependency-cruiser",
  (
    JSON.parse(readFileSync(join(ROOT, "node_modules", "dependency-cruiser", "package.json"), "utf8")) as {
      bin: Record<string, string>;
    }
  ).bin.depcruise,
);

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
  cycle?: Array<{ name: string; dependencyTypes: string[] }>;
}

/**
 * depcruise over `files` (path -> source) in a fresh folder, as lint runs it (its exit code and report) and with
 * JSON output (the violations; depcruise exits 0 whatever it finds when it writes JSON).
 */
function cruise(files: Record<string, string>): { status: number; report: string; violations: Violation[] } {
  const dir = mkdtempSync(join(tmpdir(), "edge-depcruise-"));
  try {
    for (const [path, source] of Object.entries({ "tsconfig.json": "{}", ...files })) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), source);
    }
    const run = (...options: string[]) =>
      spawnSync(process.execPath, [DEPCRUISE, "--config", CONFIG, ...options, ...Object.keys(files)], {
        cwd: dir,
        encoding: "utf8",
      });
    const lint = run();
    const json = JSON.parse(run("--output-type", "json").stdout) as { summary: { violations: Violation[] } };
    return { status: lint.status!, report: lint.stdout + lint.stderr, violations: json.summary.violations };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const names = (violations: Violation[]) => violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort();

describe("lint: import rules (.dependency-cruiser.cjs)", function () {
  this.timeout(60_000);

  it("fails on an import cycle (a type-only one too) and on imports of scripts/ or test/ from outside them", function () {
    const { status, report, violations } = cruise({
      // Broken: a cycle through a type-only import; offchain/ importing scripts/; console/web and scripts/ importing test/.
      "node/daemon.ts": 'import { role } from "./roles/host";\nexport const daemon = () => role;\n',
      "node/roles/host.ts": 'import type { Daemon } from "../types";\nexport const role = (d?: Daemon) => d;\n',
      "node/types.ts": 'import { daemon } from "./daemon";\nexport type Daemon = typeof daemon;\n',
      "offchain/common/x.ts": 'import { bench } from "../../scripts/bench/lib";\nexport const x = bench;\n',
      "console/web/y.ts": 'import { fixture } from "../../test/shared/fixtures";\nexport const y = fixture;\n',
      "scripts/bench/lib.ts": 'import { fixture } from "../../test/shared/fixtures";\nexport const bench = fixture;\n',
      "test/shared/fixtures.ts": "export const fixture = 1;\n",
      // Allowed: hardhat.config.ts loading scripts/tasks; tests importing scripts/, other code and test/.
      "hardhat.config.ts": 'import "./scripts/tasks";\nexport default {};\n',
      "scripts/tasks/index.ts": 'import { role } from "../../node/roles/host";\nexport const tasks = role;\n',
      "test/scripts/tasks.test.ts":
        'import { tasks } from "../../scripts/tasks";\nimport { fixture } from "../shared/fixtures";\nexport const t = [tasks, fixture];\n',
    });
    expect(status, report).to.not.equal(0);
    expect(report).to.include("4 dependency violations (4 errors");
    expect(names(violations)).to.deep.equal([
      "no-cycles: node/daemon.ts -> node/roles/host.ts",
      "scripts-stay-scripts: offchain/common/x.ts -> scripts/bench/lib.ts",
      "tests-stay-tests: console/web/y.ts -> test/shared/fixtures.ts",
      "tests-stay-tests: scripts/bench/lib.ts -> test/shared/fixtures.ts",
    ]);
    // The cycle is reported once, whole, through its type-only edge.
    const cycle = violations.find((v) => v.rule.name === "no-cycles")!.cycle!;
    expect(cycle.map((step) => step.name)).to.deep.equal(["node/roles/host.ts", "node/types.ts", "node/daemon.ts"]);
    expect(cycle[1].dependencyTypes).to.include("type-only");
  });
});
