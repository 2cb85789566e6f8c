/**
 * What the read routes answer, built from the store and the open usage: a closed period's counts and totals (no
 * customer data), a bill's settlement, and a customer's current usage priced as its bill would be. No HTTP here.
 */
import { type PeriodScheme, periodIndex } from "../common/period";
import { type Bill, BillingInputError, type PriceList, makeBill } from "./bills";
import type { OpenUsage } from "./openUsage";
import { periodAt, periodWindowIso } from "./periods";
import type { BillRow, BillingStore } from "./store";

/** A closed period (it must exist): bill counts by status, totals billed, charged and short. */
export function periodSummary(store: BillingStore, period: string) {
  const row = store.period(period)!;
  const bills = store.bills(period);
  const sum = (pick: (b: BillRow) => bigint | null) => bills.reduce((s, b) => s + (pick(b) ?? 0n), 0n).toString();
  const count = (status: string) => bills.filter((b) => b.status === status).length;
  return {
    period,
    index: row.index,
    status: row.status,
    closedAt: new Date(row.closedAt).toISOString(),
    settledAt: row.settledAt === null ? null : new Date(row.settledAt).toISOString(),
    bills: bills.length,
    zero: count("zero"),
    due: count("due"),
    settled: count("settled"),
    unsettleable: count("unsettleable"),
    total: sum((b) => b.total),
    charged: sum((b) => b.charged),
    shortfall: sum((b) => b.shortfall),
  };
}

/** A bill's hash and settlement, amounts as decimal strings. */
export function billSummary(row: BillRow) {
  return {
    period: row.period,
    total: row.total.toString(),
    billHash: row.bill.billHash,
    status: row.status,
    charged: row.charged?.toString() ?? null,
    shortfall: row.shortfall?.toString() ?? null,
    txHash: row.txHash,
  };
}

export interface UsageDraftDeps {
  scheme: PeriodScheme;
  openUsage: OpenUsage;
  prices: PriceList;
  now: () => number;
}

/** The customer's usage in the current period so far, as the bill it would make (without a hash: not final). */
export function usageDraft(
  deps: UsageDraftDeps,
  customer: string,
): { period: string; start: string; end: string; draft: Bill } {
  const period = periodAt(deps.scheme, deps.now());
  const totals = deps.openUsage.totals(periodIndex(period), customer.toLowerCase());
  let priced: ReturnType<typeof makeBill>;
  try {
    priced = makeBill(customer, period, totals, deps.prices);
  } catch (error) {
    // Usage the price list cannot price is the service's fault (its price list changed under stored usage), not
    // the customer's: a logged 500, as the closing of the period reports it.
    if (error instanceof BillingInputError)
      throw new Error(`cannot price the current usage: ${error.message}`, { cause: error });
    throw error;
  }
  const { billHash: _draft, ...bill } = priced;
  return { period, ...periodWindowIso(period, deps.scheme), draft: bill };
}
