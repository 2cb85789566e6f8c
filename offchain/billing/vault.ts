/**
 * What billing reads from PaymentVault: the biller's role and rate limit, whether a (customer, period) is
 * settled, the BillSettled event of a bill settled before, and the settlement events in a receipt's logs. Plus
 * the one call it makes, `settle`, encoded for TxSender.
 */
import { type Address, type Hex, type Log, type PublicClient, decodeEventLog, encodeFunctionData } from "viem";

import { paymentVaultAbi } from "../common/generated/abis";

/** PaymentVault.settle's skip reason for a period older than the vault accepts. */
const SKIP_PERIOD_TOO_OLD = 1;

/** Whether `account` holds BILLER_ROLE on the vault. */
export async function hasBillerRole(client: PublicClient, vault: Address, account: Address): Promise<boolean> {
  const role = await client.readContract({ address: vault, abi: paymentVaultAbi, functionName: "BILLER_ROLE" });
  return client.readContract({ address: vault, abi: paymentVaultAbi, functionName: "hasRole", args: [role, account] });
}

/** The most the vault lets one biller bill per window (D35): a bigger batch, or bill, is always refused (H1). */
export async function billingCapacity(client: PublicClient, vault: Address): Promise<bigint> {
  const [, capacity] = await client.readContract({
    address: vault,
    abi: paymentVaultAbi,
    functionName: "billingLimit",
  });
  return capacity;
}

/** What `biller` may bill now: its bucket refills linearly up to the capacity over the window. */
export function billingAvailable(client: PublicClient, vault: Address, biller: Address): Promise<bigint> {
  return client.readContract({
    address: vault,
    abi: paymentVaultAbi,
    functionName: "billingAvailable",
    args: [biller],
  });
}

/** Whether the vault has settled `customer`'s bill for period `index` (by anyone). */
export function isBillSettled(
  client: PublicClient,
  vault: Address,
  customer: Address,
  index: number,
): Promise<boolean> {
  return client.readContract({
    address: vault,
    abi: paymentVaultAbi,
    functionName: "isSettled",
    args: [customer, BigInt(index)],
  });
}

/** The BillSettled event of `customer`'s bill for period `index` (both indexed), if this node sees it yet. */
export async function findBillSettled(
  client: PublicClient,
  vault: { address: Address; fromBlock: bigint },
  customer: Address,
  index: number,
): Promise<Log | undefined> {
  const logs = await client.getContractEvents({
    address: vault.address,
    abi: paymentVaultAbi,
    eventName: "BillSettled",
    args: { customer, period: BigInt(index) },
    fromBlock: vault.fromBlock,
    toBlock: "latest",
  });
  return logs[0];
}

export interface SettleItem {
  customer: Address;
  amount: bigint;
  billHash: Hex;
}

/** Calldata of `PaymentVault.settle(period, bills)`. */
export function encodeSettle(index: number, bills: SettleItem[]): Hex {
  return encodeFunctionData({ abi: paymentVaultAbi, functionName: "settle", args: [index, bills] });
}

export type SettlementEvent =
  { kind: "settled"; customer: Address; charged: bigint; shortfall: bigint } | { kind: "too_old"; customer: Address };

/** The vault's BillSettled events and its PeriodTooOld skips among `logs`; other logs are ignored. */
export function settlementEvents(vault: Address, logs: readonly Log[]): SettlementEvent[] {
  const events: SettlementEvent[] = [];
  for (const log of logs) {
    if (log.address.toLowerCase() !== vault.toLowerCase()) continue;
    let event;
    try {
      event = decodeEventLog({ abi: paymentVaultAbi, data: log.data, topics: log.topics });
    } catch {
      continue;
    }
    if (event.eventName === "BillSettled") {
      const { customer, charged, shortfall } = event.args;
      events.push({ kind: "settled", customer, charged, shortfall });
    } else if (event.eventName === "BillSkipped" && event.args.reason === SKIP_PERIOD_TOO_OLD) {
      events.push({ kind: "too_old", customer: event.args.customer });
    }
  }
  return events;
}
