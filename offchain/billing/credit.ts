/**
 * Customers' credit (PROTOCOL.md, Revision 2, "Credit"; decision D43): what each customer may still use in the
 * open period, for the gateways that must stop serving it when the prepaid balance plus the free buffer no
 * longer covers its usage so far, priced.
 *
 *   collectable = balance - outstanding debt - pending withdrawal - bills closed but not settled yet
 *                 - earlier periods still open (in their grace time), priced less the free buffer
 *                 at least 0; with a spending cap (0: none), at most max(0, cap - outstanding debt): settlement
 *                 pays the debt first within the period's cap (PaymentVault._settleBill)
 *   remaining   = max(0, collectable + freeBuffer - usage of the current period so far, priced)
 *
 * The vault reads are cached per customer for `balanceMaxAgeMs` (one cache for every gateway asking); billing's
 * usage totals are live. Who may ask is CreditGuard's business: a query signed by the device key of a gateway
 * the chain view admits, fresh, never seen before (keyed on the EIP-712 digest), within a per-gateway rate.
 * Usage per customer is not public (it tells who uses the network how much), so the endpoint is not either, and
 * a gateway is told only what it needs to admit jobs: `remaining` and `exhausted` (L4), not usage or balance.
 */
import type { Address, PublicClient } from "viem";

import type { ChainView } from "../common/chainView";
import { paymentVaultAbi } from "../common/generated/abis";
import { type PeriodScheme, periodIdOf, periodIndex } from "../common/period";
import {
  type CreditQueryBody,
  type CreditReply,
  type CustomerCredit,
  creditQueryDigest,
  creditQuerySigner,
} from "../common/protocol/creditQuery";
import { ReplayGuard } from "../common/replayGuard";
import { senderStanding } from "../common/service/admittedSender";
import { StakeType } from "../common/stakeMap";
import { TokenBucket } from "../common/tokenBucket";
import { type PriceList, makeBill } from "./bills";
import { billingError } from "./errors";
import type { OpenUsage } from "./openUsage";
import { periodAt } from "./periods";
import type { BillingStore } from "./store";

/** What the vault says of a customer, as read at `at`. */
export interface VaultAccount {
  balance: bigint;
  outstanding: bigint;
  cap: bigint;
  withdrawing: bigint;
  at: number;
}

/** Reads the vault accounts of many customers at once, with the spending cap in force for period `index`. */
export type VaultAccountsReader = (customers: Address[], index: number) => Promise<VaultAccount[]>;

/**
 * Four views per customer, all issued in one tick: the client's JSON-RPC batch transport (ChainService's
 * `batchSize`) sends them as a few batched requests at once, one round trip per query rather than one per 16
 * customers (H3). Hardhat deploys no Multicall3, so eth_call batching is the portable way.
 */
export function vaultAccountsReader(client: PublicClient, vault: Address, now: () => number): VaultAccountsReader {
  const read = (functionName: string, args: unknown[]) =>
    client.readContract({ address: vault, abi: paymentVaultAbi, functionName, args } as never) as Promise<unknown>;
  return async (customers, index) => {
    // At most MAX_CREDIT_CUSTOMERS (1,000) customers per query: 4,000 calls in batches of the transport's size.
    return Promise.all(
      customers.map(async (customer) => {
        const [balance, outstanding, cap, pending] = await Promise.all([
          read("balanceOf", [customer]) as Promise<bigint>,
          read("outstanding", [customer]) as Promise<bigint>,
          read("spendingCapAt", [customer, BigInt(index)]) as Promise<bigint>,
          read("pendingWithdrawal", [customer]) as Promise<readonly [bigint, bigint, bigint]>,
        ]);
        // An announced withdrawal leaves the balance unless its window has closed.
        const [amount, , expiresAt] = pending;
        const withdrawing = expiresAt === 0n || expiresAt * 1000n > BigInt(now()) ? amount : 0n;
        return { balance, outstanding, cap, withdrawing, at: now() };
      }),
    );
  };
}

