/**
 * Edge DNS limits and billing (D57).
 *
 * - `DnsLimits`: per client network (`clientKey`: the /24 of an IPv4 address, the /56 of an IPv6 one, R18-5), a
 *   token bucket on queries (UDP and TCP; over it a query is dropped and counted); TCP connections at most
 *   `tcpConnections` in all (at the cap the oldest idle one is closed for the new one) and `tcpPerIp` per client
 *   network, closed after `tcpIdleMs` without a query, a message due whole within `tcpMessageMs` of its first byte;
 *   answers are written while the connection's unsent bytes stay under `tcpPendingBytes`, its answers in flight
 *   under `tcpInFlight` and all connections' unsent bytes under `tcpUnsentTotal` (R18-2), else the rest waits.
 * - Response rate limiting (R18-6, UDP): identical answers to one client network at most `rrlPerSecond` (burst
 *   `rrlBurst`); past it every `rrlSlip`th is sent truncated (a real client retries over TCP), the rest dropped.
 *   Billed queries per zone at most `billedPerZonePerSecond`: past it they are answered, not billed (counted).
 *   DNS buckets refill per second with a burst of their own, which offchain/common/tokenBucket.ts's KeyedLimiter
 *   (a minute's worth is its burst) does not fit; the buckets are its TokenBucket.
 * - `BillingTally`: answered queries of customers' zones counted per owner in memory, handed over at most once a
 *   second: all owners in one `billMany` call when given (one journal append, R18-10), else `bill` per owner.
 */
import type { Address } from "viem";

import { isIPv4 } from "node:net";

import { TokenBucket } from "../../../offchain/common/tokenBucket";
import { RCODE } from "./dnsAnswer";
import { questionBytes } from "./dnsEncode";
import type { Outcome } from "./dnsWire";

export interface DnsLimits {
  /** Queries a second per client IP, and its burst. */
  perIpPerSecond: number;
  perIpBurst: number;
  /** Client IPs whose buckets are kept (past that the longest idle goes). */
  maxClients: number;
  tcpConnections: number;
  tcpPerIp: number;
  tcpIdleMs: number;
  /** A TCP message is due whole this long after its first byte (RFC 7766 6.2.3; trickling does not extend it). */
  tcpMessageMs: number;
  tcpPendingBytes: number;
  /** Answers written and not yet taken by the kernel, per connection. */
  tcpInFlight: number;
  /** Unsent answer bytes of all TCP connections together. */
  tcpUnsentTotal: number;
  rrlPerSecond: number;
  rrlBurst: number;
  /** Past the rate, one answer in `rrlSlip` is sent truncated (0: none). */
  rrlSlip: number;
  billedPerZonePerSecond: number;
}

export const DEFAULT_LIMITS: DnsLimits = {
  perIpPerSecond: 2_000,
  perIpBurst: 4_000,
  maxClients: 100_000,
  tcpConnections: 512,
  tcpPerIp: 32,
  tcpIdleMs: 10_000,
  tcpMessageMs: 3_000,
  tcpPendingBytes: 256 * 1024,
  tcpInFlight: 32,
  tcpUnsentTotal: 16 * 1024 * 1024,
  rrlPerSecond: 50,
  rrlBurst: 100,
  rrlSlip: 2,
  billedPerZonePerSecond: 10_000,
};

/** Expands an IPv6 address to its 8 groups (undefined if it is not one). */
function groups(ip: string): number[] | undefined {
  const [head, tail, ...rest] = ip.split("::");
  if (rest.length > 0) return undefined;
  const part = (s: string | undefined) => (s ? s.split(":") : []);
  const left = part(head);
  const right = part(tail);
  const last = (tail === undefined ? left : right).at(-1);
  const v4 = last !== undefined && isIPv4(last) ? last.split(".").map(Number) : undefined;
  if (v4) (tail === undefined ? left : right).splice(-1, 1, ((v4[0] << 8) | v4[1]).toString(16), ((v4[2] << 8) | v4[3]).toString(16)); // prettier-ignore
  const fill = tail === undefined ? 0 : 8 - left.length - right.length;
  if (fill < 0 || (tail === undefined && left.length !== 8)) return undefined;
  const all = [...left, ...Array<string>(fill).fill("0"), ...right].map((g) => parseInt(g, 16));
  return all.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? all : undefined;
}

/**
 * The client network limits are keyed by (R18-5): the /24 of an IPv4 address (an IPv4-mapped IPv6 one too) and
 * the /56 of an IPv6 one (a site's usual assignment), so one host cannot multiply its budget with addresses.
 */
