/**
 * Customers' credit at the gateway (PROTOCOL.md, Revision 2, "Credit"; decision D43): a job is taken only while
 * the customer's remaining credit, as billing last answered it less what this gateway served since, covers the
 * job's price. The check runs before the work; a job that ran is always recorded and billed.
 *
 * - Billing is asked every `refreshMs` (at most 5 s), in signed CreditQueries of up to 1,000 customers, about the
 *   customers that matter (H3): those with a collectable balance in the last answer (remaining above the free
 *   buffer everyone has) first, then those this gateway served, each seen in the last 10 minutes. A failed page
 *   does not stop the later ones. An address answered with the free buffer at most and not served here (a key
 *   made up to flood the gateway, or a customer without a deposit) is not refreshed: its next request asks again
 *   once its answer is older than the back-off (30 s, at most `maxStaleMs`).
 * - A customer without an answer (or past its back-off) is asked at once, coalesced with others, within a budget
 *   of new addresses per second (NEW_PER_SECOND, burst NEW_BURST): beyond it a request is refused with 402
 *   EDGE_NODE_CREDIT_UNKNOWN ("retry shortly") without asking billing, so a flood of fresh keys costs billing a
 *   bounded number of reads and never crowds out the known customers' refresh.
 * - What billing cannot know yet is counted here: the usage not yet in a batch, the batches in the outbox, and
 *   what was served while the query was under way. Before a query the meter is queued and the served totals
 *   snapshotted in the same tick (a meter queued later only counts some usage twice: the safe side); the periodic
 *   refresh then sends the outbox (a first job's query does not wait on it), and the billing batches still
 *   unacknowledged when the query leaves are priced and subtracted. So this gateway never overdraws on its own;
 *   another gateway's usage of the same customer is seen at the next refresh (the bound is the refresh interval).
 * - Jobs in flight are reserved at admission, so concurrent jobs cannot all pass the same check.
 * - Billing unreachable: the last answer is used (still less what was served since) for `maxStaleMs`; after
 *   that, and for a customer billing never answered, jobs are refused with 402 EDGE_NODE_CREDIT_UNKNOWN (fail
 *   closed: the overdraft stays bounded). Never a 5xx.
 */
import { signCreditQuery, type CreditReply, MAX_CREDIT_CUSTOMERS } from "../../../offchain/common/protocol/creditQuery";
import { TokenBucket } from "../../../offchain/common/tokenBucket";
import type { FastifyBaseLogger } from "fastify";

import type { Signer } from "../../context";
import { nodeError } from "../../errors";
import type { OutboxItem } from "../../outbox";

/** A customer not seen for this long is not asked about any more. */
const IDLE_MS = 10 * 60_000;
/** On-demand queries (new customers) are at least this far apart. */
const ON_DEMAND_GAP_MS = 100;
const QUERY_TIMEOUT_MS = 3_000;
/** An address whose last answer gave it the free buffer at most is asked again on a request only after this. */
const BACKOFF_MS = 30_000;
/** Addresses asked about on demand (first sightings and expired back-offs): per second, and the burst. */
const NEW_PER_SECOND = 100;
const NEW_BURST = 200;

export interface UsageLine {
  service: string;
  metric: string;
  quantity: bigint;
}

export interface CreditContext {
  signer: Signer;
  log: Pick<FastifyBaseLogger, "warn">;
  /** The outbox's pending items (usage batches not acknowledged by billing yet). */
  pending(): readonly OutboxItem[];
  /** Queues the usage meter into the outbox, taking the meter's content synchronously when called. */
  queueUsage(): Promise<void>;
  /** Sends the outbox: each refresh delivers this gateway's usage, so other gateways see it at their next one. */
  flush(): Promise<unknown>;
}

export interface CreditOptions {
  billingUrl: string;
  refreshMs: number;
  maxStaleMs: number;
  now?: () => number;
}

interface Entry {
  remaining: bigint;
  /** When the query that answered it was started (local clock). */
  at: number;
  /** served(customer) and the outbox's unacknowledged usage when that query started. */
  servedAtStart: bigint;
  pendingAtStart: bigint;
  period: string;
  /** Whether the answer's remaining was above the free buffer (a collectable balance not used up): refreshed. */
  funded: boolean;
}

/** A job's reserved price; `complete` when it ran (with its usage recorded), `release` when it did not. */
export interface Reservation {
  customer: string;
  /** What is reserved now (it grows with `extend`). */
  cost: bigint;
}

type Prices = CreditReply["prices"];

export class CreditLimiter {
  private readonly entries = new Map<string, Entry>();
  /** Priced usage served per customer since start (only grows). */
  private readonly served = new Map<string, bigint>();
  private readonly reserved = new Map<string, bigint>();
  private readonly lastSeen = new Map<string, number>();
  /** When this gateway last served each customer (or reserved a job for it). */
  private readonly lastServed = new Map<string, number>();
  private readonly newBudget = new TokenBucket(NEW_PER_SECOND, NEW_BURST, 0);
  private prices: Prices | undefined;
  private readonly wanted = new Set<string>();
  private onDemand: Promise<void> | undefined;
  private onDemandChain: Promise<void> = Promise.resolve();
  private lastOnDemand = 0;
  private readonly now: () => number;
  private readonly backoffMs: number;
  private refused = 0;

