/**
 * Which billing period a time falls in, and which periods still take usage. A period is open from the service's
 * first period (fixed at its first start) until it is closed; periods close in order, so "closed" is "at or
 * before the last closed index".
 */
import { MONTHLY, type PeriodScheme, periodIndex, periodOf, periodWindow } from "../common/period";
import type { BillingConfig } from "./config";
import { billingError } from "./errors";
import type { BillingStore } from "./store";

/** UTC months, or fixed periods of `--period-seconds` from `--period-start`. */
export function periodScheme(config: Pick<BillingConfig, "periodSeconds" | "periodStart">): PeriodScheme {
  return config.periodSeconds === undefined
    ? MONTHLY
    : { kind: "fixed", startMs: config.periodStart, lengthMs: config.periodSeconds * 1000 };
}

/** The id of the period `timeMs` falls in; a time before period 0 counts as a closed period. */
export function periodAt(scheme: PeriodScheme, timeMs: number): string {
  const id = periodOf(timeMs, scheme);
  if (id === undefined) throw billingError("BILLING_PERIOD_CLOSED", `time ${timeMs} is before the first period`);
  return id;
}

/** Records the period the service first started in (once): no usage is taken for periods before it. */
export function recordFirstPeriod(store: BillingStore, scheme: PeriodScheme, now: number): void {
  if (store.getMeta("firstPeriod") === undefined) {
    store.setMeta("firstPeriod", String(periodIndex(periodAt(scheme, now))));
  }
}

export function firstPeriodIndex(store: BillingStore): number {
  return Number(store.getMeta("firstPeriod") ?? "0");
}

/** A period takes usage from its first record until it is closed (never before the service's first period). */
export function isOpen(store: BillingStore, index: number): boolean {
  const last = store.lastClosedIndex();
  return index >= firstPeriodIndex(store) && (last === undefined || index > last);
}

/** A period's start and end as ISO times. */
export function periodWindowIso(period: string, scheme: PeriodScheme): { start: string; end: string } {
  const { startMs, endMs } = periodWindow(period, scheme);
  return { start: new Date(startMs).toISOString(), end: new Date(endMs).toISOString() };
}
