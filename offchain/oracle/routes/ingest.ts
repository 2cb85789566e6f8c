/** POST /reports and /heartbeats: thin handlers over ../ingest. */
import type { Counter } from "prom-client";

import type { TypedApp } from "../../common/http";
import { ErrorReplySchema, HeartbeatBodySchema, JobReportBodySchema, ReportReplySchema } from "../../common/protocol";
import { type IngestDeps, ingestHeartbeat, ingestReport } from "../ingest";

export function ingestRoutes(
  app: TypedApp,
  deps: IngestDeps,
  metrics: { reports: Counter<"outcome">; heartbeats: Counter<"outcome"> },
): void {
  app.post(
    "/reports",
    {
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
