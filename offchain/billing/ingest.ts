/**
 * Ingestion of a sender's signed usage batch (EIP-712 UsageBatch over the records' RFC 8785 hash,
 * offchain/common/protocol). Senders are gateways (services `compute` and `cdn`) and, since D58, stargates
 * (service `dns` only): the stake the sender's device is bound to says which. The batch is checked whole before
 * anything is stored, cheapest checks first (D42, F7): the sender admitted now in the confirmed chain view, or
 * admitted at some time records may still come from (AdmissionHistory); each record the sender's, of a service its
 * kind serves, priced, not from the future, in a period still open, its quantity under 2^63, and its sender
 * admitted at the record's own time (F3); only then the records' hash and the signature. A refusal the view may be wrong about while it is stale is a retryable 503. Then the records go in
 * one SQLite transaction, each (gateway, id) once: the same key with the same content is a duplicate, with other
 * content the whole batch is refused. No HTTP here.
 */
import type { Counter } from "prom-client";

import type { ChainView } from "../common/chainView";
import { type PeriodScheme, periodIdOf, periodIndex, periodWindow } from "../common/period";
import { type UsageBatchBody, verifyUsageBatch } from "../common/protocol";
import { senderStanding, stakeKindName } from "../common/service/admittedSender";
import { StakeType } from "../common/stakeMap";
import type { AdmissionHistory, SenderKind } from "./admission";
import { type ParsedRecord, type PriceList, priceOf } from "./bills";
import { billingError } from "./errors";
import type { OpenUsage } from "./openUsage";
import { firstPeriodIndex, isOpen, periodAt } from "./periods";
import type { BillingStore } from "./store";

/**
 * The services each kind of sender bills (D58): gateways run jobs, serve sites and store objects (D75), stargates
 * answer DNS.
 */
export const SENDER_SERVICES: Record<SenderKind, ReadonlySet<string>> = {
  [StakeType.Gateway]: new Set(["compute", "cdn", "storage"]),
  [StakeType.Stargate]: new Set(["dns"]),
};

/** A batch's sender as the first check found it: its kind, and whether it is admitted now. */
export interface UsageSender {
  kind: SenderKind;
  admittedNow: boolean;
}

/** SQLite's integer: sums of quantities stay exact in 64 bits (the store redoes an overflowing sum in BigInt). */
const MAX_INT64 = (1n << 63n) - 1n;

export interface IngestDeps {
  chainId: number;
  /** The confirmed chain view: which gateways are admitted now. */
  view: ChainView;
  /** Which gateways were admitted when (from the view's changes). */
  admission: AdmissionHistory;
  /** Past this, a refusal the view might be wrong about is a retryable 503 (BILLING_VIEW_STALE). */
  maxStalenessMs: number;
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
  const sender = requireSender(deps, body.gateway);
  const { records, periods } = checkRecords(deps, body, sender);
  if (!(await verifyUsageBatch(deps.chainId, body)))
    throw billingError("BILLING_BAD_SIGNATURE", "the usage batch is not signed by its gateway");
  // From here on synchronous: the closer cannot run between the check and the insert.
  for (const [id, index] of periods) {
    if (!isOpen(deps.store, index))
      throw billingError("BILLING_PERIOD_CLOSED", `period ${id} is closed: no more usage`);
  }
  const outcome = deps.store.insertRecords(records, deps.now());
  if ("conflict" in outcome) {
    throw billingError(
      "BILLING_RECORD_CONFLICT",
      `record id "${outcome.conflict}" of this gateway was accepted before with other content`,
    );
  }
  if (periods.size === 1) deps.openUsage.add(periods.values().next().value!, outcome.fresh);
  else for (const record of outcome.fresh) deps.openUsage.add((record as PeriodRecord).period, [record]);
  deps.metrics.batches.inc({ outcome: "accepted" });
  deps.metrics.records.inc({ outcome: "accepted" }, outcome.accepted);
  deps.metrics.records.inc({ outcome: "duplicate" }, outcome.duplicates);
  return { accepted: outcome.accepted, duplicates: outcome.duplicates };
}

