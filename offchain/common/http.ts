/**
 * The HTTP scaffolding the services share (oracle, billing): fastify with strict JSON schemas (no coercion, no
 * silently dropped fields), OpenAPI docs generated from the route schemas, /health, /metrics and /docs/json, and
 * one error shape, {"statusCode", "code", "error"}, where only a bug is a 5xx.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  type RawServerDefault,
} from "fastify";
import swagger from "@fastify/swagger";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { Registry } from "prom-client";

import { isEdgeError } from "./errors";
import { logSerializers } from "./redact";

/** A fastify instance that keeps the TypeBox type provider: route handlers see typed bodies, params, headers. */
export type TypedApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** fastify with the house's strict JSON schemas: nothing coerced, an unknown field an error, never dropped. */
export function createTypedApp(options: FastifyServerOptions): TypedApp {
  // Errors are logged through the redacting serializer (N2): an RPC URL in an error must not leak its API key.
  const logger =
    options.logger && typeof options.logger === "object"
      ? ({
          ...options.logger,
          serializers: { ...options.logger.serializers, ...logSerializers },
        } as typeof options.logger)
      : options.logger;
  return Fastify({
    ...options,
    logger,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
}

export interface ErrorHandlerOptions {
  /** Prefix of the fallback codes: `<prefix>_BAD_REQUEST`, `<prefix>_INTERNAL`. */
  codePrefix: string;
  /** Called for every 4xx answer with the route (as registered) and the code. */
  onRejected?: (route: string, code: string) => void;
}

/**
 * The one error handler of every service and the node. An EdgeError answers with its status, code, message and
 * details (a deliberate 5xx too, such as 503 while not serving); fastify's own 4xx (schema validation, body too
 * large) keep their status under `<prefix>_BAD_REQUEST` unless they carry a code; anything else is a bug: 500,
 * logged, and nothing of it in the answer.
 */
export function errorHandler(options: ErrorHandlerOptions) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    let status: number | undefined;
    let code: string;
    let extra: Record<string, unknown> | undefined;
    if (isEdgeError(error)) {
      ({ status, code } = error);
      extra = error.details;
    } else {
      status = (error as { statusCode?: number }).statusCode;
      if (!status || status < 400 || status >= 500) status = undefined;
      code = (error as { code?: string }).code ?? `${options.codePrefix}_BAD_REQUEST`;
    }
    if (status === undefined) {
      request.log.error({ err: error }, "unexpected error");
      return reply.code(500).send({ statusCode: 500, code: `${options.codePrefix}_INTERNAL`, error: "internal error" });
    }
    if (status < 500) options.onRejected?.(request.routeOptions.url ?? "", code);
    return reply.code(status).send({ statusCode: status, code, error: (error as Error).message, ...extra });
  };
}

export interface ServiceAppOptions extends ErrorHandlerOptions {
  /** Logged as `service` on every line. */
  name: string;
  logLevel: string;
  logger?: FastifyBaseLogger;
  openapi: { title: string; description: string; bearer?: boolean };
  registry: Registry;
  /** Registers the service's routes (after swagger, so the docs list them). */
  routes: (app: TypedApp) => void;
}

export function createServiceApp(options: ServiceAppOptions): TypedApp {
  const app = createTypedApp({
    logger: options.logger ? undefined : { level: options.logLevel, base: { service: options.name } },
    loggerInstance: options.logger as FastifyBaseLogger | undefined,
    bodyLimit: 4 * 1024 * 1024,
  });
  void app.register(swagger, {
    openapi: {
      info: { title: options.openapi.title, version: "1.0.0", description: options.openapi.description },
      ...(options.openapi.bearer
        ? { components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } } }
        : {}),
    },
  });
  app.setErrorHandler(errorHandler(options));
  // Routes go in a plugin registered after swagger, so swagger's onRoute hook sees them all.
  void app.register(async (api) => {
    api.get("/health", { schema: { hide: true } }, async () => ({ ok: true }));
    api.get("/metrics", { schema: { hide: true } }, async (_request, reply) => {
      reply.header("content-type", options.registry.contentType);
      return options.registry.metrics();
    });
    api.get("/docs/json", { schema: { hide: true } }, async () => api.swagger());
    options.routes(api);
  });
  return app;
}

/**
 * Whether an Authorization header carries `Bearer <token>`. Compares SHA-256 digests of equal length, so the
 * time taken says nothing about the token or its length.
 */
export function bearerMatches(authorization: string | undefined, token: string): boolean {
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(authorization ?? ""), digest(`Bearer ${token}`));
}
