/**
 * Pricing and bills, exactly as PROTOCOL.md "Billing (exact)" states it. Pure: the billing service, its CLI and
 * anyone holding a customer's usage get the same bills and hashes.
 *
 *   - quantities are summed per (customer, service, metric) over the period first;
 *   - line amount = floor(quantity * unitPrice / unitSize); usage without a price is an error naming it;
 *   - subtotal = sum of lines; freeBuffer = min(configured free buffer, subtotal); total = subtotal - freeBuffer;
 *   - the bill object, every integer a decimal string, addresses lowercase, lines sorted by service then metric:
 *     {customer, period, lines: [{service, metric, quantity, unitSize, unitPrice, amount}], subtotal, freeBuffer,
 *     total}; billHash = keccak256 of its RFC 8785 (JCS) canonical UTF-8 form.
 */
import canonicalize from "canonicalize";
import type { Hex } from "viem";

import { keccak256 } from "../common/crypto";
import { errorClass } from "../common/errors";
import { ADDRESS_PATTERN } from "../common/protocol/patterns";

export const BillingInputError = errorClass("BillingInputError", "BILLING_INPUT_INVALID");
export type BillingInputError = InstanceType<typeof BillingInputError>;

export interface Price {
  unitSize: bigint;
  unitPrice: bigint;
}

export interface PriceList {
  freeBuffer: bigint;
  /** service -> metric -> price. */
  prices: Map<string, Map<string, Price>>;
}

export interface BillLine {
  service: string;
  metric: string;
  quantity: string;
  unitSize: string;
  unitPrice: string;
  amount: string;
}

export interface Bill {
  customer: string;
  period: string;
  lines: BillLine[];
  subtotal: string;
  freeBuffer: string;
  total: string;
}

export interface HashedBill extends Bill {
  billHash: Hex;
}

/** Summed usage of one customer for one (service, metric) in a period. */
export interface UsageTotal {
  customer: string;
  service: string;
  metric: string;
  quantity: bigint;
}

const DECIMAL = /^\d+$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** A non-negative integer from a safe JSON number or a decimal string. */
export function parseInteger(value: unknown, where: string): bigint {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === "string" && DECIMAL.test(value) && value.length <= 78) return BigInt(value);
  throw new BillingInputError(`${where} must be a non-negative integer (a decimal string for large values)`);
}

export function parseName(value: unknown, where: string): string {
  if (typeof value !== "string" || !NAME.test(value)) {
    throw new BillingInputError(`${where} must be 1-64 letters, digits and _ . : - (starting with a letter or digit)`);
  }
  return value;
}

/** Validates a price list: {"freeBuffer": "…", "prices": {"<service>": {"<metric>": {"unitSize", "unitPrice"}}}}. */
export function parsePriceList(json: unknown, where = "prices"): PriceList {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new BillingInputError(`${where}: expected {"freeBuffer": "…", "prices": {…}}`);
  }
  const { freeBuffer, prices, ...rest } = json as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length) throw new BillingInputError(`${where}: unknown field "${unknown[0]}"`);
  const list: PriceList = { freeBuffer: parseInteger(freeBuffer, `${where}.freeBuffer`), prices: new Map() };
  if (typeof prices !== "object" || prices === null || Array.isArray(prices)) {
    throw new BillingInputError(`${where}.prices must be an object of services`);
  }
  for (const [service, metrics] of Object.entries(prices)) {
    parseName(service, `${where}.prices: service "${service}"`);
    if (typeof metrics !== "object" || metrics === null || Array.isArray(metrics)) {
      throw new BillingInputError(`${where}.prices.${service} must be an object of metrics`);
    }
    const byMetric = new Map<string, Price>();
    for (const [metric, price] of Object.entries(metrics)) {
      const at = `${where}.prices.${service}.${metric}`;
      parseName(metric, `${where}.prices.${service}: metric "${metric}"`);
      const { unitSize, unitPrice, ...extra } = (price ?? {}) as Record<string, unknown>;
      if (typeof price !== "object" || price === null || Object.keys(extra).length) {
        throw new BillingInputError(`${at} must be {"unitSize", "unitPrice"}`);
      }
      const size = parseInteger(unitSize, `${at}.unitSize`);
      if (size === 0n) throw new BillingInputError(`${at}.unitSize must be at least 1`);
      byMetric.set(metric, { unitSize: size, unitPrice: parseInteger(unitPrice, `${at}.unitPrice`) });
    }
    list.prices.set(service, byMetric);
  }
  return list;
}