  constructor(
    private readonly ctx: CreditContext,
    private readonly options: CreditOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.backoffMs = Math.min(BACKOFF_MS, options.maxStaleMs);
  }

  /** Jobs refused for credit so far. */
  get refusedCount(): number {
    return this.refused;
  }

  /** Customers with a known credit. */
  get known(): number {
    return this.entries.size;
  }

  /** Reserves a job's price, or throws 402 (exhausted, or unknown while billing is unreachable). */
  async reserve(customerAddress: string, usage: UsageLine[]): Promise<Reservation> {
    const customer = customerAddress.toLowerCase();
    const now = this.now();
    this.lastSeen.set(customer, now);
    const known = this.entries.get(customer);
    if (!known || !this.prices || (this.unrefreshed(customer, known, now) && now - known.at > this.backoffMs)) {
      if (this.wanted.has(customer) || this.newBudget.take(now)) await this.askSoon(customer);
      else if (!known)
        throw this.refuse(
          "EDGE_NODE_CREDIT_UNKNOWN",
          "too many new customers at once: billing has not been asked about this one yet; retry shortly",
        );
    }
    const entry = this.entries.get(customer);
    const prices = this.prices;
    if (!entry || !prices)
      throw this.refuse("EDGE_NODE_CREDIT_UNKNOWN", "billing has not answered for this customer yet: retry shortly");
    const age = this.now() - entry.at;
    if (age > this.options.maxStaleMs)
      throw this.refuse(
        "EDGE_NODE_CREDIT_UNKNOWN",
        `the customer's credit is unknown: billing unreachable for ${Math.round(age / 1000)} s; retry later`,
      );
    const cost = priceLines(prices, usage);
    const available = this.available(customer, entry);
    if (cost > available) {
      throw this.refuse(
        "EDGE_NODE_CREDIT_EXHAUSTED",
        `customer ${customer} has used its credit for period ${entry.period}: ${available > 0n ? available : 0n} ` +
          `left, the job costs ${cost} (base units); deposit to PaymentVault to continue`,
      );
    }
    // No await between the check and the reservation: concurrent jobs see each other.
    this.reserved.set(customer, (this.reserved.get(customer) ?? 0n) + cost);
    this.lastServed.set(customer, now);
    return { customer, cost };
  }

  /**
   * More of a running job's usage, reserved before it is served (a response's egress, a step at a time, R8): true
   * if the customer's credit covers it (the reservation grows), false if not (the job must stop). Synchronous: the
   * customer's credit is known, its request passed `reserve`.
   */
  extend(r: Reservation, usage: UsageLine[]): boolean {
    const entry = this.entries.get(r.customer);
    if (!entry || !this.prices) return false;
    const cost = priceLines(this.prices, usage);
    if (cost > this.available(r.customer, entry)) {
      this.refused += 1;
      return false;
    }
    this.reserved.set(r.customer, (this.reserved.get(r.customer) ?? 0n) + cost);
    r.cost += cost;
    return true;
  }

  /**
   * The job ran: what was reserved for it is released and the price of what it used is served (call in the same
   * tick as recording its usage). `used` is the job's actual usage when it differs from what was reserved (a
   * response's egress is reserved in steps, used to the byte); without it, the reservation is the price.
   */
  complete(r: Reservation, used?: UsageLine[]): void {
    this.unreserve(r);
    const cost = used && this.prices ? priceLines(this.prices, used) : r.cost;
    this.served.set(r.customer, (this.served.get(r.customer) ?? 0n) + cost);
  }

  /** The job did not run: nothing is owed. */
  release(r: Reservation): void {
    this.unreserve(r);
  }

  /** What the customer may still use here: billing's answer less what billing had not seen then or since. */
  available(customer: string, entry = this.entries.get(customer)): bigint {
    if (!entry) return 0n;
    const since = (this.served.get(customer) ?? 0n) - entry.servedAtStart;
    return entry.remaining - entry.pendingAtStart - since - (this.reserved.get(customer) ?? 0n);
  }

  /**
   * One refresh, the WorkLoop's work: the funded customers seen lately, then those served here, in pages; a page
   * that fails does not stop the others (the error is thrown once all were tried).
   */
  async refresh(): Promise<void> {
    const now = this.now();
    const cutoff = now - IDLE_MS;
    for (const [customer, seen] of this.lastSeen) {
      if (seen >= cutoff || this.reserved.get(customer)) continue;
      this.lastSeen.delete(customer);
      this.lastServed.delete(customer);
      this.entries.delete(customer);
      this.served.delete(customer);
    }
    const funded: string[] = [];
    const served: string[] = [];
    for (const customer of this.lastSeen.keys()) {
      const entry = this.entries.get(customer);
      if (entry?.funded) funded.push(customer);
      else if (entry && !this.unrefreshed(customer, entry, now)) served.push(customer);
    }
    const customers = [...funded, ...served];
    let failed: Error | undefined;
    let failures = 0;
    for (let i = 0; i < customers.length; i += MAX_CREDIT_CUSTOMERS) {
      await this.ask(customers.slice(i, i + MAX_CREDIT_CUSTOMERS), i === 0).catch((error: Error) => {
        failed ??= error;
        failures += 1;
      });
    }
    if (failed) {
      const pages = Math.ceil(customers.length / MAX_CREDIT_CUSTOMERS);
      throw new Error(`${failures} of ${pages} credit pages failed: ${failed.message}`);
    }
  }

