/**
 * A bounded memory of signed messages already taken, keyed on the signed digest (never on a signature's text:
 * v 27/28 or 0/1, letter case and the high-s twin all sign the same digest). Each digest is kept until the
 * message's own timestamp leaves the signature window, after which the freshness check refuses it anyway, so
 * forgetting it then opens no replay. At most `capacity` digests are held: past that, new messages are refused
 * (503, retry later) rather than the memory growing or an unexpired digest being forgotten.
 *
 * `reserve` is synchronous on purpose: a receiver reserves before its first await, so N identical requests
 * arriving together see one reservation, and `release`s it when it refuses the request for a reason that lets
 * the sender try again (nothing was served).
 */
export type Reservation = "reserved" | "seen" | "full";

export class ReplayGuard {
  /** digest -> the second after which it may be forgotten */
  private readonly expiries = new Map<string, number>();
  /** expiry second -> digests, so expired digests are found without a scan */
  private readonly buckets = new Map<number, Set<string>>();
  /** every bucket before this second is gone */
  private swept: number;

  constructor(
    readonly capacity: number,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.swept = Math.floor(nowMs() / 1000);
  }

  /** Reserves `digest` until `expiresAtMs`; "seen" when it is held already, "full" when no room is left. */
  reserve(digest: string, expiresAtMs: number): Reservation {
    this.sweep();
    if (this.expiries.has(digest)) return "seen";
    if (this.expiries.size >= this.capacity) return "full";
    const second = Math.max(Math.ceil(expiresAtMs / 1000), this.swept);
    this.expiries.set(digest, second);
    let bucket = this.buckets.get(second);
    if (!bucket) this.buckets.set(second, (bucket = new Set()));
    bucket.add(digest);
    return "reserved";
  }

  /** Forgets `digest` (its message was refused and may be sent again). */
  release(digest: string): void {
    const second = this.expiries.get(digest);
    if (second === undefined) return;
    this.expiries.delete(digest);
    const bucket = this.buckets.get(second);
    bucket?.delete(digest);
    if (bucket?.size === 0) this.buckets.delete(second);
  }

  has(digest: string): boolean {
    this.sweep();
    return this.expiries.has(digest);
  }

  /** Digests held now. */
  get size(): number {
    return this.expiries.size;
  }

  /** Drops the digests whose expiry second has passed (walks the seconds since the last sweep). */
  private sweep(): void {
    const now = Math.floor(this.nowMs() / 1000);
    if (now - this.swept > 4 * 3600 && this.buckets.size < now - this.swept) {
      // Idle for hours: visit the buckets that exist rather than every second in between.
      for (const second of [...this.buckets.keys()]) if (second < now) this.dropBucket(second);
    } else {
      for (let second = this.swept; second < now; second++) this.dropBucket(second);
    }
    this.swept = Math.max(this.swept, now);
  }

  private dropBucket(second: number): void {
    const bucket = this.buckets.get(second);
    if (!bucket) return;
    for (const digest of bucket) this.expiries.delete(digest);
    this.buckets.delete(second);
  }
}