export interface CreditDeps {
  store: BillingStore;
  openUsage: OpenUsage;
  prices: PriceList;
  scheme: PeriodScheme;
  readAccounts: VaultAccountsReader;
  /** How old a vault read may be when it is used. */
  balanceMaxAgeMs: number;
  now: () => number;
}

/** At most this many customers' vault reads are cached (the oldest go first). */
const MAX_CACHED = 200_000;

export class CreditBook {
  private readonly accounts = new Map<string, VaultAccount>();
  private due: { at: number; byCustomer: Map<string, bigint> } | undefined;

  constructor(private readonly deps: CreditDeps) {}

  /** Each customer's credit now, in the order asked (addresses any case; answered lowercase). */
  async credits(customers: readonly string[]): Promise<CreditReply> {
    const { deps } = this;
    const wanted = [...new Set(customers.map((c) => c.toLowerCase()))];
    const period = periodAt(deps.scheme, deps.now());
    const index = periodIndex(period);
    const accounts = await this.vaultAccounts(wanted, index);
    const now = deps.now();
    const due = this.dueBills(now);
    const credits = wanted.map((customer, i) => this.credit(customer, accounts[i], index, due));
    return {
      period,
      asOf: now,
      balanceMaxAgeMs: deps.balanceMaxAgeMs,
      freeBuffer: deps.prices.freeBuffer.toString(),
      prices: priceTable(deps.prices),
      credits,
    };
  }

  private credit(customer: string, account: VaultAccount, index: number, due: Map<string, bigint>): CustomerCredit {
    const { deps } = this;
    const priced = (i: number) =>
      makeBill(customer, periodIdOf(i, deps.scheme), deps.openUsage.totals(i, customer), deps.prices);
    let owed = account.outstanding + account.withdrawing + (due.get(customer) ?? 0n);
    // Earlier periods still taking late usage (their grace time): their bills come first.
    const last = deps.store.lastClosedIndex() ?? -1;
    for (let i = Math.max(last + 1, index - 3); i < index; i++) owed += BigInt(priced(i).total);
    let collectable = account.balance > owed ? account.balance - owed : 0n;
    // L1: settlement takes the debt first, then the bill, all within the period's cap.
    if (account.cap !== 0n) {
      const room = account.cap > account.outstanding ? account.cap - account.outstanding : 0n;
      if (room < collectable) collectable = room;
    }
    const usage = BigInt(priced(index).subtotal);
    const covered = collectable + deps.prices.freeBuffer;
    return {
      customer,
      remaining: (covered > usage ? covered - usage : 0n).toString(),
      exhausted: covered <= usage,
    };
  }

  /** Vault reads no older than balanceMaxAgeMs, reading the missing and stale ones in one go. */
  private async vaultAccounts(customers: string[], index: number): Promise<VaultAccount[]> {
    const now = this.deps.now();
    const stale = customers.filter((c) => {
      const cached = this.accounts.get(c);
      return !cached || now - cached.at > this.deps.balanceMaxAgeMs;
    });
    if (stale.length > 0) {
      let fresh: VaultAccount[];
      try {
        fresh = await this.deps.readAccounts(stale as Address[], index);
      } catch (error) {
        throw billingError(
          "BILLING_CHAIN_UNAVAILABLE",
          `cannot read balances from PaymentVault now: ${(error as Error).message.split("\n")[0]}`,
        );
      }
      for (const [i, customer] of stale.entries()) {
        this.accounts.delete(customer); // re-inserted last: the map stays in read order
        this.accounts.set(customer, fresh[i]);
      }
      for (const oldest of this.accounts.keys()) {
        if (this.accounts.size <= MAX_CACHED) break;
        this.accounts.delete(oldest);
      }
    }
    return customers.map((c) => this.accounts.get(c)!);
  }

