/**
 * Closing: once a period's end plus the grace period has passed on the local clock (records carry the gateways'
 * wall-clock times, so late usage still counts until then), its usage is summed per (customer, service, metric),
 * priced into bills (./bills) and saved with the period in one transaction. Non-zero bills are cut into
 * settlement batches here, ordered by customer, so a restart settles the same batches. No HTTP here.
 */
import type { Counter } from "prom-client";

import { type PeriodScheme, periodIdOf, periodWindow } from "../common/period";
import { BillingInputError, type HashedBill, type PriceList, makeBills } from "./bills";
import type { OpenUsage } from "./openUsage";
import { firstPeriodIndex } from "./periods";
import type { BillRow, BillingStore } from "./store";

/** PaymentVault keeps amounts as uint96: a larger bill can never be settled. */
const MAX_UINT96 = (1n << 96n) - 1n;

export interface CloseLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CloseDeps {
  store: BillingStore;
  prices: PriceList;
  scheme: PeriodScheme;
  openUsage: OpenUsage;
  graceMs: number;
  /** Bills per settlement transaction. */
  batchSize: number;
  metrics: { bills: Counter };
  now: () => number;
  log: CloseLogger;
}

/** Closes every period whose end plus the grace period has passed, oldest first. Synchronous: no record slips in. */
export function closeDuePeriods(deps: CloseDeps): void {
  const last = deps.store.lastClosedIndex();
  let index = last === undefined ? firstPeriodIndex(deps.store) : last + 1;
  for (;;) {
    const id = periodIdOf(index, deps.scheme);
    if (periodWindow(id, deps.scheme).endMs + deps.graceMs > deps.now()) return;
    closePeriod(deps, index);
    index += 1;
  }
}

/** Bills one period from the database and saves them with the period. */
export function closePeriod(deps: CloseDeps, index: number): HashedBill[] {
  const { store, log } = deps;
  const period = periodIdOf(index, deps.scheme);
  let bills: HashedBill[];
  try {
    bills = makeBills(period, store.usageTotals(index), deps.prices);
  } catch (error) {
    if (error instanceof BillingInputError) {
      log.error({ period, err: error.message }, "cannot bill the period: fix the price list");
    }
    throw error;
  }
  const rows = billRows(period, bills, deps.batchSize);
  store.saveClosedPeriod(period, index, deps.now(), rows);
  deps.openUsage.drop(index);
  for (const row of rows) deps.metrics.bills.inc({ status: row.status });
  if (rows.some((r) => r.status === "unsettleable")) {
    log.error({ period }, "bills above 2^96 - 1 base units cannot be settled on-chain");
  }
  log.info({ period, bills: rows.length, due: rows.filter((r) => r.status === "due").length }, "period closed");
  return bills;
}

/** The bills as stored at close: zero, due (numbered into batches of `batchSize` in order) or unsettleable. */
function billRows(period: string, bills: HashedBill[], batchSize: number): BillRow[] {
  let due = 0;
  return bills.map((bill) => {
    const total = BigInt(bill.total);
    const status = total === 0n ? "zero" : total > MAX_UINT96 ? "unsettleable" : "due";
    return {
      period,
      customer: bill.customer,
      bill,
      total,
      status,
      batch: status === "due" ? Math.floor(due++ / batchSize) : null,
      charged: null,
      shortfall: null,
      txHash: null,
    };
  });
}
