/**
 * What the certificate service's routes share: the signed-request check as a preValidation hook (it runs on the
 * parsed body before its schema, so the body hashed is the body sent, before defaults are filled in, and a
 * request that is not an admitted gateway's costs no schema work), the path parameters checked by their patterns
 * first (cheapest), and fastify's own refusals (a body too large, a body or parameter off its schema) turned into
 * CERTS_* codes.
 */
import type { FastifyReply, FastifyRequest } from "fastify";

import { type EdgeError, isEdgeError } from "../../common/errors";
import { type ErrorHandlerOptions, errorHandler } from "../../common/http";
import { ACME_TOKEN_PATTERN, type CertAction, DOMAIN_PATTERN } from "../../common/protocol/certs";
import type { RequestAuth, SignedRequest } from "../auth";
import { certsError } from "../errors";

const passed = new WeakMap<FastifyRequest, SignedRequest>();

export type Subject = "token" | "domain" | "none";

/** The path parameter a route's subject is, checked against its pattern (400 CERTS_BAD_TOKEN / CERTS_BAD_DOMAIN). */
export function subjectOf(request: FastifyRequest, kind: Subject): string {
  const params = (request.params ?? {}) as Record<string, string | undefined>;
  if (kind === "token") {
    const token = params.token ?? "";
    if (!ACME_TOKEN_PATTERN.test(token))
      throw certsError("CERTS_BAD_TOKEN", "the token is not an ACME token (22 to 128 base64url characters)");
    return token;
  }
  if (kind === "domain") {
    const domain = params.domain ?? "";
    if (!DOMAIN_PATTERN.test(domain)) throw certsError("CERTS_BAD_DOMAIN", "the domain is not a lower-case host name");
    return domain;
  }
  return "";
}

/** The preValidation hook of a signed route: its subject checked, then the request (../auth). */
export function signedBy(auth: RequestAuth, action: CertAction, kind: Subject) {
  return async (request: FastifyRequest) => {
    const subject = subjectOf(request, kind);
    passed.set(request, await auth.check(request.headers, action, subject, request.body));
  };
}

/** The signed request a route's hook passed. */
export function signer(request: FastifyRequest): SignedRequest {
  const signed = passed.get(request);
  if (!signed) throw new Error("a signed route ran without its check");
  return signed;
}

/** fastify's refusals as CERTS_* EdgeErrors; anything else as it is (a bug stays a 500). */
export function asCertsError(error: unknown): unknown {
  if (isEdgeError(error)) return error;
  const status = (error as { statusCode?: number }).statusCode;
  if (status === 413) return certsError("CERTS_TOO_LARGE", "the body is larger than this route takes");
  if (status !== undefined && status >= 400 && status < 500) {
    const message = (error as Error).message;
    return certsError("CERTS_BAD_REQUEST", message) as EdgeError;
  }
  return error;
}

/** The service's error handler: the shared one, over CERTS_* codes. */
export function certsErrorHandler(options: ErrorHandlerOptions) {
  const handle = errorHandler(options);
  return (error: unknown, request: FastifyRequest, reply: FastifyReply) => handle(asCertsError(error), request, reply);
}
