/** POST /sign: a peer instance asks this one to sign a score batch it computed too. */
import type { TypedApp } from "../../common/http";
import { ErrorReplySchema, SignReplySchema, SignRequestBodySchema } from "../../common/protocol";
import type { BatchSigner } from "../sign";
import type { OracleStore } from "../store";

export function signRoutes(app: TypedApp, store: OracleStore, signer: BatchSigner): void {
  app.post(
    "/sign",
    {
      schema: {
        summary: "Peer signing: signs a batch only if it equals this instance's own",
        body: SignRequestBodySchema,
        response: { 200: SignReplySchema, "4xx": ErrorReplySchema },
      },
    },
    async (request) => signer.signForPeer(store, request.body),
  );
}
