/**
 * Newton's load against the devnet site, its own process (`newton.log`), so the runner's work (signing the
 * customers' jobs, the live view) never delays a planned request: Newton's engine (offchain/newton/engine.ts,
 * open loop at a constant rate, latency and TTFB from each request's planned start) sends the site's requests
 * to each gateway's front door with the site's Host header (undici, which lets a client set Host).
 *
 * Per gateway two runs at once: the cacheable objects (each at `cachedRate`) and the no-store path at the
 * gateway's own `liveRate` (sized to its hosts' slots). Results go to the output file per (gateway, class): counts,
 * status codes, errors by kind, latency and TTFB percentiles over every request of the class.
 *
 * Run: node -r ts-node/register/transpile-only scripts/devnet/load.ts <plan.json> <out.json>
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as hdr from "hdr-histogram-js";

import { type ErrorKind, LoadRun, type Target } from "../../offchain/newton/engine";

export interface LoadPlan {
  hostname: string;
  durationMs: number;
  /** Requests per second of each cacheable object, per gateway. */
  cachedRate: number;
  objects: string[];
  gateways: Array<{ name: string; frontDoor: string; liveRate: number }>;
}

export interface LoadRow {
  gateway: string;
  class: "cached" | "live";
  planned: number;
  responses: number;
  statuses: Record<string, number>;
  errors: Partial<Record<ErrorKind, number>>;
  dropped: number;
  latencyMs: { p50: number; p99: number };
  ttfbMs: { p50: number; p99: number };
}

/** Distinct no-store URLs the load takes in turn. */
const LIVE_PATHS = 10_000;

const histogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
const at = (h: hdr.Histogram, p: number) => (h.totalCount === 0 ? 0 : h.getValueAtPercentile(p) / 1000);

/** One (gateway, class) group's figures, gathered from every request of its targets as they end. */
class Group {
  readonly latency = histogram();
  readonly ttfb = histogram();
  responses = 0;
  dropped = 0;
  readonly statuses: Record<string, number> = {};
  readonly errors: Partial<Record<ErrorKind, number>> = {};

  constructor(
    readonly gateway: string,
    readonly kind: "cached" | "live",
  ) {}

  row(planned: number): LoadRow {
    return {
      gateway: this.gateway,
      class: this.kind,
      planned,
      responses: this.responses,
      statuses: this.statuses,
      errors: this.errors,
      dropped: this.dropped,
      latencyMs: { p50: at(this.latency, 50), p99: at(this.latency, 99) },
      ttfbMs: { p50: at(this.ttfb, 50), p99: at(this.ttfb, 99) },
    };
  }
}

export async function runLoad(plan: LoadPlan): Promise<LoadRow[]> {
  const headers = { host: plan.hostname };
  const runs: Array<{ run: LoadRun; group: Group }> = [];
  const observer = (group: Group) => ({
    response(_target: string, status: number, ttfbMs: number, durationMs: number) {
      group.responses += 1;
      group.statuses[status] = (group.statuses[status] ?? 0) + 1;
      group.ttfb.recordValue(Math.max(1, Math.round(ttfbMs * 1000)));
      group.latency.recordValue(Math.max(1, Math.round(durationMs * 1000)));
    },
    error(_target: string, kind: ErrorKind) {
      group.errors[kind] = (group.errors[kind] ?? 0) + 1;
    },
    dropped() {
      group.dropped += 1;
    },
  });
  const plans = { durationMs: plan.durationMs, maxConcurrency: 256, timeoutMs: 10_000 };
  for (const gateway of plan.gateways) {
    const cached = new Group(gateway.name, "cached");
    const live = new Group(gateway.name, "live");
    const objectTargets: Target[] = plan.objects.map((name) => ({
      id: `${gateway.name} /static/${name}`,
      url: `${gateway.frontDoor}/static/${name}`,
      method: "GET",
      headers,
    }));
    runs.push({
      run: new LoadRun(objectTargets, { ...plans, rate: plan.cachedRate }, observer(cached)),
      group: cached,
    });
    // Distinct no-store URLs in turn: a host coalesces concurrent misses of one URL, and an uncacheable answer
    // cannot be shared, so requests for one such URL would wait for each other (documented in cache.ts).
    const liveTarget = {
      id: `${gateway.name} /live/`,
      url: `${gateway.frontDoor}/live/0`,
      paths: Array.from({ length: LIVE_PATHS }, (_, k) => `/live/${k}`),
      method: "GET",
      headers,
    };
    runs.push({ run: new LoadRun([liveTarget], { ...plans, rate: gateway.liveRate }, observer(live)), group: live });
  }
  process.once("SIGTERM", () => runs.forEach(({ run }) => run.stop()));
  const summaries = await Promise.all(runs.map(({ run }) => run.start()));
  return runs.map(({ group }, i) => group.row(summaries[i].reduce((sum, s) => sum + s.planned, 0)));
}

if (require.main === module) {
  const [planFile, outFile] = process.argv.slice(2);
  const plan = JSON.parse(readFileSync(planFile, "utf8")) as LoadPlan;
  console.log(`newton: ${plan.gateways.length} gateways for ${plan.durationMs / 1000} s`);
  runLoad(plan).then(
    (rows) => {
      writeFileSync(outFile, JSON.stringify(rows, null, 2));
      console.log(JSON.stringify(rows));
      process.exit(0);
    },
    (error: Error) => {
      console.error(error.stack ?? error);
      process.exit(1);
    },
  );
}
