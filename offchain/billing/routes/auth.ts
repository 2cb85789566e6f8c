/** Customers' sign-in: POST /auth/nonce, /auth/login and /auth/logout (the logic is in ../signIn). */
import type { TypedApp } from "../../common/http";
import { ErrorReplySchema } from "../../common/protocol";
import type { SignIn } from "../signIn";
import { BearerHeader, LoginBody, LoginReply, NonceBody, NonceReply } from "./schemas";

export function authRoutes(app: TypedApp, signIn: SignIn): void {
  app.post(
    "/auth/nonce",
    {
      schema: {
        summary: "Start a sign-in: the EIP-4361 message to sign with the customer's wallet",
        body: NonceBody,
        response: { 200: NonceReply, "4xx": ErrorReplySchema },
      },
    },
    // Rate-limited per client address (the socket's IP; behind a proxy, fastify's trustProxy would name the client).
    async (request) => signIn.issueNonce(request.body.address, request.ip),
  );

  app.post(
    "/auth/login",
    {
      schema: {
        summary: "Finish a sign-in with the signed message; returns a bearer token",
        body: LoginBody,
        response: { 200: LoginReply, "4xx": ErrorReplySchema },
      },
    },
    async (request) => signIn.login(request.body.message, request.body.signature),
  );

  app.post(
    "/auth/logout",
    { schema: { summary: "End the session of the bearer token", headers: BearerHeader, security: [{ bearer: [] }] } },
    async (request) => {
      signIn.logout(request.headers.authorization);
      return { ok: true };
    },
  );
}
