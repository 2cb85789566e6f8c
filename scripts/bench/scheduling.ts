/**
 * Scheduling benchmark (issue 20, D69): the placement decision's time with 10,000 hosts in 50 regions, written to
 * bench/scheduling.json and the table in docs/scheduling.md (`npm run bench:scheduling`).
 *
 * One PlacementEngine (node/placement) holds 10,000 hosts in 50 regions of 25 countries (two regions each): 48
 * regions of about 208 hosts and 2 small ones of 5, capacity 4 to 32. The small regions and one in ten of the others
 * start with every slot busy, the rest with 60%. 2,000 sites with a mix of policies (MIX: none, static on 1 to 3
 * regions, dynamic with thresholds some regions pass, enforced on 1 to 6 countries, one country in twenty without a
 * host here) send jobs from gateways in random regions. Between two decisions the load moves as a gateway's does:
 * the placed job starts on its host (`started`), a random running job ends (`finished`); every 100 decisions a host
 * turns unhealthy or healthy again, every 50 a region's load is observed (four in five calm, one in five under
 * pressure, queue 0 to 60 and p99 20 to 1,200 ms: over some sites' thresholds, so they spill and return); the clock advances 1 ms a decision. Only `decide` is timed (process.hrtime.bigint
 * around each call), after a warm-up.
 *
 * Figures: `dispatch.decision.p50.us` / `p99.us` / `p999.us` / `max.us` / `mean.us`, the outcomes (placed, wait,
 * refuse), the mix, and the machine's load average at start and end (2 cores shared with whatever else runs).
 *
 *   npm run bench:scheduling                    # writes bench/scheduling.json and the table
 *   SCHEDULING_BENCH_QUICK=1 npm run bench:scheduling   # 20,000 decisions; prints, writes nothing
 */
import { cpus, loadavg } from "node:os";
import { join } from "node:path";

import { type Decision, PlacementEngine, type SiteRef } from "../../node/placement";
import { type Placement, type Region, countryCodes } from "../../offchain/common/protocol";
import { mulberry32, writeBenchResults } from "./report";

const ROOT = join(__dirname, "..", "..");
const QUICK = process.env.SCHEDULING_BENCH_QUICK === "1";
const HOSTS = 10_000;
const REGIONS = 50;
const SITES = 2_000;
const WARMUP = 50_000;
const DECISIONS = QUICK ? 20_000 : 500_000;
/** Share of sites per policy mode. */
const MIX = { none: 0.4, static: 0.2, dynamic: 0.2, enforced: 0.2 };
const TARGETS: Record<string, string> = {
  "dispatch.decision.p99.us": "<= 50 (issue 20)",
  "dispatch.decision.p50.us": "reported",
  "machine.load1.start": "the 1-minute load average when the run started (2 cores)",
};

const random = mulberry32(20_261_201); // every run places the same jobs
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

function world() {
  const codes = [...countryCodes()].sort();
  const countries = codes.filter((_, i) => i % 9 === 0).slice(0, REGIONS / 2);
  const absent = codes.filter((c) => !countries.includes(c));
  const regions: Region[] = countries.flatMap((country) => [
    { country, region: "north" },
    { country, region: "south" },
  ]);
  const keys = regions.map((r) => `${r.country}/${r.region}`);
  const latency = Object.fromEntries(keys.map((k) => [k, int(1, 300)]));
  return { countries, absent, regions, keys, latency };
}

function sites(w: ReturnType<typeof world>): SiteRef[] {
  const out: SiteRef[] = [];
  for (let i = 0; i < SITES; i++) {
    const r = random();
    let placement: Placement | undefined;
    if (r < MIX.static)
      placement = { mode: "static", regions: [...new Set(Array.from({ length: int(1, 3) }, () => pick(w.keys)))] };
    else if (r < MIX.static + MIX.dynamic)
      placement = { mode: "dynamic", queueDepth: int(5, 50), p99Ms: int(100, 1_000), holdMs: int(1_000, 30_000) };
    else if (r < MIX.static + MIX.dynamic + MIX.enforced)
      placement = {
        mode: "enforced",
        // One country in twenty has no host here: some enforced sites are refused.
        countries: [
          ...new Set(Array.from({ length: int(1, 6) }, () => pick(random() < 0.05 ? w.absent : w.countries))),
        ],
      };
    out.push({ name: `site-${i}`, placement });
  }
  return out;
}

