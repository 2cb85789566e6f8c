/** POST /usage: a gateway's signed batch of usage records (the wire message of offchain/common/protocol). */
import type { TypedApp } from "../../common/http";
import { ErrorReplySchema, UsageBatchBodySchema, UsageReplySchema } from "../../common/protocol";
import { type IngestDeps, ingestUsage } from "../ingest";

export function usageRoutes(app: TypedApp, deps: IngestDeps): void {
  app.post(
    "/usage",
    {
      schema: {
        summary: "Submit a gateway's signed batch of usage records",
        body: UsageBatchBodySchema,
        response: { 200: UsageReplySchema, "4xx": ErrorReplySchema },
      },
    },
    async (request) => ingestUsage(deps, request.body),
  );
}
