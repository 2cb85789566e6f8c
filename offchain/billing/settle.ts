/**
 * Settlement, exactly once: the non-zero bills of each closed period go to PaymentVault.settle in the batches
 * fixed at close, through TxSender (signed and stored before it is broadcast, so a restart finds the
 * transaction again). Before each batch the chain is asked which of its bills are settled already (before a
 * crash, or by hand with billing:settle): those are only recorded, from their BillSettled event. Charged amount,
 * shortfall and transaction are recorded per bill from the receipt's events. No HTTP here.
 */
import type { Address, Hex, Log, PublicClient } from "viem";
import type { Counter } from "prom-client";

import type { TxSender } from "../common/txSender";
import type { BillRow, BillingStore } from "./store";
import { encodeSettle, findBillSettled, isBillSettled, settlementEvents } from "./vault";

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
  sender: Pick<TxSender, "send" | "wait"> | null;
  metrics: { settled: Counter; charged: Counter; shortfall: Counter };
  now: () => number;
  log: SettleLogger;
}

/** Settles every closed period's due bills, batch by batch; a period with none left is marked settled. */
export async function settleClosedPeriods(deps: SettleDeps): Promise<void> {
  const { store } = deps;
  for (const period of store.unsettledPeriods()) {
    const due = store.bills(period.period, "due");
    const batches = [...new Set(due.map((b) => b.batch!))].sort((a, b) => a - b);
    for (const batch of batches) {
      await settleBatch(
        deps,
        period.period,
        period.index,
        batch,
        due.filter((b) => b.batch === batch),
      );
    }
    if (store.bills(period.period, "due").length === 0) {
      store.markPeriodSettled(period.period, deps.now());
      deps.log.info({ period: period.period }, "period settled");
    }
  }
}

async function settleBatch(deps: SettleDeps, period: string, index: number, batch: number, bills: BillRow[]) {
  const { client, vault, sender } = deps;
  // The chain first: a bill settled before a crash (or by hand with billing:settle) is only recorded.
  const settled = await Promise.all(
    bills.map((b) => isBillSettled(client, vault.address, b.customer as Address, index)),
  );
  const open = bills.filter((_, i) => !settled[i]);
  for (const bill of bills.filter((_, i) => settled[i])) await recordFromChain(deps, bill, index);
  if (open.length === 0 || !sender) return;
  const data = encodeSettle(
    index,
    open.map((b) => ({ customer: b.customer as Address, amount: b.total, billHash: b.bill.billHash })),
  );
  const record = await sender.send(`settle:${period}:${batch}`, vault.address, data);
  const receipt = await sender.wait(record);
  if (receipt.status !== "success") {
    deps.log.warn({ period, batch, tx: receipt.transactionHash }, "settlement reverted; retrying");
    return;
  }
  recordFromLogs(deps, period, receipt.logs, receipt.transactionHash);
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
