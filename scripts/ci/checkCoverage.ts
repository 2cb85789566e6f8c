/**
 * Fails when Solidity coverage (coverage.json from `hardhat coverage`) is under the project's bar for the
 * protocol's contracts (contracts/test is excluded by .solcover.js): 100% of lines, 95% of branches.
 *
 *   npm run coverage && npx ts-node scripts/ci/checkCoverage.ts
 */
import { readFileSync } from "node:fs";

const LINES = 100;
const BRANCHES = 95;

interface FileCoverage {
  s: Record<string, number>;
  b: Record<string, number[]>;
  statementMap: Record<string, { start: { line: number } }>;
}

const coverage = JSON.parse(readFileSync("coverage.json", "utf8")) as Record<string, FileCoverage>;
let failed = false;
for (const [file, data] of Object.entries(coverage)) {
  const lines = new Map<number, boolean>();
  for (const [id, hits] of Object.entries(data.s)) {
    const line = data.statementMap[id].start.line;
    lines.set(line, (lines.get(line) ?? false) || hits > 0);
  }
  const covered = [...lines.values()].filter(Boolean).length;
  const branches = Object.values(data.b).flat();
  const linePct = lines.size ? (100 * covered) / lines.size : 100;
  const branchPct = branches.length ? (100 * branches.filter((n) => n > 0).length) / branches.length : 100;
  const ok = linePct >= LINES && branchPct >= BRANCHES;
  failed ||= !ok;
  console.log(
    `${ok ? "ok  " : "FAIL"} ${file.replace(/^.*contracts\//, "contracts/")}: lines ${linePct.toFixed(2)}%, branches ${branchPct.toFixed(2)}%`,
  );
}
if (failed) {
  console.error(`coverage is below ${LINES}% lines / ${BRANCHES}% branches`);
  process.exit(1);
}
