/**
 * The transparency routes: every epoch's window, status and batches, and its inputs and results in the
 * recompute CLI's own formats (`oracle score --reports … --heartbeats … --admitted …`). Every list is paged
 * (F4): `?limit=` (bounded per route, see PAGE_LIMITS) and `?cursor=` (the previous page's `next`, opaque); a
 * page is an object with the list under its name and `next`, null on the last page. Concatenating the pages'
 * lists gives the CLI's formats.
 */
import { type TString, Type } from "@fastify/type-provider-typebox";

import type { EpochClock } from "../../common/epochs";
import type { TypedApp } from "../../common/http";
import { SmallDecimalSchema } from "../../common/protocol";
import { oracleError } from "../errors";
import type { AdmittedInput, Score } from "../scoring";
import type { OracleStore } from "../store";

/** Default and maximum page sizes per list. */
export const PAGE_LIMITS = {
  epochs: { default: 100, max: 1000 },
  reports: { default: 20, max: 100 },
  heartbeats: { default: 500, max: 1000 },
  batches: { default: 100, max: 500 },
  scores: { default: 1000, max: 5000 },
  admitted: { default: 1000, max: 5000 },
} as const;

/** A page of reports stops before this many characters of entries (but holds at least one report). */
export const REPORT_PAGE_CHARS = 2_000_000;

const EpochParams = Type.Object({ epoch: SmallDecimalSchema });
const pageQuery = (cursor: TString) =>
  Type.Object(
    { limit: Type.Optional(SmallDecimalSchema), cursor: Type.Optional(cursor) },
    { additionalProperties: false },
  );
const DecimalCursor = pageQuery(SmallDecimalSchema);
const GatewayCursor = pageQuery(Type.String({ pattern: "^0x[0-9a-f]{40}$" }));
const HeartbeatCursor = pageQuery(Type.String({ pattern: "^0x[0-9a-f]{40}:\\d{1,15}$" }));

interface PageQuery {
  limit?: string;
  cursor?: string;
}

function pageLimit(query: PageQuery, list: keyof typeof PAGE_LIMITS): number {
  const { default: fallback, max } = PAGE_LIMITS[list];
  if (query.limit === undefined) return fallback;
  const limit = Number(query.limit);
  if (limit < 1 || limit > max) throw oracleError("ORACLE_BAD_PAGE", `limit must be between 1 and ${max}`);
  return limit;
}

/** A slice of an in-memory list by offset cursor. */
function slice<T>(list: readonly T[], query: PageQuery, limit: number): { items: T[]; next: string | null } {
  const from = Number(query.cursor ?? "0");
  const items = list.slice(from, from + limit);
  return { items, next: from + limit < list.length ? String(from + limit) : null };
}

export function epochRoutes(app: TypedApp, store: OracleStore, clock: EpochClock): void {
  epochStatusRoutes(app, store, clock);
  epochInputRoutes(app, store);
}

/** The epochs, one epoch's status and counts, its batches. */
function epochStatusRoutes(app: TypedApp, store: OracleStore, clock: EpochClock): void {
  app.get(
    "/epochs",
    { schema: { summary: "Closed epochs and whether their scores are on-chain (paged)", querystring: DecimalCursor } },
    async (request) => {
      const page = store.epochsPage(Number(request.query.cursor ?? "-1"), pageLimit(request.query, "epochs"));
      return { current: clock.currentEpoch().toString(), epochs: page.items, next: page.next };
    },
  );
  app.get(
    "/epochs/:epoch",
    { schema: { summary: "An epoch: window, status and how many of each list it has", params: EpochParams } },
    async (request) => {
      const epoch = Number(request.params.epoch);
      const record = store.epoch(epoch);
      const { start, end } = clock.window(BigInt(epoch));
      return {
        epoch,
        window: { start: Number(start), end: Number(end) },
        status: record?.status ?? "open",
        endBlock: record?.endBlock ?? null,
        reports: store.reportCount(epoch),
        heartbeats: store.heartbeatCount(epoch),
        batches: store.batchCount(epoch),
        scores: record?.scores.length ?? 0,
      };
    },
  );
  app.get(
    "/epochs/:epoch/batches",
    {
      schema: {
        summary: "The epoch's batches with their transactions (paged)",
        params: EpochParams,
        querystring: DecimalCursor,
      },
    },
    async (request) => {
      const epoch = Number(request.params.epoch);
      const page = store.batchSummaries(
        epoch,
        Number(request.query.cursor ?? "0"),
        pageLimit(request.query, "batches"),
      );
      return {
        epoch,
        batches: page.items.map((b) => ({
          index: b.batchIndex,
          entriesHash: b.entriesHash,
          posted: b.posted,
          txHash: b.txHash,
        })),
        next: page.next,
      };
    },
  );
}

