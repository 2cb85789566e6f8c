import { LatencyWindow } from "./latencyWindow";

/** Counts work in flight, so draining and shutdown can wait for it, and times it (the p99 of /ready's load, D71). */
export class WorkTracker {
  /** How long recent pieces of work took (ms). */
  readonly latency = new LatencyWindow();
  private count = 0;
  private waiters: Array<() => void> = [];

  get inFlight(): number {
    return this.count;
  }

  /**
   * Counts one piece of work in; the returned function counts it out (once, however often it is called). `timed`
   * false: its duration is not recorded (the role records the part it controls itself, R20-4).
   */
  begin(timed = true): () => void {
    this.count += 1;
    let done = false;
    const time = timed ? this.latency.start() : () => undefined;
    return () => {
      if (done) return;
      done = true;
      time();
      this.count -= 1;
      if (this.count === 0) for (const wake of this.waiters.splice(0)) wake();
    };
  }

  /** Runs `work`, counted in flight until it settles (and timed, unless `timed` is false). */
  async track<T>(work: () => Promise<T>, timed = true): Promise<T> {
    const done = this.begin(timed);
    try {
      return await work();
    } finally {
      done();
    }
  }

  waitIdle(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}
