/**
 * HTTP targets resolved through named DNS servers (D58): `resolve: {servers: ["host:port", ...]}` makes Newton go
 * through DNS-resolved gateways, as a user's browser does, rather than to a fixed address.
 *
 * - The target URL's host is resolved with a node:dns Resolver whose servers are exactly those given (setServers),
 *   A first, AAAA when there is no A. An answer is kept for its TTL (the smallest of its records'); concurrent
 *   requests share one lookup in flight.
 * - Each request takes the next address of the answer in turn (rotation), and goes through that address's own
 *   undici Pool (keep-alive), with the URL's host as the Host header (and SNI for https).
 * - A pool whose address is no longer in the answer is closed once its requests in flight end: a gateway that DNS
 *   stops returning (drained) gets no new requests from Newton one TTL later. (A connect-time `lookup` in one pool
 *   for the hostname would keep sending to a drained gateway over its kept-alive connections.)
 * - A lookup that fails (no answer, SERVFAIL, REFUSED, timeout) fails the request as an error of kind `dns`.
 */
import { Resolver } from "node:dns/promises";
import { isIP } from "node:net";

import { Pool } from "undici";

import { parseServer } from "./dnsProbe";

export interface ResolveOption {
  /** DNS servers as "address:port" ("[::1]:53" for IPv6), asked in order. */
  servers: readonly string[];
}

/** A lookup that failed: the engine counts it as an error of kind `dns`. */
export class DnsLookupError extends Error {
  readonly kind = "dns";
}

interface Cached {
  addresses: string[];
  expiresAt: number;
}

export class CachingResolver {
  private readonly resolver: Resolver;
  private readonly cache = new Map<string, Cached>();
  private readonly inFlight = new Map<string, Promise<string[]>>();

  constructor(
    servers: readonly string[],
    timeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (servers.length === 0) throw new RangeError("resolve.servers names no DNS server");
    for (const server of servers) parseServer(server);
    this.resolver = new Resolver({ timeout: Math.max(1, Math.min(timeoutMs, 5_000)), tries: 2 });
    this.resolver.setServers([...servers]);
  }

  /** The addresses of `name` (an IP literal is its own answer). */
  lookup(name: string): Promise<string[]> {
    if (isIP(name)) return Promise.resolve([name]);
    const cached = this.cache.get(name);
    if (cached && cached.expiresAt > this.now()) return Promise.resolve(cached.addresses);
    let lookup = this.inFlight.get(name);
    if (!lookup) {
      lookup = this.resolve(name).finally(() => this.inFlight.delete(name));
      this.inFlight.set(name, lookup);
    }
    return lookup;
  }

  cancel(): void {
    this.resolver.cancel();
  }

  private async resolve(name: string): Promise<string[]> {
    let records: Array<{ address: string; ttl: number }>;
    try {
      records = await this.resolver.resolve4(name, { ttl: true });
    } catch (error) {
      if ((error as { code?: string }).code !== "ENODATA") throw lookupError(name, error);
      records = await this.resolver.resolve6(name, { ttl: true }).catch((e: unknown) => {
        throw lookupError(name, e);
      });
    }
    if (records.length === 0) throw new DnsLookupError(`${name}: no address`);
    const ttl = Math.min(...records.map((r) => r.ttl));
    const addresses = records.map((r) => r.address);
    this.cache.set(name, { addresses, expiresAt: this.now() + ttl * 1000 });
    return addresses;
  }
}

const lookupError = (name: string, error: unknown) =>
  new DnsLookupError(`${name}: ${(error as { code?: string }).code ?? (error as Error).message}`);

export interface PoolOptions {
  connections: number;
  timeoutMs: number;
}

/** One undici Pool per resolved address of a URL's host, taken in turn per request. */
export class ResolvedPools {
  private readonly pools = new Map<string, Pool>();
  private readonly url: URL;
  private turn = 0;
  private closed = false;

  constructor(
    url: string,
    private readonly resolver: CachingResolver,
    private readonly options: PoolOptions,
  ) {
    this.url = new URL(url);
  }

  /** The pool of the next address, and the Host header the request carries. */
  async next(): Promise<{ pool: Pool; host: string }> {
    const addresses = await this.resolver.lookup(this.url.hostname);
    this.retire(addresses);
    const address = addresses[this.turn++ % addresses.length];
    let pool = this.pools.get(address);
    if (!pool) {
      const host = isIP(address) === 6 ? `[${address}]` : address;
      const origin = `${this.url.protocol}//${host}${this.url.port ? `:${this.url.port}` : ""}`;
      pool = new Pool(origin, {
        connections: this.options.connections,
        pipelining: 1,
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
        connectTimeout: this.options.timeoutMs,
        ...(this.url.protocol === "https:" && !isIP(this.url.hostname)
          ? { connect: { servername: this.url.hostname } }
          : {}),
      });
      if (!this.closed) this.pools.set(address, pool);
    }
    return { pool, host: this.url.host };
  }

  /** The addresses Newton holds a pool for now. */
  get addresses(): string[] {
    return [...this.pools.keys()];
  }

  async close(): Promise<void> {
    this.closed = true;
    this.resolver.cancel();
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }

  /** Closes (after their requests in flight) the pools of addresses the answer no longer holds. */
  private retire(addresses: readonly string[]): void {
    for (const [address, pool] of this.pools) {
      if (addresses.includes(address)) continue;
      this.pools.delete(address);
      // After the microtasks: a request that already took this pool dispatches on it first.
      setImmediate(() => void pool.close().catch(() => undefined));
    }
  }
}
