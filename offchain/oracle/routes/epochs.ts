/**
 * The transparency routes: every epoch's window, status and batches, and its inputs and results in the
 * recompute CLI's own formats (`oracle score --reports … --heartbeats … --admitted …`).
 */
import { Type } from "@fastify/type-provider-typebox";

import type { EpochClock } from "../../common/epochs";
import type { TypedApp } from "../../common/http";
import { SmallDecimalSchema } from "../../common/protocol";
import { oracleError } from "../errors";
import type { OracleStore } from "../store";

const EpochParams = Type.Object({ epoch: SmallDecimalSchema });

export function epochRoutes(app: TypedApp, store: OracleStore, clock: EpochClock): void {
  /** The closed epoch's record, or 404. */
  const closed = (epoch: number) => {
    const record = store.epoch(epoch);
    if (!record) throw oracleError("ORACLE_UNKNOWN_EPOCH", `epoch ${epoch} is not closed yet`);
    return record;
  };

  app.get("/epochs", { schema: { summary: "Closed epochs and whether their scores are on-chain" } }, async () => ({
    current: clock.currentEpoch().toString(),
    epochs: store.epochs(),
  }));
  app.get(
    "/epochs/:epoch",
    { schema: { summary: "An epoch: window, status, batches with their transactions", params: EpochParams } },
    async (request) => {
      const epoch = Number(request.params.epoch);
      const record = store.epoch(epoch);
      const { start, end } = clock.window(BigInt(epoch));
      return {
        epoch,
        window: { start: Number(start), end: Number(end) },
        status: record?.status ?? "open",
        endBlock: record?.endBlock ?? null,
        reports: store.reports(epoch).length,
        heartbeats: store.heartbeats(epoch).length,
        batches: store
          .batches(epoch)
          .map((b) => ({ index: b.batchIndex, entriesHash: b.entriesHash, posted: b.posted, txHash: b.txHash })),
        scores: record ? record.scores.map((s) => ({ ...s, stakeId: record.stakes[s.device] })) : [],
      };
    },
  );
  app.get(
    "/epochs/:epoch/reports",
    { schema: { summary: "Accepted reports (the CLI's --reports format)", params: EpochParams } },
    async (request) =>
      store.reports(Number(request.params.epoch)).map((r) => ({
        gateway: r.gateway,
        epoch: r.epoch,
        sequence: r.sequence,
        entries: r.entries,
        signature: r.signature,
      })),
  );
  app.get(
    "/epochs/:epoch/heartbeats",
    { schema: { summary: "Accepted heartbeats (the CLI's --heartbeats format)", params: EpochParams } },
    async (request) => store.heartbeats(Number(request.params.epoch)),
  );
  app.get(
    "/epochs/:epoch/admitted",
    { schema: { summary: "Devices admitted at the epoch's end (the CLI's --admitted format)", params: EpochParams } },
    async (request) => closed(Number(request.params.epoch)).admitted,
  );
  app.get(
    "/epochs/:epoch/scores",
    { schema: { summary: "The epoch's scores, exactly as the CLI prints them", params: EpochParams } },
    async (request) => {
      const epoch = Number(request.params.epoch);
      return { epoch, scores: closed(epoch).scores };
    },
  );
}