/** The engine with its hosts joined and ~70% of their slots busy; the running jobs as host ids. */
function populate(e: PlacementEngine, w: ReturnType<typeof world>) {
  const running: string[] = [];
  e.setLatency(w.latency);
  for (let i = 0; i < HOSTS; i++) {
    const id = `host-${i}`;
    const capacity = int(4, 32);
    const r = i < 10 ? REGIONS - 1 - (i % 2) : i % (REGIONS - 2);
    e.join(id, { region: w.regions[r], capacity });
    const busy = r >= REGIONS - 2 || r % 10 === 0 ? 1 : 0.6;
    for (let j = Math.floor(capacity * busy); j > 0; j--) {
      e.started(id);
      running.push(id);
    }
  }
  return running;
}

const quantile = (sorted: Float64Array, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

async function main(): Promise<void> {
  const load1 = round(loadavg()[0], 2);
  console.log(`load average at start: ${load1}; ${HOSTS} hosts, ${REGIONS} regions, ${SITES} sites`);
  const w = world();
  const all = sites(w);
  const e = new PlacementEngine();
  const running = populate(e, w);
  const times = new Float64Array(DECISIONS);
  const modes = new Uint8Array(DECISIONS);
  const MODES = ["none", "static", "dynamic", "enforced"] as const;
  const outcomes = { host: 0, wait: 0, refuse: 0 };
  const unhealthy: string[] = [];
  let now = 0;
  for (let i = -WARMUP; i < DECISIONS; i++) {
    now += 1;
    const site = all[i & 1023 ? int(0, SITES - 1) : 0];
    const origin = pick(w.regions);
    const t0 = process.hrtime.bigint();
    const d: Decision = e.decide(site, origin, now);
    const t1 = process.hrtime.bigint();
    if (i >= 0) {
      times[i] = Number(t1 - t0) / 1_000;
      modes[i] = MODES.indexOf(site.placement?.mode ?? "none");
      outcomes["host" in d ? "host" : "wait" in d ? "wait" : "refuse"] += 1;
    }
    if ("host" in d) {
      e.started(d.host);
      running.push(d.host);
    }
    // A random running job ends (swap-remove), keeping the busy share steady.
    const j = int(0, running.length - 1);
    e.finished(running[j]);
    running[j] = running[running.length - 1];
    running.pop();
    if (i % 100 === 0) {
      if (unhealthy.length > 20 || (unhealthy.length > 0 && random() < 0.5)) e.setHealthy(unhealthy.pop()!, true);
      else {
        const id = `host-${int(0, HOSTS - 1)}`;
        e.setHealthy(id, false);
        unhealthy.push(id);
      }
    }
    if (i % 50 === 0) {
      // Most regions are calm; one observation in five is of a region under pressure (some over thresholds).
      const hot = random() < 0.2;
      e.observe(
        pick(w.keys),
        { queueDepth: hot ? int(0, 60) : int(0, 2), p99Ms: hot ? int(20, 1_200) : int(20, 45) },
        now,
      );
    }
  }
  const sorted = times.slice().sort();
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const mix = { none: 0, static: 0, dynamic: 0, enforced: 0 };
  for (const s of all) mix[s.placement?.mode ?? "none"] += 1;
  const results: Record<string, number> = {
    "dispatch.decision.p50.us": round(quantile(sorted, 0.5)),
    "dispatch.decision.p99.us": round(quantile(sorted, 0.99)),
    "dispatch.decision.p999.us": round(quantile(sorted, 0.999)),
    "dispatch.decision.max.us": round(sorted[sorted.length - 1]),
    "dispatch.decision.mean.us": round(mean),
    "dispatch.decisions": DECISIONS,
    "dispatch.hosts": HOSTS,
    "dispatch.regions": REGIONS,
    "dispatch.outcome.placed": outcomes.host,
    "dispatch.outcome.wait": outcomes.wait,
    "dispatch.outcome.refuse": outcomes.refuse,
    "mix.sites.none": mix.none,
    "mix.sites.static": mix.static,
    "mix.sites.dynamic": mix.dynamic,
    "mix.sites.enforced": mix.enforced,
    "machine.cores": cpus().length,
    "machine.load1.start": load1,
    "machine.load1.end": round(loadavg()[0], 2),
  };
  MODES.forEach((mode, m) => {
    const own = sorted.length ? times.filter((_, i) => modes[i] === m).sort() : sorted;
    results[`dispatch.decision.${mode}.p50.us`] = round(quantile(own, 0.5));
    results[`dispatch.decision.${mode}.p99.us`] = round(quantile(own, 0.99));
  });
  if (QUICK) return void console.table(results);
  const out = join(ROOT, "bench", "scheduling.json");
  await writeBenchResults(out, join(ROOT, "docs", "scheduling.md"), "scheduling-bench", results, TARGETS);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
