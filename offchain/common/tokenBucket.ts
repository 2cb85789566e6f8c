/**
 * A refilling token bucket: `ratePerSecond` tokens a second, at most `burst` saved, starting full. The one rate
 * limit of the services (billing's sign-in nonces per client and credit queries per gateway, the gateway's
 * budget of new customers asked about, the Network API's logins and failed token checks per client). Time is
 * passed in, so callers keep their injected clocks. `KeyedLimiter` keeps one bucket per key (a client, a name);
 * `clientKey` is what a client address is limited by (R17-11).
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

  /** Whether a token is there now (refilled up to `now` first), without taking it. */
  has(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.ratePerSecond);
    this.at = now;
    return this.tokens >= 1;
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

/**
 * Refilling buckets by key (`perMinute` a minute, also the burst), the longest idle forgotten first (a bucket idle
 * for a full minute is full anyway), at most `maxKeys` held (past that the longest idle goes).
 */
export class KeyedLimiter {
  /** key -> bucket; moved to the end on each use, so the front is the longest idle */
  private readonly buckets = new Map<string, TokenBucket>();
  constructor(
    private readonly perMinute: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes one token of `key`'s bucket; the milliseconds until one is back when there is none. */
  take(key: string, now: number): number | undefined {
    for (const [k, b] of this.buckets) {
      if (now - b.lastUsed < 60_000) break;
      this.buckets.delete(k);
    }
    if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    const bucket = this.buckets.get(key) ?? new TokenBucket(this.perMinute / 60, this.perMinute, now);
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    return bucket.take(now) ? undefined : bucket.waitMs();
  }

  /** Whether `key` has a token now (an unknown key has a full bucket); nothing is taken. */
  allows(key: string, now: number): boolean {
    return this.buckets.get(key)?.has(now) ?? true;
  }
}

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/**
 * What a client address is limited by (R17-11): an IPv4 address itself (an IPv4-mapped IPv6 address, ::ffff:a.b.c.d,
 * is that IPv4 address); an IPv6 address by its /64, since one subscriber commonly holds a whole /64 and could
 * otherwise take a fresh address, and a fresh bucket, per attempt.
 */
export function clientKey(ip: string): string {
  if (!ip.includes(":")) return ip;
  const groups = expandIpv6(ip.split("%")[0].toLowerCase());
  if (!groups) return ip;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff)
    return [groups[6] >> 8, groups[6] & 255, groups[7] >> 8, groups[7] & 255].join(".");
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (`::` and a trailing dotted quad expanded), or undefined. */
function expandIpv6(address: string): number[] | undefined {
  const parse = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    for (const g of part.split(":")) {
      if (IPV4.test(g)) {
        const [a, b, c, d] = g.split(".").map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9a-f]{1,4}$/.test(g)) out.push(Number.parseInt(g, 16));
      else return undefined;
    }
    return out;
  };
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  return [...head, ...Array<number>(missing).fill(0), ...tail];
}