export function clientKey(ip: string): string {
  if (isIPv4(ip)) return `${ip.slice(0, ip.lastIndexOf("."))}.0/24`;
  const g = groups(ip.replace(/%.*$/, ""));
  if (!g) return ip;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `${g[6] >> 8}.${g[6] & 0xff}.${g[7] >> 8}.0/24`;
  return `${g[0].toString(16)}:${g[1].toString(16)}:${g[2].toString(16)}:${(g[3] & 0xff00).toString(16)}::/56`;
}

/** Token buckets by key (a client network, an answer, a zone), the longest idle forgotten first. */
export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly idleMs: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly max: number,
  ) {
    this.idleMs = (burst / perSecond) * 1000;
  }

  /** Takes a token of `key`'s bucket: false when it has none. */
  take(key: string, now: number): boolean {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
    } else {
      for (const [k, b] of this.buckets) {
        if (now - b.lastUsed < this.idleMs && this.buckets.size < this.max) break;
        this.buckets.delete(k);
      }
      bucket = new TokenBucket(this.perSecond, this.burst, now);
    }
    this.buckets.set(key, bucket);
    return bucket.take(now);
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** Query buckets by client network (`clientKey`). */
export class ClientBuckets extends KeyedBuckets {
  constructor(limits: Pick<DnsLimits, "perIpPerSecond" | "perIpBurst" | "maxClients">) {
    super(limits.perIpPerSecond, limits.perIpBurst, limits.maxClients);
  }
}

export interface AnswerHooks {
  dropped(): void;
  slipped(): void;
  unbilled(): void;
  bill(owner: Address): void;
}

/** Response rate limiting on UDP and the billed rate per zone (R18-6). */
export class AnswerLimits {
  private readonly rrl: KeyedBuckets;
  private readonly billed: KeyedBuckets;
  private over = 0;

  constructor(
    private readonly limits: DnsLimits,
    private readonly hooks: AnswerHooks,
  ) {
    this.rrl = new KeyedBuckets(limits.rrlPerSecond, limits.rrlBurst, limits.maxClients);
    this.billed = new KeyedBuckets(limits.billedPerZonePerSecond, limits.billedPerZonePerSecond, 1_000_000);
  }

  /**
   * What goes back for a UDP answer to `network`: past the budget of identical answers (NXDOMAIN and refusals
   * share one per zone, others one per question), every `rrlSlip`th is sent truncated (header and question, TC:
   * a real client retries over TCP, a spoofed victim gets no amplification), the rest dropped (undefined).
   */
  send(msg: Buffer, outcome: Outcome, network: string, apex: string | undefined, now: number): Buffer | undefined {
    const what =
      outcome.kind === "refused" || outcome.kind === "malformed"
        ? outcome.kind
        : outcome.rcode === RCODE.NXDOMAIN
          ? `nx ${apex ?? "-"}`
          : `${outcome.rcode} ${outcome.qtype} ${outcome.qname}`;
    if (this.rrl.take(`${network}|${what}`, now)) return outcome.response;
    this.over = (this.over + 1) % 1_000_000;
    const question = questionBytes(msg);
    if (this.limits.rrlSlip <= 0 || this.over % this.limits.rrlSlip !== 0 || !question) {
      this.hooks.dropped();
      return undefined;
    }
    this.hooks.slipped();
    const out = Buffer.alloc(12 + question.length);
    outcome.response!.copy(out, 0, 0, 4); // id and flags
    out[2] |= 0x02; // TC
    out.writeUInt16BE(1, 4);
    question.copy(out, 12);
    return out;
  }

  /** Bills a zone's answered query unless its zone is over the billed rate (then it is only counted). */
  bill(outcome: Outcome, apex: string | undefined, now: number): void {
    const owner = outcome.reply?.owner;
    if (!owner || outcome.kind !== "zone") return;
    if (this.billed.take(apex ?? owner, now)) this.hooks.bill(owner);
    else this.hooks.unbilled();
  }
}

export class BillingTally {
  private readonly counts = new Map<Address, bigint>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bill: (owner: Address, queries: bigint) => void,
    private readonly onError: (error: Error) => void,
    private readonly intervalMs = 1_000,
    private readonly billMany?: (counts: ReadonlyArray<readonly [Address, bigint]>) => void,
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
    if (this.billMany && counts.length > 0) {
      try {
        this.billMany(counts);
      } catch (error) {
        this.onError(error as Error);
      }
      return;
    }
    for (const [owner, n] of counts) {
      try {
        this.bill(owner, n);
      } catch (error) {
        this.onError(error as Error);
      }
    }
  }
}