  /** Not in the periodic refresh: answered with the free buffer at most, and not served here lately. */
  private unrefreshed(customer: string, entry: Entry, now: number): boolean {
    if (entry.funded) return false;
    const served = this.lastServed.get(customer);
    return served === undefined || now - served > IDLE_MS;
  }

  /** Asks at once (coalesced with other first sightings; one on-demand query at a time). */
  private askSoon(customer: string): Promise<void> {
    this.wanted.add(customer);
    if (this.onDemand) return this.onDemand;
    const previous = this.onDemandChain;
    const run = (async () => {
      await previous;
      const wait = this.lastOnDemand + ON_DEMAND_GAP_MS - this.now();
      await new Promise((r) => setTimeout(r, Math.max(0, wait)));
      this.onDemand = undefined;
      this.lastOnDemand = this.now();
      const batch = [...this.wanted].slice(0, NEW_BURST);
      for (const c of batch) this.wanted.delete(c);
      // No flush here: a first job must not wait on the outbox (the periodic refresh sends it).
      await this.ask(batch, false).catch((error: Error) =>
        this.ctx.log.warn({ err: error.message }, "could not ask billing for credit"),
      );
    })();
    this.onDemand = run;
    this.onDemandChain = run;
    return run;
  }

  /** One signed query (after sending the outbox when `flush`); the answers replace older ones. */
  private async ask(customers: string[], flush: boolean): Promise<void> {
    if (customers.length === 0) return;
    const started = this.now();
    // Same tick: what was served so far is either in the meter (queued now) or already in the outbox.
    const servedAtStart = new Map(customers.map((c) => [c, this.served.get(c) ?? 0n]));
    const queued = this.ctx.queueUsage();
    await queued;
    if (flush) await this.ctx.flush().catch(() => 0);
    // Batches acknowledged from here on may or may not be in billing's answer: counted here as not.
    const pending = [...this.ctx.pending()];
    const body = await signCreditQuery(this.ctx.signer.account, this.ctx.signer.chainId, customers);
    const response = await fetch(`${this.options.billingUrl.replace(/\/$/, "")}/credit`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(QUERY_TIMEOUT_MS),
    });
    const reply = (await response.json().catch(() => ({}))) as CreditReply & { error?: string };
    if (!response.ok || !Array.isArray(reply.credits))
      throw new Error(`billing answered ${response.status} ${reply.error ?? ""}`.trim());
    this.prices = reply.prices;
    const freeBuffer = BigInt(reply.freeBuffer ?? "0");
    const pendingNow = pendingUsage(reply.prices, pending);
    for (const credit of reply.credits) {
      const older = this.entries.get(credit.customer);
      if (older && older.at > started) continue; // a later query already answered
      this.entries.set(credit.customer, {
        remaining: BigInt(credit.remaining),
        at: started,
        servedAtStart: servedAtStart.get(credit.customer) ?? 0n,
        pendingAtStart: pendingNow.get(credit.customer) ?? 0n,
        period: reply.period,
        funded: BigInt(credit.remaining) > freeBuffer,
      });
    }
  }

  private unreserve(r: Reservation): void {
    const left = (this.reserved.get(r.customer) ?? 0n) - r.cost;
    if (left > 0n) this.reserved.set(r.customer, left);
    else this.reserved.delete(r.customer);
  }

  private refuse(code: "EDGE_NODE_CREDIT_EXHAUSTED" | "EDGE_NODE_CREDIT_UNKNOWN", message: string) {
    this.refused += 1;
    return nodeError(code, message);
  }
}

/** A price rounded up per job (billing floors per line of the period's total: never more than this). */
function priceLines(prices: Prices, usage: UsageLine[]): bigint {
  let cost = 0n;
  for (const { service, metric, quantity } of usage) {
    const price = prices[service]?.[metric];
    if (!price) continue; // billing would refuse the batch: nothing it could bill
    const size = BigInt(price.unitSize);
    cost += (quantity * BigInt(price.unitPrice) + size - 1n) / size;
  }
  return cost;
}

/** The outbox's usage batches for billing, priced per customer. */
function pendingUsage(prices: Prices, items: readonly OutboxItem[]): Map<string, bigint> {
  const byCustomer = new Map<string, bigint>();
  for (const item of items) {
    if (item.target !== "billing" || item.path !== "/usage") continue;
    for (const r of item.body.records) {
      const customer = r.customer.toLowerCase();
      const cost = priceLines(prices, [{ service: r.service, metric: r.metric, quantity: BigInt(r.quantity) }]);
      byCustomer.set(customer, (byCustomer.get(customer) ?? 0n) + cost);
    }
  }
  return byCustomer;
}
