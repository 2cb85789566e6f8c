/** POST /usage: a gateway's signed batch of usage records (the wire message of offchain/common/protocol). */
import type { TypedApp } from "../../common/http";
import { ErrorReplySchema, UsageBatchBodySchema, UsageReplySchema } from "../../common/protocol";
import { type IngestDeps, ingestUsage, requireSender } from "../ingest";

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

export function usageRoutes(app: TypedApp, deps: IngestDeps): void {
  app.post(
    "/usage",
    {
      schema: {
        summary: "Submit a gateway's signed batch of usage records",
        body: UsageBatchBodySchema,
        response: { 200: UsageReplySchema, "4xx": ErrorReplySchema, "5xx": ErrorReplySchema },
      },
      // The cheapest check first (D42, F7): a sender that is not an admitted gateway costs no schema validation of
      // thousands of records, no hashing and no signature recovery.
      preValidation: async (request) => {
        const gateway = (request.body as { gateway?: unknown } | null)?.gateway;
        if (typeof gateway === "string" && ADDRESS.test(gateway)) requireSender(deps, gateway);
      },
    },
    async (request) => ingestUsage(deps, request.body),
  );
}
