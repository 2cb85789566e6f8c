/**
 * A refilling token bucket: `ratePerSecond` tokens a second, at most `burst` saved, starting full. The one rate
 * limit of the services (billing's sign-in nonces per client and credit queries per gateway, the gateway's
 * budget of new customers asked about). Time is passed in, so callers keep their injected clocks.
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Takes one token if there is one (refilled up to `now` first). */
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.ratePerSecond);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** When the bucket last refilled: a bucket idle for `burst / ratePerSecond` seconds is full again. */
  get lastUsed(): number {
    return this.at;
  }

  /** Milliseconds until one token is back. */
  waitMs(): number {
    return Math.max(0, Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond));
  }
}
