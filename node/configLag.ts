/**
 * A stargate that withholds anchored versions (R17-8, in part): the chain names the latest anchored version, and a
 * stream that has not delivered it within `maxBehindMs` is dropped for the next stargate of the list. "Delivered"
 * means verified, applied or not: a version the node's role refused (NACK) is not the stargate's fault.
 */
export interface LagWatchOptions {
  /** The chain's latest anchored version. */
  latest(): Promise<number>;
  /** The newest version this stream delivered; undefined while no stream is up. */
  delivered(): number | undefined;
  /** Ends the stream as untrusted, with the reason. */
  drop(reason: string): void;
  maxBehindMs: number;
  now?: () => number;
}

export class LagWatch {
  private since: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(private readonly options: LagWatchOptions) {}

  start(): void {
    if (this.timer) return;
    const every = Math.max(50, Math.min(5_000, this.options.maxBehindMs / 4));
    this.timer = setInterval(() => void this.check(), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look: behind since when, and the drop once that passes the bound. A chain read failing changes nothing. */
  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const delivered = this.options.delivered();
      const latest = delivered === undefined ? undefined : await this.options.latest().catch(() => undefined);
      const now = (this.options.now ?? Date.now)();
      if (delivered === undefined || latest === undefined || latest <= delivered) {
        if (latest !== undefined || delivered === undefined) this.since = null;
        return;
      }
      this.since ??= now;
      if (now - this.since < this.options.maxBehindMs) return;
      this.since = null;
      this.options.drop(
        `behind: the chain anchors version ${latest}, this stargate delivered ${delivered} for ${this.options.maxBehindMs} ms`,
      );
    } finally {
      this.checking = false;
    }
  }
}
