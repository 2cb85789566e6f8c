/**
 * Billing period ids and the uint32 period index PaymentVault settles under.
 *
 * - "YYYY-MM" (UTC months, the default): months since 1970-01, so consecutive months are consecutive indexes.
 * - A decimal integer string ("42"): that index, for short custom periods (the devnet).
 */

export class PeriodFormatError extends Error {
  override readonly name = "PeriodFormatError";
}

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
