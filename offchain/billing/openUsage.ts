/**
 * Usage of the periods not closed yet, summed per customer and (service, metric): rebuilt from the database at
 * start, added to after each stored batch, dropped when its period closes. It answers a customer's current usage
 * without an index on the records table.
 */
import type { UsageTotal } from "./bills";
import type { BillingStore } from "./store";

export class OpenUsage {
  /** period index -> customer -> "service\0metric" -> total */
  private readonly periods = new Map<number, Map<string, Map<string, UsageTotal>>>();

  /** Sums the usage of every period after the last closed one from the database. */
  load(store: BillingStore): void {
    for (const index of store.periodsWithRecordsAfter(store.lastClosedIndex() ?? -1)) {
      this.add(index, store.usageTotals(index));
    }
  }

  add(index: number, totals: Iterable<UsageTotal>): void {
    let byCustomer = this.periods.get(index);
    if (!byCustomer) this.periods.set(index, (byCustomer = new Map()));
    for (const { customer, service, metric, quantity } of totals) {
      let lines = byCustomer.get(customer);
      if (!lines) byCustomer.set(customer, (lines = new Map()));
      const key = `${service}\u0000${metric}`;
      const line = lines.get(key);
      if (line) line.quantity += quantity;
      else lines.set(key, { customer, service, metric, quantity });
    }
  }

  /** A closed period's usage lives in its bills. */
  drop(index: number): void {
    this.periods.delete(index);
  }

  /** A customer's (lowercase) totals in a period so far. */
  totals(index: number, customer: string): UsageTotal[] {
    const lines = this.periods.get(index)?.get(customer);
    return lines ? [...lines.values()] : [];
  }
}
