/**
 * What the gateway measures of each region for the dynamic policy's spill (D69): the p99 latency of its hosts'
 * recent jobs (a job's time on the host: from the queue starting it to its `done`, the relay of the answer
 * included), over the last P99_WINDOW_MS and at most MAX_SAMPLES jobs per region. The queue depth (the dynamic
 * jobs waiting for the region's hosts) is the queue's own count (waitLists.ts). The queue observes both into its
 * engine: the depth whenever it changes (with the last p99), and every region on its tick (with a fresh p99).
 */
import { type Region, regionKey } from "../../../offchain/common/protocol/regions";

/** How far back a region's p99 looks (ms). */
export const P99_WINDOW_MS = 10_000;
/** Jobs per region a p99 is computed over at most (the newest). */
export const MAX_SAMPLES = 1_024;

interface Samples {
  /** When each job ended, and how long it ran (ms); a ring of MAX_SAMPLES. */
  readonly at: number[];
  readonly ms: number[];
  next: number;
}

export class RegionLatency {
  private readonly samples = new Map<string, Samples>();
  private readonly p99s = new Map<string, number>();

  /** A job on a host in `region` (undefined: undeclared, not measured) ran `ms` and ended at `now`. */
  add(region: Region | undefined, ms: number, now: number): void {
    if (region === undefined || !(ms >= 0)) return;
    const key = regionKey(region);
    let s = this.samples.get(key);
    if (s === undefined) this.samples.set(key, (s = { at: [], ms: [], next: 0 }));
    if (s.at.length < MAX_SAMPLES) {
      s.at.push(now);
      s.ms.push(ms);
    } else {
      s.at[s.next] = now;
      s.ms[s.next] = ms;
      s.next = (s.next + 1) % MAX_SAMPLES;
    }
  }

  /** Region `key`'s p99 as last computed (`refresh`), 0 when it ran no job within the window. */
  p99(key: string): number {
    return this.p99s.get(key) ?? 0;
  }

  /** Recomputes every region's p99 at `now` (O(samples log samples)); forgets regions without recent jobs. */
  refresh(now: number): void {
    const since = now - P99_WINDOW_MS;
    for (const [key, s] of this.samples) {
      const recent: number[] = [];
      for (let i = 0; i < s.at.length; i++) if (s.at[i] > since) recent.push(s.ms[i]);
      if (recent.length === 0) {
        this.samples.delete(key);
        this.p99s.delete(key);
        continue;
      }
      recent.sort((a, b) => a - b);
      this.p99s.set(key, recent[Math.ceil(recent.length * 0.99) - 1]);
    }
  }

  /** Regions with jobs measured within the window (as of the last `refresh`). */
  regions(): IterableIterator<string> {
    return this.samples.keys();
  }

  get measuring(): boolean {
    return this.samples.size > 0;
  }
}

/** How often the latency table is rebuilt from the links' round trips (ms). */
export const LATENCY_TABLE_MS = 5_000;

/**
 * The gateway's measured latency to each region (D69): the median of the last ping round trip of its linked hosts
 * in that region (hosts without a measurement or a declared region do not count). Region keys sorted.
 */
export function latencyTable(links: Iterable<{ region?: Region; rttMs?: number }>): Map<string, number> {
  const rtts = new Map<string, number[]>();
  for (const link of links) {
    if (link.region === undefined || link.rttMs === undefined || !(link.rttMs >= 0)) continue;
    const key = regionKey(link.region);
    const list = rtts.get(key);
    if (list) list.push(link.rttMs);
    else rtts.set(key, [link.rttMs]);
  }
  const table = new Map<string, number>();
  for (const key of [...rtts.keys()].sort()) {
    const list = rtts.get(key)!.sort((a, b) => a - b);
    table.set(key, list[(list.length - 1) >> 1]);
  }
  return table;
}

export const sameTable = (a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean =>
  a.size === b.size && [...a].every(([key, ms]) => b.get(key) === ms);
