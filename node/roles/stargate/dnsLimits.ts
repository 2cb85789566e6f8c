/**
 * Edge DNS limits and billing (D57).
 *
 * - `DnsLimits`: per client IP, a token bucket on queries (UDP and TCP; over it a query is dropped and counted);
 *   TCP connections at most `tcpConnections` in all and `tcpPerIp` per client, closed after `tcpIdleMs` idle; a
 *   connection whose answers are not read (over `tcpPendingBytes` unsent) is not read from until they drain.
 *   DNS buckets refill per second with a burst of their own, which offchain/common/tokenBucket.ts's KeyedLimiter
 *   (a minute's worth is its burst) does not fit; the buckets are its TokenBucket.
 * - `BillingTally`: answered queries of customers' zones counted per owner in memory, handed to `bill` at most
 *   once a second per owner (billing journals each call to disk: never per query).
 */
import type { Address } from "viem";

import { TokenBucket } from "../../../offchain/common/tokenBucket";

export interface DnsLimits {
  /** Queries a second per client IP, and its burst. */
  perIpPerSecond: number;
  perIpBurst: number;
  /** Client IPs whose buckets are kept (past that the longest idle goes). */
  maxClients: number;
  tcpConnections: number;
  tcpPerIp: number;
  tcpIdleMs: number;
  tcpPendingBytes: number;
}

export const DEFAULT_LIMITS: DnsLimits = {
  perIpPerSecond: 2_000,
  perIpBurst: 4_000,
  maxClients: 100_000,
  tcpConnections: 512,
  tcpPerIp: 32,
  tcpIdleMs: 10_000,
  tcpPendingBytes: 256 * 1024,
};

/** Token buckets by client IP, the longest idle forgotten first. */
export class ClientBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly idleMs: number;

  constructor(private readonly limits: Pick<DnsLimits, "perIpPerSecond" | "perIpBurst" | "maxClients">) {
    this.idleMs = (limits.perIpBurst / limits.perIpPerSecond) * 1000;
  }

  /** Takes a token of `ip`'s bucket: false when it has none (the query is dropped). */
  take(ip: string, now: number): boolean {
    let bucket = this.buckets.get(ip);
    if (bucket) {
      this.buckets.delete(ip);
    } else {
      for (const [k, b] of this.buckets) {
        if (now - b.lastUsed < this.idleMs && this.buckets.size < this.limits.maxClients) break;
        this.buckets.delete(k);
      }
      bucket = new TokenBucket(this.limits.perIpPerSecond, this.limits.perIpBurst, now);
    }
    this.buckets.set(ip, bucket);
    return bucket.take(now);
  }

  get size(): number {
    return this.buckets.size;
  }
}

export class BillingTally {
  private readonly counts = new Map<Address, bigint>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bill: (owner: Address, queries: bigint) => void,
    private readonly onError: (error: Error) => void,
    private readonly intervalMs = 1_000,
  ) {}

  add(owner: Address): void {
    this.counts.set(owner, (this.counts.get(owner) ?? 0n) + 1n);
  }

  start(): void {
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.flush();
  }

  /** Hands every owner's count to `bill` and starts counting again. */
  flush(): void {
    const counts = [...this.counts];
    this.counts.clear();
    for (const [owner, n] of counts) {
      try {
        this.bill(owner, n);
      } catch (error) {
        this.onError(error as Error);
      }
    }
  }
}
