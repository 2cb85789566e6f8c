/**
 * POST /credit: admitted gateways ask for their customers' remaining credit (../credit; decision D43). The body
 * is a CreditQuery signed by the gateway's device key; the guard runs before any chain read.
 */
import type { TypedApp } from "../../common/http";
import { ErrorReplySchema } from "../../common/protocol";
import { CreditQueryBodySchema, CreditReplySchema } from "../../common/protocol/creditQuery";
import type { CreditBook, CreditGuard } from "../credit";

export interface CreditRouteDeps {
  book: CreditBook;
  guard: CreditGuard;
}

export function creditRoutes(app: TypedApp, { book, guard }: CreditRouteDeps): void {
  app.post(
    "/credit",
    {
      // 1,000 addresses of 44 characters and the envelope fit easily; anything larger is refused unread.
      bodyLimit: 64 * 1024,
      schema: {
        summary: "An admitted gateway's signed query: each customer's remaining credit in the open period",
        body: CreditQueryBodySchema,
        response: { 200: CreditReplySchema, "4xx": ErrorReplySchema },
      },
    },
    async (request) => {
      guard.admit(request.body);
      return book.credits(request.body.customers);
    },
  );
}
