/**
 * Recent latencies and their p99 (issue 20, D71): the last `size` durations recorded within `windowMs`, in a ring
 * (fixed memory whatever the traffic). `p99()` sorts a copy of the samples still in the window, at most once per
 * `cacheMs` (it is read by health probes, a few times a second at most, never per request).
 *
 *   const window = new LatencyWindow();
 *   const end = window.start(); ...; end();        // or window.record(ms)
 *   window.p99();                                  // ms; 0 with no recent sample
 */
export interface LatencyWindowOptions {
  /** Samples kept (default 1,024). */
  size?: number;
  /** Samples older than this are ignored (ms; default 10,000). */
  windowMs?: number;
  /** p99 recomputed at most this often (ms; default 250). */
  cacheMs?: number;
  now?: () => number;
}

export class LatencyWindow {
  private readonly values: Float64Array;
  private readonly times: Float64Array;
  private next = 0;
  private filled = 0;
  private cached = 0;
  private cachedAt = -Infinity;
  private readonly windowMs: number;
  private readonly cacheMs: number;
  private readonly now: () => number;

  constructor(options: LatencyWindowOptions = {}) {
    const size = options.size ?? 1_024;
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError("a latency window holds at least 1 sample");
    this.values = new Float64Array(size);
    this.times = new Float64Array(size);
    this.windowMs = options.windowMs ?? 10_000;
    this.cacheMs = options.cacheMs ?? 250;
    this.now = options.now ?? Date.now;
  }

  /** Records one duration (ms; negative or non-finite ones are ignored). */
  record(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    this.values[this.next] = ms;
    this.times[this.next] = this.now();
    this.next = (this.next + 1) % this.values.length;
    if (this.filled < this.values.length) this.filled += 1;
  }

  /** Starts timing one piece of work; the returned function records it (once). */
  start(): () => void {
    const began = performance.now();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.record(performance.now() - began);
    };
  }

  /** The 99th percentile (nearest rank, ms, rounded up) of the samples within the window; 0 without one. */
  p99(): number {
    const now = this.now();
    if (now - this.cachedAt < this.cacheMs) return this.cached;
    const recent: number[] = [];
    for (let i = 0; i < this.filled; i++) if (now - this.times[i] <= this.windowMs) recent.push(this.values[i]);
    recent.sort((a, b) => a - b);
    this.cached = recent.length === 0 ? 0 : Math.ceil(recent[Math.ceil(0.99 * recent.length) - 1]);
    this.cachedAt = now;
    return this.cached;
  }
}