  /** The totals of bills closed but not settled yet, per customer (re-read at most every balanceMaxAgeMs). */
  private dueBills(now: number): Map<string, bigint> {
    if (this.due && now - this.due.at <= this.deps.balanceMaxAgeMs) return this.due.byCustomer;
    const byCustomer = new Map<string, bigint>();
    for (const period of this.deps.store.unsettledPeriods()) {
      for (const bill of this.deps.store.bills(period.period, "due")) {
        byCustomer.set(bill.customer, (byCustomer.get(bill.customer) ?? 0n) + bill.total);
      }
    }
    this.due = { at: now, byCustomer };
    return byCustomer;
  }
}

function priceTable(list: PriceList): CreditReply["prices"] {
  const table: CreditReply["prices"] = {};
  for (const [service, metrics] of list.prices) {
    table[service] = {};
    for (const [metric, p] of metrics)
      table[service][metric] = { unitSize: p.unitSize.toString(), unitPrice: p.unitPrice.toString() };
  }
  return table;
}

export interface GuardOptions {
  chainId: number;
  view: ChainView;
  now: () => number;
  /** How far a query's timestamp may be from billing's clock. */
  windowMs?: number;
  /** Queries per second per gateway, and the burst. */
  ratePerSecond?: number;
  burst?: number;
}

/** Signed credit queries remembered at once (each for twice the timestamp window); past it, 429. */
const MAX_REMEMBERED_QUERIES = 1_000_000;

/** Who may ask for credit: the cheap checks first, the signature recovery last, then the replay and rate. */
export class CreditGuard {
  private readonly seen: ReplayGuard;
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly windowMs: number;
  private readonly rate: number;
  private readonly burst: number;

  constructor(private readonly options: GuardOptions) {
    this.windowMs = options.windowMs ?? 30_000;
    this.seen = new ReplayGuard(MAX_REMEMBERED_QUERIES, options.now);
    this.rate = options.ratePerSecond ?? 20;
    this.burst = options.burst ?? 40;
  }

  /** Passes an admissible query; throws a BILLING_* EdgeError otherwise. Synchronous: no await between the replay check and the record. */
  admit(body: CreditQueryBody): void {
    const now = this.options.now();
    const timestamp = Number(body.timestamp);
    if (Math.abs(timestamp - now) > this.windowMs)
      throw billingError("BILLING_QUERY_EXPIRED", `the query's timestamp is more than ${this.windowMs} ms from now`);
    const standing = senderStanding(this.options.view, body.gateway, StakeType.Gateway);
    if (standing === "not_staked")
      throw billingError("BILLING_SENDER_NOT_STAKED", `${body.gateway} holds no gateway stake`);
    if (standing === "not_admitted")
      throw billingError("BILLING_SENDER_NOT_ADMITTED", `${body.gateway}'s gateway stake is not admitted`);
    const digest = creditQueryDigest(this.options.chainId, body);
    if (this.seen.has(digest)) throw billingError("BILLING_REPLAYED", "this signed credit query was already answered");
    const signer = creditQuerySigner(digest, body);
    if (signer === undefined || signer.toLowerCase() !== body.gateway.toLowerCase())
      throw billingError("BILLING_BAD_SIGNATURE", "the credit query is not signed by its gateway");
    this.take(body.gateway.toLowerCase(), now);
    if (this.seen.reserve(digest, now + 2 * this.windowMs) === "full")
      throw billingError("BILLING_RATE_LIMITED", "too many credit queries held for replay checks; retry shortly");
  }

  /** Remembered digests (bounded by admitted gateways x rate x twice the window). */
  get remembered(): number {
    return this.seen.size;
  }

  private take(gateway: string, now: number): void {
    let bucket = this.buckets.get(gateway);
    if (!bucket) this.buckets.set(gateway, (bucket = new TokenBucket(this.rate, this.burst, now)));
    if (!bucket.take(now))
      throw billingError("BILLING_RATE_LIMITED", `more than ${this.rate} credit queries a second from ${gateway}`);
  }
}
