/**
 * Billing period ids and the uint32 period index PaymentVault settles under.
 *
 * - "YYYY-MM" (UTC months, the default): months since 1970-01, so consecutive months are consecutive indexes.
 * - A decimal integer string ("42"): that index, for short custom periods (the devnet).
 */
import { errorClass } from "./errors";

export const PeriodFormatError = errorClass("PeriodFormatError", "PERIOD_FORMAT_INVALID");
export type PeriodFormatError = InstanceType<typeof PeriodFormatError>;

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;
const INDEX = /^\d{1,10}$/;
const MAX_INDEX = 2 ** 32 - 1;

export function periodIndex(id: string): number {
  const month = MONTH.exec(id);
  if (month) return (Number(month[1]) - 1970) * 12 + (Number(month[2]) - 1);
  if (INDEX.test(id) && Number(id) <= MAX_INDEX) return Number(id);
  throw new PeriodFormatError(`period "${id}" is neither a UTC month (YYYY-MM) nor an index (0..${MAX_INDEX})`);
}

/** The UTC month ("YYYY-MM") a timestamp in milliseconds falls in. */
export function monthOf(timeMs: number): string {
  const d = new Date(timeMs);
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

/**
 * How billing cuts time into periods: UTC months (ids "YYYY-MM", the default), or fixed lengths from a start
 * (ids "0", "1", …: short periods for the devnet and tests).
 */
export type PeriodScheme = { kind: "month" } | { kind: "fixed"; startMs: number; lengthMs: number };

export const MONTHLY: PeriodScheme = { kind: "month" };

/** The id of the period `timeMs` falls in, or undefined before a fixed scheme's start or past index 2^32 - 1. */
export function periodOf(timeMs: number, scheme: PeriodScheme): string | undefined {
  if (scheme.kind === "month") {
    const id = monthOf(timeMs);
    return MONTH.test(id) && periodIndex(id) <= MAX_INDEX ? id : undefined;
  }
  if (timeMs < scheme.startMs) return undefined;
  const index = Math.floor((timeMs - scheme.startMs) / scheme.lengthMs);
  return index <= MAX_INDEX ? String(index) : undefined;
}

/** [startMs, endMs) of period `id`; PeriodFormatError when the id is not one of the scheme's. */
export function periodWindow(id: string, scheme: PeriodScheme): { startMs: number; endMs: number } {
  const index = periodIndex(id);
  if (scheme.kind === "month") {
    if (!MONTH.test(id)) throw new PeriodFormatError(`period "${id}" is not a UTC month (YYYY-MM)`);
    const year = 1970 + Math.floor(index / 12);
    const month = index % 12;
    return { startMs: Date.UTC(year, month, 1), endMs: Date.UTC(year, month + 1, 1) };
  }
  if (!INDEX.test(id) || String(index) !== id) {
    throw new PeriodFormatError(`period "${id}" is not a period index (0, 1, 2, …)`);
  }
  const startMs = scheme.startMs + index * scheme.lengthMs;
  return { startMs, endMs: startMs + scheme.lengthMs };
}

/** The id of the period with this index under `scheme` (the inverse of periodIndex). */
export function periodIdOf(index: number, scheme: PeriodScheme): string {
  if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX)
    throw new PeriodFormatError(`bad period index ${index}`);
  if (scheme.kind === "fixed") return String(index);
  return `${1970 + Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, "0")}`;
}
