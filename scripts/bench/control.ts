/**
 * Control plane benchmark (issue 17): bench/control.json and the table in docs/control-plane.md "Benchmark".
 *
 * - propagation.p99.ms@1000: a change at the stargate (a signed delta) to the ACK of each of 1,000 subscribed
 *   nodes, simulated in this process (real gRPC channels, keys, signatures and chain checks; control/propagation.ts);
 * - healthChecks.targetsPerCore: the most endpoints one stargate checks every 10 s with check latency p99 under
 *   100 ms (2,500, 5,000, then 10,000 endpoints served by a child process; control/health.ts);
 * - blocklist.p99.ms: from POST /api/blocklist to a 403 at every gateway, 2 gateways as in the devnet, 100 trials
 *   (control/blocklist.ts);
 * - login.p99.ms: 100 password logins at once over HTTP, 3 rounds, at the default scrypt cost (control/login.ts).
 *
 *   npm run bench:control
 *   CONTROL_BENCH_QUICK=1 npm run bench:control   # small sizes; prints, writes nothing
 */
import { join } from "node:path";

import { measureBlocklist } from "./control/blocklist";
import { measureHealthChecks } from "./control/health";
import { measureLogin } from "./control/login";
import { measurePropagation } from "./control/propagation";
import { writeBenchResults } from "./report";

const ROOT = join(__dirname, "..", "..");
const QUICK = process.env.CONTROL_BENCH_QUICK === "1";

const TARGETS: Record<string, string> = {
  "propagation.p99.ms@1000": "<= 1000",
  "healthChecks.targetsPerCore": ">= 10000",
  "blocklist.p99.ms": "<= 1000",
  "login.p99.ms": "reported (scrypt cost in docs)",
};

const numeric = (figures: object): Record<string, number> =>
  Object.fromEntries(Object.entries(figures).filter(([, v]) => typeof v === "number")) as Record<string, number>;

async function main(): Promise<void> {
  const results: Record<string, number> = {};
  const step = async <T extends object>(name: string, run: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const figures = await run();
    console.log(`${name} (${((Date.now() - started) / 1000).toFixed(0)} s):`, JSON.stringify(figures, null, 1));
    Object.assign(results, numeric(figures));
    return figures;
  };
  await step("propagation", () => measurePropagation({ nodes: QUICK ? 50 : 1000, trials: QUICK ? 5 : 20 }));
  await step("health checks", () => measureHealthChecks(QUICK ? { targets: 500, seconds: 5, intervalMs: 2_500 } : {}));
  await step("blocklist", () => measureBlocklist({ gateways: 2, trials: QUICK ? 10 : 100 }));
  const login = await step("login", () => measureLogin(QUICK ? { concurrency: 10, rounds: 1 } : {}));
  TARGETS["login.p99.ms"] = `reported (${login["login.hashCost"]})`;
  if (QUICK) return;
  await writeBenchResults(
    join(ROOT, "bench", "control.json"),
    join(ROOT, "docs", "control-plane.md"),
    "control-bench",
    results,
    TARGETS,
  );
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
