/**
 * POST /sign: a committee member's instance asks this one to sign a score batch it computed too (the request
 * signed by the member, checked before any work: L-4). The body is bounded by a batch's largest size.
 */
import type { TypedApp } from "../../common/http";
import { ErrorReplySchema, SignReplySchema, SignRequestBodySchema } from "../../common/protocol";
import type { BatchSigner } from "../sign";
import type { OracleStore } from "../store";

export function signRoutes(app: TypedApp, store: OracleStore, signer: BatchSigner): void {
  app.post(
    "/sign",
    {
      bodyLimit: 32 * 1024,
      schema: {
        summary: "Peer signing, committee members only: signs a batch only if it equals this instance's own",
        body: SignRequestBodySchema,
        response: { 200: SignReplySchema, "4xx": ErrorReplySchema },
      },
    },
    async (request) => signer.signForPeer(store, request.body),
  );
}
