/**
 * The Console's vocabulary and number formats, with no DOM: stake types and statuses as the network names them,
 * token amounts (18 decimals) parsed and printed exactly, times in UTC. Unit-tested in Node.
 */
import { formatUnits, parseUnits } from "viem";

import { errorClass } from "../../offchain/common/errors";

export const TOKEN_SYMBOL = "EDGE";
export const TOKEN_DECIMALS = 18;

/** IStakeManager.StakeType, by index. */
export const STAKE_TYPES = ["host", "gateway", "stargate"] as const;
export type StakeTypeName = (typeof STAKE_TYPES)[number];

/** IStakeManager.StakeStatus, by index: the network's existing vocabulary. */
export const STATUS_NAMES = ["unassigned", "assigned", "unlocking", "unlocked", "released"] as const;
export type StatusName = (typeof STATUS_NAMES)[number];

export function stakeTypeName(index: number | bigint): string {
  return STAKE_TYPES[Number(index)] ?? `type ${index}`;
}

export function statusName(index: number | bigint): string {
  return STATUS_NAMES[Number(index)] ?? `status ${index}`;
}

/** What each status means to the owner, shown next to it. */
export const STATUS_HELP: Record<StatusName, string> = {
  unassigned: "active, no device assigned",
  assigned: "active, backing its device",
  unlocking: "unstake requested: unbonding, the device is not admitted",
  unlocked: "unbonding finished: ready to release",
  released: "tokens returned; the stake is closed",
};

/** "1,234.5 EDGE": every decimal kept (never rounded), the integer part grouped by thousands. */
export function formatTokens(amount: bigint, symbol = TOKEN_SYMBOL): string {
  const negative = amount < 0n;
  const [whole, fraction] = formatUnits(negative ? -amount : amount, TOKEN_DECIMALS).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${grouped}${fraction ? `.${fraction}` : ""} ${symbol}`;
}

/** A token amount the user typed that is not one, or is outside the field's limits. */
export const AmountFormatError = errorClass("AmountFormatError", "CONSOLE_AMOUNT_INVALID");

/** A token amount typed by the user ("1000", "0.5", "1,000"): positive, at most 18 decimals. */
export function parseTokenAmount(text: string, options: { allowZero?: boolean } = {}): bigint {
  const value = text.trim().replace(/,/g, "");
  if (value === "") throw new AmountFormatError("enter an amount");
  if (!/^\d+(\.\d+)?$/.test(value)) throw new AmountFormatError(`"${text.trim()}" is not an amount (like 1000 or 0.5)`);
  const fraction = value.split(".")[1] ?? "";
  if (fraction.length > TOKEN_DECIMALS) throw new AmountFormatError(`at most ${TOKEN_DECIMALS} decimals`);
  const amount = parseUnits(value, TOKEN_DECIMALS);
  if (amount === 0n && !options.allowZero) throw new AmountFormatError("the amount must be more than 0");
  return amount;
}

/** "2026-11-27 14:03:12 UTC" (UTC so every reader sees the same time). */
export function formatTime(unixSeconds: number | bigint): string {
  return `${new Date(Number(unixSeconds) * 1000).toISOString().replace("T", " ").slice(0, 19)} UTC`;
}

/** "3 min 20 s", "2 d 4 h": how long until a moment, coarse. */
export function formatDuration(seconds: number | bigint): string {
  let s = Number(seconds);
  if (s <= 0) return "now";
  const d = Math.floor(s / 86_400);
  s -= d * 86_400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s} s`;
  return `${s} s`;
}

/** Basis points as a percentage: 1050 -> "10.50%". */
export function formatBps(bps: number | bigint): string {
  return `${(Number(bps) / 100).toFixed(2)}%`;
}

export function shortAddress(address: string): string {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}
