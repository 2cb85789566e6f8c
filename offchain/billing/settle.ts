/**
 * Settlement, exactly once: the non-zero bills of each closed period go to PaymentVault.settle in the batches
 * fixed at close, through TxSender (signed and stored before it is broadcast, so a restart finds the
 * transaction again). Before each batch the chain is asked which of its bills are settled already (before a
 * crash, or by hand with billing:settle): those are only recorded, from their BillSettled event. Charged amount,
 * shortfall and transaction are recorded per bill from the receipt's events. No HTTP here.
 *
 * The vault charges each batch's billed total to the biller's refilling bucket (D35) and refuses a batch above
 * what is available (H1): every pass reads the bucket's capacity, marks a bill above it unsettleable (it could
 * never be settled, and must not hold the others back), cuts each stored batch into transactions whose totals fit
 * the capacity, and sends one only once the bucket holds its total. Until then the pass stops there, leaving later
 * batches and periods for a later pass: they would draw on the same bucket and starve it, and settling a
 * customer's later period first pushes its older ones toward the vault's 32-period window (PeriodTooOld).
 * Closing and the API go on meanwhile; a transaction within the capacity always fits once the bucket refills.
 */
import type { Address, Hex, Log, PublicClient } from "viem";
import type { Counter } from "prom-client";

import type { TxSender } from "../common/txSender";
import type { BillRow, BillingStore } from "./store";
import {
  billingAvailable,
  billingCapacity,
  encodeSettle,
  findBillSettled,
  isBillSettled,
  settlementEvents,
} from "./vault";

const TOKEN_UNIT = 10n ** 18n;

export interface SettleLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SettleDeps {
  store: BillingStore;
  client: PublicClient;
  /** PaymentVault and the block it was deployed in (where its events start). */
  vault: { address: Address; fromBlock: bigint };
  /** None: the service bills but does not settle (no biller key). */
  sender: Pick<TxSender, "address" | "send" | "wait"> | null;
  metrics: { settled: Counter; charged: Counter; shortfall: Counter; overCapacity: Counter };
  now: () => number;
  log: SettleLogger;
}

/**
 * Settles every closed period's due bills, batch by batch, oldest first; a period with none left is marked
 * settled. Stops at the first transaction the biller's bucket cannot pay for yet (the next pass retries it).
 */
export async function settleClosedPeriods(deps: SettleDeps): Promise<void> {
  const { store } = deps;
  const periods = store.unsettledPeriods();
  if (periods.length === 0) return;
  const capacity = await billingCapacity(deps.client, deps.vault.address);
  for (const period of periods) await refuseOverCapacity(deps, period.period, period.index, capacity);
  for (const period of periods) {
    const due = store.bills(period.period, "due");
    const batches = [...new Set(due.map((b) => b.batch!))].sort((a, b) => a - b);
    for (const batch of batches) {
      const bills = due.filter((b) => b.batch === batch);
      if (!(await settleBatch(deps, period.period, period.index, batch, bills, capacity))) return;
    }
    if (store.bills(period.period, "due").length === 0) {
      store.markPeriodSettled(period.period, deps.now());
      deps.log.info({ period: period.period }, "period settled");
    }
  }
}

/** A due bill above the capacity can never be settled (H1): unsettleable, like one above 2^96, unless on-chain. */
async function refuseOverCapacity(deps: SettleDeps, period: string, index: number, capacity: bigint) {
  for (const bill of deps.store.bills(period, "due").filter((b) => b.total > capacity)) {
    // Settled while the capacity was higher (by hand): recorded from the chain by the batch instead.
    if (await isBillSettled(deps.client, deps.vault.address, bill.customer as Address, index)) continue;
    deps.store.markUnsettleable(period, bill.customer);
    deps.metrics.overCapacity.inc();
    deps.log.error(
      { period, customer: bill.customer, total: bill.total.toString(), capacity: capacity.toString() },
      "bill above the biller's billing capacity: it cannot be settled on-chain",
    );
  }
}

/** Consecutive runs of `bills` whose totals stay within `capacity` (each bill is within it). */
function cutToCapacity(bills: BillRow[], capacity: bigint): BillRow[][] {
  const parts: BillRow[][] = [];
  let sum = 0n;
  for (const bill of bills) {
    if (parts.length === 0 || sum + bill.total > capacity) {
      parts.push([]);
      sum = 0n;
    }
    parts[parts.length - 1].push(bill);
    sum += bill.total;
  }
  return parts;
}

/** Settles one stored batch, in transactions within the capacity; false when the bucket must refill first. */
async function settleBatch(
  deps: SettleDeps,
  period: string,
  index: number,
  batch: number,
  bills: BillRow[],
  capacity: bigint,
): Promise<boolean> {
  const { client, vault, sender } = deps;
  // The chain first: a bill settled before a crash (or by hand with billing:settle) is only recorded.
  const settled = await Promise.all(
    bills.map((b) => isBillSettled(client, vault.address, b.customer as Address, index)),
  );
  const open = bills.filter((_, i) => !settled[i]);
  for (const bill of bills.filter((_, i) => settled[i])) await recordFromChain(deps, bill, index);
  if (open.length === 0 || !sender) return true;
  for (const [part, items] of cutToCapacity(open, capacity).entries()) {
    const total = items.reduce((sum, b) => sum + b.total, 0n);
    const available = await billingAvailable(client, vault.address, sender.address);
    if (available < total) {
      const amounts = { total: total.toString(), available: available.toString() };
      deps.log.warn({ period, batch, part, ...amounts }, "billing rate limit: waiting for the bucket to refill");
      return false;
    }
    const data = encodeSettle(
      index,
      items.map((b) => ({ customer: b.customer as Address, amount: b.total, billHash: b.bill.billHash })),
    );
    // The first part keeps the batch's purpose, so a transaction in flight from before is found again.
    const record = await sender.send(`settle:${period}:${batch}${part === 0 ? "" : `:${part}`}`, vault.address, data);
    const receipt = await sender.wait(record);
    if (receipt.status !== "success") {
      deps.log.warn({ period, batch, tx: receipt.transactionHash }, "settlement reverted; retrying");
      continue;
    }
    recordFromLogs(deps, period, receipt.logs, receipt.transactionHash);
  }
  return true;
}

/** Records BillSettled events of a receipt; PeriodTooOld skips make the bill unsettleable. */
function recordFromLogs(deps: SettleDeps, period: string, logs: readonly Log[], txHash: Hex): void {
  const { store, metrics } = deps;
  for (const event of settlementEvents(deps.vault.address, logs)) {
    if (event.kind === "settled") {
      store.markSettled(period, event.customer.toLowerCase(), event.charged, event.shortfall, txHash);
      metrics.charged.inc(Number(event.charged) / Number(TOKEN_UNIT));
      metrics.shortfall.inc(Number(event.shortfall) / Number(TOKEN_UNIT));
      metrics.settled.inc();
    } else {
      store.markUnsettleable(period, event.customer.toLowerCase());
      deps.log.error({ period, customer: event.customer }, "the vault refuses a period this old");
    }
  }
}

/** A bill already settled on-chain: recorded from its BillSettled event. */
async function recordFromChain(deps: SettleDeps, bill: BillRow, index: number): Promise<void> {
  const log = await findBillSettled(deps.client, deps.vault, bill.customer as Address, index);
  if (!log) return; // not visible yet on this node: next pass
  recordFromLogs(deps, bill.period, [log], log.transactionHash!);
}
