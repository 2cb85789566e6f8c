/**
 * The CDN benchmark's load: Newton's open-loop engine (offchain/newton/engine.ts), one target whose requests take
 * a list of paths in turn, latency measured from each request's planned start. A step passes when every planned
 * request was sent and answered 200 (none dropped, no error) and the p99 stays under the bound.
 */
import { LoadRun, type TargetSummary } from "../../../offchain/newton/engine";

export interface Load {
  /** Origin of the server to load (http://127.0.0.1:port). */
  url: string;
  paths: readonly string[];
  headers: Record<string, string>;
  /** HTTP/2 with prior knowledge (the host's direct server) instead of HTTP/1.1. */
  h2c?: boolean;
}

export const P99_BOUND_MS = 50;
/** CDN_BENCH_QUICK=1: a trial of the whole flow, every run a fifth as long and the search up to 2,000/s only. */
export const QUICK = process.env.CDN_BENCH_QUICK === "1";

export async function run(load: Load, rate: number, durationMs: number): Promise<TargetSummary> {
  const engine = new LoadRun([{ id: "cdn", url: load.url, method: "GET", headers: load.headers, paths: load.paths }], {
    rate,
    durationMs,
    maxConcurrency: 512,
    timeoutMs: 10_000,
    h2c: load.h2c,
  });
  const [summary] = await engine.start();
  return summary;
}

/** Whether every planned request was answered 200. */
export function allOk(s: TargetSummary): boolean {
  return s.planned > 0 && s.dropped === 0 && s.errors === 0 && s.sent === s.planned && s.statuses["200"] === s.planned;
}

export function describe(s: TargetSummary): string {
  const statuses = Object.entries(s.statuses)
    .map(([code, n]) => `${code}: ${n}`)
    .join(", ");
  return (
    `p50 ${s.latencyMs.p50} p99 ${s.latencyMs.p99} max ${s.latencyMs.max} ms, lag p99 ${s.scheduleLagMs.p99} ms, ` +
    `${s.responses}/${s.planned} answered (${statuses}), ${s.dropped} dropped, ${s.errors} errors`
  );
}

/** Rates the search tries, requests/s. */
export const SEARCH_RATES = QUICK
  ? [500, 2_000]
  : [250, 500, 1_000, 1_500, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000, 10_000, 12_000];

/**
 * The highest rate of SEARCH_RATES at which a `stepMs` run (after a short warm-up at that rate) keeps p99 under
 * P99_BOUND_MS with every request answered 200; stops after two failed rates in a row. Between rates it waits for
 * the server to drain what an overloaded step left.
 */
export async function search(name: string, load: Load, stepMs: number): Promise<{ rps: number; top: boolean }> {
  let best = 0;
  let failed = 0;
  for (const rate of SEARCH_RATES) {
    await run(load, rate, 500);
    const s = await run(load, rate, stepMs);
    const ok = allOk(s) && s.latencyMs.p99 < P99_BOUND_MS;
    console.log(`${name} ${rate} rps: ${describe(s)}${ok ? "" : "  <- over"}`);
    if (ok) {
      best = rate;
      failed = 0;
    } else {
      if (++failed === 2) break;
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
  return { rps: best, top: best === SEARCH_RATES[SEARCH_RATES.length - 1] };
}
