/**
 * The certificate service's HTTP API (design19's table, docs/certificates.md): challenge responses, order leases,
 * certificates. Signed routes pass ./signed's hook first; GET /challenges/:token is open, limited per client
 * address. Replies: 204 for writes that return nothing, JSON otherwise; errors {statusCode, code, error, ...}.
 */
import { Type } from "@fastify/type-provider-typebox";

import type { ErrorHandlerOptions, TypedApp } from "../../common/http";
import {
  CertificatePutSchema,
  CertificateQueryReplySchema,
  CertificateQuerySchema,
  ChallengePutSchema,
  ChallengeReplySchema,
  LeaseReplySchema,
  LeaseTakeSchema,
  OrderFailedSchema,
} from "../../common/protocol/certs";
import { type KeyedLimiter, clientKey } from "../../common/tokenBucket";
import type { RequestAuth } from "../auth";
import type { CertsBook } from "../book";
import { certsError } from "../errors";
import {
  CertsErrorSchema,
  DomainParams,
  FailureReplySchema,
  SignedHeaders,
  StoredReplySchema,
  TokenParams,
} from "./schemas";
import { certsErrorHandler, signedBy, signer, subjectOf } from "./signed";

export interface CertsRouteDeps {
  book: CertsBook;
  auth: RequestAuth;
  /** Open challenge reads per client address. */
  readers: KeyedLimiter;
  now: () => number;
}

const errors = { "4xx": CertsErrorSchema, "5xx": CertsErrorSchema };
const NoContent = { 204: Type.Null() };
const signed = { headers: SignedHeaders };

export function certsRoutes(deps: CertsRouteDeps, handler: ErrorHandlerOptions): (app: TypedApp) => void {
  return (app) => {
    void app.register(async (api: TypedApp) => {
      api.setErrorHandler(certsErrorHandler(handler));
      challengeRoutes(api, deps);
      orderRoutes(api, deps);
      certificateRoutes(api, deps);
    });
  };
}

function challengeRoutes(api: TypedApp, deps: CertsRouteDeps): void {
  const { book, auth } = deps;
  api.put(
    "/challenges/:token",
    {
      bodyLimit: 4096,
      preValidation: signedBy(auth, "challenge.put", "token"),
      schema: {
        summary: "Store an ACME HTTP-01 key authorization (the writer's, for --challenge-ttl-seconds)",
        params: TokenParams,
        body: ChallengePutSchema,
        response: { ...NoContent, ...errors },
        ...signed,
      },
    },
    async (request, reply) => {
      book.putChallenge(signer(request).device, request.params.token, request.body);
      return reply.code(204).send(null);
    },
  );

  api.delete(
    "/challenges/:token",
    {
      bodyLimit: 1024,
      preValidation: signedBy(auth, "challenge.delete", "token"),
      schema: {
        summary: "Delete a challenge response (its writer only)",
        params: TokenParams,
        response: { ...NoContent, ...errors },
        ...signed,
      },
    },
    async (request, reply) => {
      book.deleteChallenge(signer(request).device, request.params.token);
      return reply.code(204).send(null);
    },
  );

  api.get(
    "/challenges/:token",
    {
      preValidation: async (request) => {
        subjectOf(request, "token");
        const waitMs = deps.readers.take(clientKey(request.ip), deps.now());
        if (waitMs !== undefined)
          throw certsError("CERTS_RATE_LIMITED", "too many challenge reads from this address", {
            details: { retryAfterMs: waitMs },
          });
      },
      schema: {
        summary: "A challenge response (open: any gateway answering the ACME server reads it)",
        params: TokenParams,
        response: { 200: ChallengeReplySchema, ...errors },
      },
    },
    async (request) => book.getChallenge(request.params.token),
  );
}

function orderRoutes(api: TypedApp, { book, auth }: CertsRouteDeps): void {
  api.post(
    "/orders/:domain/lease",
    {
      bodyLimit: 1024,
      preValidation: signedBy(auth, "lease.take", "domain"),
      schema: {
        summary: "Take (or, as its holder, extend) the domain's order lease",
        params: DomainParams,
        body: LeaseTakeSchema,
        response: { 200: LeaseReplySchema, ...errors },
        ...signed,
      },
    },
    async (request) => book.takeLease(signer(request).device, request.params.domain, request.body.ttlSeconds),
  );

  api.delete(
    "/orders/:domain/lease",
    {
      bodyLimit: 1024,
      preValidation: signedBy(auth, "lease.release", "domain"),
      schema: {
        summary: "Release the domain's order lease (its holder only)",
        params: DomainParams,
        response: { ...NoContent, ...errors },
        ...signed,
      },
    },
    async (request, reply) => {
      book.releaseLease(signer(request).device, request.params.domain);
      return reply.code(204).send(null);
    },
  );

  api.post(
    "/orders/:domain/failure",
    {
      bodyLimit: 4096,
      preValidation: signedBy(auth, "order.failed", "domain"),
      schema: {
        summary: "The holder's order failed: the lease ends, the domain backs off (doubling)",
        params: DomainParams,
        body: OrderFailedSchema,
        response: { 200: FailureReplySchema, ...errors },
        ...signed,
      },
    },
    async (request) => book.orderFailed(signer(request).device, request.params.domain, request.body.reason),
  );
}

function certificateRoutes(api: TypedApp, { book, auth }: CertsRouteDeps): void {
  api.put(
    "/certificates/:domain",
    {
      // The chain (64 KiB) and the key (16 KiB) as JSON, with room for escaping.
      bodyLimit: 96 * 1024,
      preValidation: signedBy(auth, "certificate.put", "domain"),
      schema: {
        summary: "Store the holder's issued certificate (chain checked, key encrypted at rest)",
        params: DomainParams,
        body: CertificatePutSchema,
        response: { 200: StoredReplySchema, ...errors },
        ...signed,
      },
    },
    async (request) => book.putCertificate(signer(request).device, request.params.domain, request.body),
  );

  api.post(
    "/certificates/query",
    {
      // 500 domains of up to 253 characters and 500 fingerprints, as JSON.
      bodyLimit: 256 * 1024,
      preValidation: signedBy(auth, "certificate.query", "none"),
      schema: {
        summary: "The certificates of these domains; private keys sealed to the asking gateway",
        body: CertificateQuerySchema,
        response: { 200: CertificateQueryReplySchema, ...errors },
        ...signed,
      },
    },
    async (request) => book.query(signer(request), request.body),
  );
}
