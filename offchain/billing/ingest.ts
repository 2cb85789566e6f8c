/**
 * Ingestion of a gateway's signed usage batch (EIP-712 UsageBatch over the records' RFC 8785 hash,
 * offchain/common/protocol). The batch is checked whole before anything is stored: the signature, the gateway
 * admitted in the confirmed chain view, each record the sender's, priced, not from the future, in a period still
 * open, its quantity under 2^63. Then its records go in one SQLite transaction, each id once: the same id with the
 * same content is a duplicate, with other content the whole batch is refused. No HTTP here.
 */
import type { Counter } from "prom-client";

import type { ChainView } from "../common/chainView";
import { type PeriodScheme, periodIndex } from "../common/period";
import { type UsageBatchBody, verifyUsageBatch } from "../common/protocol";
import { senderStanding } from "../common/service/admittedSender";
import { StakeType } from "../common/stakeMap";
import { type ParsedRecord, type PriceList, priceOf } from "./bills";
import { billingError } from "./errors";
import type { OpenUsage } from "./openUsage";
import { isOpen, periodAt } from "./periods";
import type { BillingStore } from "./store";

/** SQLite's integer: sums of quantities stay exact in 64 bits (the store redoes an overflowing sum in BigInt). */
const MAX_INT64 = (1n << 63n) - 1n;

export interface IngestDeps {
  chainId: number;
  /** The confirmed chain view: which gateways are admitted now. */
  view: ChainView;
  store: BillingStore;
  prices: PriceList;
  scheme: PeriodScheme;
  openUsage: OpenUsage;
  /** How far ahead of `now` a record's time may be. */
  maxSkewMs: number;
  metrics: { batches: Counter; records: Counter };
  now: () => number;
}

export interface IngestReply {
  accepted: number;
  duplicates: number;
}

type PeriodRecord = ParsedRecord & { period: number };

/** Checks and stores one batch; throws a BILLING_* EdgeError and stores nothing if any check fails. */
export async function ingestUsage(deps: IngestDeps, body: UsageBatchBody): Promise<IngestReply> {
  if (!(await verifyUsageBatch(deps.chainId, body)))
    throw billingError("BILLING_BAD_SIGNATURE", "the usage batch is not signed by its gateway");
  requireAdmittedGateway(deps.view, body.gateway);
  const { records, periods } = checkRecords(deps, body);
  // From here on synchronous: the closer cannot run between the check and the insert.
  for (const [id, index] of periods) {
    if (!isOpen(deps.store, index))
      throw billingError("BILLING_PERIOD_CLOSED", `period ${id} is closed: no more usage`);
  }
  const outcome = deps.store.insertRecords(records, deps.now());
  if ("conflict" in outcome) {
    throw billingError(
      "BILLING_RECORD_CONFLICT",
      `record id "${outcome.conflict}" was accepted before with other content`,
    );
  }
  for (const record of outcome.fresh) deps.openUsage.add((record as PeriodRecord).period, [record]);
  deps.metrics.batches.inc({ outcome: "accepted" });
  deps.metrics.records.inc({ outcome: "accepted" }, outcome.accepted);
  deps.metrics.records.inc({ outcome: "duplicate" }, outcome.duplicates);
  return { accepted: outcome.accepted, duplicates: outcome.duplicates };
}

/** The gateway must be bound to a gateway stake that is admitted now (in the confirmed chain view). */
function requireAdmittedGateway(view: ChainView, device: string): void {
  const standing = senderStanding(view, device, StakeType.Gateway);
  if (standing === "not_staked") throw billingError("BILLING_SENDER_NOT_STAKED", `${device} holds no gateway stake`);
  if (standing === "not_admitted")
    throw billingError("BILLING_SENDER_NOT_ADMITTED", `${device}'s gateway stake is not admitted`);
}

/** Each record checked and parsed (lowercase addresses, BigInt quantity, its period's index); the periods named. */
function checkRecords(
  deps: IngestDeps,
  body: UsageBatchBody,
): { records: PeriodRecord[]; periods: Map<string, number> } {
  const gateway = body.gateway.toLowerCase();
  const latest = deps.now() + deps.maxSkewMs;
  const periods = new Map<string, number>();
  const records = body.records.map((r, i): PeriodRecord => {
    const where = `records[${i}]`;
    if (r.gateway.toLowerCase() !== gateway)
      throw billingError("BILLING_RECORD_GATEWAY_MISMATCH", `${where}: gateway ${r.gateway} is not the sender`);
    if (!priceOf(deps.prices, r.service, r.metric))
      throw billingError(
        "BILLING_UNKNOWN_PRICE",
        `${where}: no price for service "${r.service}", metric "${r.metric}"`,
      );
    if (r.time > latest) throw billingError("BILLING_TIME_IN_FUTURE", `${where}: time ${r.time} is in the future`);
    const quantity = BigInt(r.quantity);
    if (quantity > MAX_INT64)
      throw billingError("BILLING_QUANTITY_TOO_LARGE", `${where}: quantity ${quantity} exceeds 2^63 - 1`);
    const id = periodAt(deps.scheme, r.time);
    let index = periods.get(id);
    if (index === undefined) periods.set(id, (index = periodIndex(id)));
    return {
      id: r.id,
      gateway,
      customer: r.customer.toLowerCase(),
      service: r.service,
      metric: r.metric,
      quantity,
      time: r.time,
      period: index,
    };
  });
  return { records, periods };
}
