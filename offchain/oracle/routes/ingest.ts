/** POST /reports and /heartbeats: thin handlers over ../ingest. */
import type { Counter } from "prom-client";

import type { TypedApp } from "../../common/http";
import { ErrorReplySchema, HeartbeatBodySchema, JobReportBodySchema, ReportReplySchema } from "../../common/protocol";
import { type IngestDeps, ingestHeartbeat, ingestReport } from "../ingest";

/** A full report: MAX_REPORT_ENTRIES entries of up to ~300 bytes each, with room to spare. */
export const REPORT_BODY_LIMIT = 8 * 1024 * 1024;

export function ingestRoutes(
  app: TypedApp,
  deps: IngestDeps,
  metrics: { reports: Counter<"outcome">; heartbeats: Counter<"outcome"> },
): void {
  app.post(
    "/reports",
    {
      // 20,000 entries with host tallies (~250 bytes each) pass the services' default 4 MiB.
      bodyLimit: REPORT_BODY_LIMIT,
      schema: {
        summary: "Submit a gateway's signed job report",
        body: JobReportBodySchema,
        response: { 200: ReportReplySchema, "4xx": ErrorReplySchema },
      },
    },
    async (request) => {
      const status = await ingestReport(deps, request.body);
      metrics.reports.inc({ outcome: status });
      return { status };
    },
  );
  app.post(
    "/heartbeats",
    {
      // F7: a heartbeat is under 300 bytes; nothing bigger is parsed.
      bodyLimit: 1024,
      schema: {
        summary: "Submit a stargate's signed heartbeat",
        body: HeartbeatBodySchema,
        response: { 200: ReportReplySchema, "4xx": ErrorReplySchema },
      },
    },
    async (request) => {
      const status = await ingestHeartbeat(deps, request.body);
      metrics.heartbeats.inc({ outcome: status });
      return { status };
    },
  );
}