export function priceOf(list: PriceList, service: string, metric: string): Price | undefined {
  return list.prices.get(service)?.get(metric);
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** One customer's bill from their summed usage (any order; one entry per (service, metric)). */
export function makeBill(
  customer: string,
  period: string,
  usage: ReadonlyArray<Omit<UsageTotal, "customer">>,
  list: PriceList,
): HashedBill {
  const lines = [...usage]
    .sort((a, b) => byText(a.service, b.service) || byText(a.metric, b.metric))
    .map(({ service, metric, quantity }): BillLine => {
      const price = priceOf(list, service, metric);
      if (!price) throw new BillingInputError(`no price for service "${service}", metric "${metric}"`);
      return {
        service,
        metric,
        quantity: quantity.toString(),
        unitSize: price.unitSize.toString(),
        unitPrice: price.unitPrice.toString(),
        amount: ((quantity * price.unitPrice) / price.unitSize).toString(),
      };
    });
  const subtotal = lines.reduce((sum, line) => sum + BigInt(line.amount), 0n);
  const freeBuffer = list.freeBuffer < subtotal ? list.freeBuffer : subtotal;
  const bill: Bill = {
    customer: customer.toLowerCase(),
    period,
    lines,
    subtotal: subtotal.toString(),
    freeBuffer: freeBuffer.toString(),
    total: (subtotal - freeBuffer).toString(),
  };
  return { ...bill, billHash: billHash(bill) };
}

/** keccak256 of the bill's RFC 8785 canonical form (any billHash field is left out). */
export function billHash(bill: Bill): Hex {
  const { customer, period, lines, subtotal, freeBuffer, total } = bill;
  return keccak256(Buffer.from(canonicalize({ customer, period, lines, subtotal, freeBuffer, total }) ?? "", "utf8"));
}

/** Bills for every customer in `totals` (summing repeated keys), sorted by customer. */
export function makeBills(period: string, totals: Iterable<UsageTotal>, list: PriceList): HashedBill[] {
  const byCustomer = new Map<string, Map<string, Omit<UsageTotal, "customer">>>();
  for (const { customer, service, metric, quantity } of totals) {
    const key = customer.toLowerCase();
    let lines = byCustomer.get(key);
    if (!lines) byCustomer.set(key, (lines = new Map()));
    const lineKey = `${service}\u0000${metric}`;
    const line = lines.get(lineKey);
    if (line) line.quantity += quantity;
    else lines.set(lineKey, { service, metric, quantity });
  }
  return [...byCustomer.keys()]
    .sort(byText)
    .map((customer) => makeBill(customer, period, [...byCustomer.get(customer)!.values()], list));
}

/** A usage record as gateways send it and the CLI reads it. */
export interface UsageRecordInput {
  id: string;
  gateway: string;
  customer: string;
  service: string;
  metric: string;
  quantity: number | string;
  time: number;
}

export interface ParsedRecord {
  id: string;
  gateway: string;
  customer: string;
  service: string;
  metric: string;
  quantity: bigint;
  time: number;
}

/** Validates one usage record; addresses come back lowercase. */
export function parseRecord(record: unknown, where: string): ParsedRecord {
  if (typeof record !== "object" || record === null || Array.isArray(record)) {
    throw new BillingInputError(`${where} must be a usage record object`);
  }
  const r = record as Record<string, unknown>;
  if (typeof r.id !== "string" || r.id.length === 0 || r.id.length > 200) {
    throw new BillingInputError(`${where}.id must be a string of 1-200 characters`);
  }
  for (const field of ["gateway", "customer"] as const) {
    if (typeof r[field] !== "string" || !ADDRESS_PATTERN.test(r[field] as string)) {
      throw new BillingInputError(`${where}.${field} must be an address`);
    }
  }
  if (typeof r.time !== "number" || !Number.isSafeInteger(r.time) || r.time < 0) {
    throw new BillingInputError(`${where}.time must be unix milliseconds`);
  }
  return {
    id: r.id,
    gateway: (r.gateway as string).toLowerCase(),
    customer: (r.customer as string).toLowerCase(),
    service: parseName(r.service, `${where}.service`),
    metric: parseName(r.metric, `${where}.metric`),
    quantity: parseInteger(r.quantity, `${where}.quantity`),
    time: r.time,
  };
}

/** The content that identifies a record: the same id with other content is a conflict. */
export function recordKey(r: ParsedRecord): string {
  return `${r.gateway}|${r.customer}|${r.service}|${r.metric}|${r.quantity}|${r.time}`;
}

/**
 * The CLI's computation: bills for `period` from raw records. Records outside the period are ignored; a record id
 * counts once, and the same id with different content is an error.
 */
export function billRecords(
  period: string,
  records: readonly unknown[],
  list: PriceList,
  inPeriod: (timeMs: number) => boolean,
): HashedBill[] {
  const seen = new Map<string, string>();
  const totals: UsageTotal[] = [];
  records.forEach((raw, i) => {
    const record = parseRecord(raw, `usage[${i}]`);
    const key = recordKey(record);
    const earlier = seen.get(record.id);
    if (earlier !== undefined) {
      if (earlier !== key)
        throw new BillingInputError(`usage[${i}]: record id "${record.id}" repeats with other content`);
      return;
    }
    seen.set(record.id, key);
    if (!inPeriod(record.time)) return;
    if (!priceOf(list, record.service, record.metric)) {
      throw new BillingInputError(`usage[${i}]: no price for service "${record.service}", metric "${record.metric}"`);
    }
    totals.push(record);
  });
  return makeBills(period, totals, list);
}