/** An epoch's inputs and results in the CLI's formats. */
function epochInputRoutes(app: TypedApp, store: OracleStore): void {
  // A closed epoch's admitted set and scores never change: the last few parsed are kept, so paging through a
  // large epoch parses it once rather than once per page and reader.
  const frozen = new Map<number, { admitted: AdmittedInput; scores: Score[] }>();
  const closed = (epoch: number) => {
    const cached = frozen.get(epoch);
    if (cached) return cached;
    const record = store.epoch(epoch);
    if (!record) throw oracleError("ORACLE_UNKNOWN_EPOCH", `epoch ${epoch} is not closed yet`);
    if (frozen.size >= 4) frozen.delete(frozen.keys().next().value!);
    const kept = { admitted: record.admitted, scores: record.scores };
    frozen.set(epoch, kept);
    return kept;
  };

  app.get(
    "/epochs/:epoch/reports",
    {
      schema: {
        summary: "Accepted reports, the latest per gateway (the CLI's --reports format, paged)",
        params: EpochParams,
        querystring: GatewayCursor,
      },
    },
    async (request) => {
      const limit = pageLimit(request.query, "reports");
      const page = store.reportsPage(
        Number(request.params.epoch),
        request.query.cursor ?? "",
        limit,
        REPORT_PAGE_CHARS,
      );
      return {
        epoch: Number(request.params.epoch),
        reports: page.items.map((r) => ({
          gateway: r.gateway,
          epoch: r.epoch,
          sequence: r.sequence,
          entries: r.entries,
          signature: r.signature,
        })),
        next: page.next,
      };
    },
  );
  app.get(
    "/epochs/:epoch/heartbeats",
    {
      schema: {
        summary: "Accepted heartbeats (the CLI's --heartbeats format, paged)",
        params: EpochParams,
        querystring: HeartbeatCursor,
      },
    },
    async (request) => {
      const [stargate, timestamp] = (request.query.cursor ?? ":-1").split(":");
      const after = { stargate, timestamp: Number(timestamp) };
      const epoch = Number(request.params.epoch);
      const page = store.heartbeatsPage(epoch, after, pageLimit(request.query, "heartbeats"));
      return { epoch, heartbeats: page.items, next: page.next };
    },
  );
  app.get(
    "/epochs/:epoch/admitted",
    {
      schema: {
        summary:
          "Devices admitted at the epoch's end (the CLI's --admitted format, paged over hosts, gateways, stargates)",
        params: EpochParams,
        querystring: DecimalCursor,
      },
    },
    async (request) => {
      const { admitted } = closed(Number(request.params.epoch));
      const all = [
        ...admitted.hosts.map((d) => ["hosts", d] as const),
        ...admitted.gateways.map((d) => ["gateways", d] as const),
        ...admitted.stargates.map((d) => ["stargates", d] as const),
      ];
      const page = slice(all, request.query, pageLimit(request.query, "admitted"));
      const out: AdmittedInput = { hosts: [], gateways: [], stargates: [] };
      for (const [kind, device] of page.items) out[kind].push(device);
      return { ...out, next: page.next };
    },
  );
  app.get(
    "/epochs/:epoch/scores",
    {
      schema: {
        summary: "The epoch's scores, exactly as the CLI prints them (paged)",
        params: EpochParams,
        querystring: DecimalCursor,
      },
    },
    async (request) => {
      const epoch = Number(request.params.epoch);
      const page = slice(closed(epoch).scores, request.query, pageLimit(request.query, "scores"));
      return { epoch, scores: page.items, next: page.next };
    },
  );
}