/**
 * The cheap first check (before the body's schema, hash and signature): the sender's kind (a stargate when its
 * device is bound to a stargate stake, else a gateway), and whether it is admitted now, or (admittedNow false) still
 * holds its stake and was admitted at some time since the oldest open period began (each record's time is then
 * checked). Otherwise 403, or 503 while the view is stale (it may not know of the sender's stake yet).
 */
export function requireSender(deps: Omit<IngestDeps, "chainId">, device: string): UsageSender {
  const kind: SenderKind =
    deps.view.map.stakeOfDevice(device)?.stakeType === StakeType.Stargate ? StakeType.Stargate : StakeType.Gateway;
  const standing = senderStanding(deps.view, device, kind);
  if (standing === "admitted") return { kind, admittedNow: true };
  // Late usage of an evicted sender counts only while its stake still stands behind it (unbonding, below the
  // minimum): once released it has nothing left to slash, and could back-date records at will (M3 of the review
  // after D42). It had the whole unbonding period (at least a day) to deliver.
  if (standing === "not_admitted" && deps.admission.admittedSince(device, oldestOpenStart(deps), kind))
    return { kind, admittedNow: false };
  requireFreshView(deps, `${device} is not admitted`);
  if (standing === "not_staked")
    throw billingError("BILLING_SENDER_NOT_STAKED", `${device} holds no gateway stake, nor a stargate stake`);
  throw billingError("BILLING_SENDER_NOT_ADMITTED", `${device}'s ${stakeKindName(kind)} stake is not admitted`);
}

/** A refusal that rests on the chain view waits for a fresh view: 503, which gateways retry. */
function requireFreshView(deps: Pick<IngestDeps, "view" | "maxStalenessMs">, why: string): void {
  const { stalenessMs } = deps.view.status();
  if (stalenessMs === null || stalenessMs > deps.maxStalenessMs) {
    const age = stalenessMs === null ? "not synced yet" : `${Math.round(stalenessMs / 1000)} s old`;
    throw billingError("BILLING_VIEW_STALE", `${why}, says a chain view ${age}: retry later`);
  }
}

/** When the oldest period that still takes usage began: no record may be older. */
function oldestOpenStart(deps: Pick<IngestDeps, "store" | "scheme">): number {
  const index = Math.max(firstPeriodIndex(deps.store), (deps.store.lastClosedIndex() ?? -1) + 1);
  return periodWindow(periodIdOf(index, deps.scheme), deps.scheme).startMs;
}

/** Each record checked and parsed (lowercase addresses, BigInt quantity, its period's index); the periods named. */
function checkRecords(
  deps: IngestDeps,
  body: UsageBatchBody,
  { kind, admittedNow }: UsageSender,
): { records: PeriodRecord[]; periods: Map<string, number> } {
  const gateway = body.gateway.toLowerCase();
  const latest = deps.now() + deps.maxSkewMs;
  const periods = new Map<string, number>();
  const records = body.records.map((r, i): PeriodRecord => {
    const where = `records[${i}]`;
    if (r.gateway.toLowerCase() !== gateway)
      throw billingError("BILLING_RECORD_GATEWAY_MISMATCH", `${where}: gateway ${r.gateway} is not the sender`);
    if (!SENDER_SERVICES[kind].has(r.service))
      throw billingError(
        "BILLING_SERVICE_NOT_ALLOWED",
        `${where}: a ${stakeKindName(kind)} may not bill service "${r.service}" (it bills ${[...SENDER_SERVICES[kind]].join(", ")})`,
      );
    if (!priceOf(deps.prices, r.service, r.metric))
      throw billingError(
        "BILLING_UNKNOWN_PRICE",
        `${where}: no price for service "${r.service}", metric "${r.metric}"`,
      );
    if (r.time > latest) throw billingError("BILLING_TIME_IN_FUTURE", `${where}: time ${r.time} is in the future`);
    if (!admittedNow && !deps.admission.admittedAt(gateway, r.time, kind)) {
      const why = `${where}: the ${stakeKindName(kind)} was not admitted at time ${r.time}`;
      requireFreshView(deps, why);
      throw billingError("BILLING_SENDER_NOT_ADMITTED", why);
    }
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
