/**
 * The HTTP scaffolding the services share (oracle, billing): fastify with strict JSON schemas (no coercion, no
 * silently dropped fields), OpenAPI docs generated from the route schemas, /health, /metrics and /docs/json, and
 * one error shape, {"statusCode", "code", "error"}, where only a bug is a 5xx.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import swagger from "@fastify/swagger";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { Registry } from "prom-client";

/** An error a service raises on purpose: a 4xx with a code of the service's own. */
export interface ServiceError extends Error {
  status: number;
  code: string;
}

const isServiceError = (error: unknown): error is ServiceError =>
  error instanceof Error && typeof (error as ServiceError).status === "number" && "code" in error;

export interface ServiceAppOptions {
  /** Logged as `service` on every line. */
  name: string;
  /** Prefix of the fallback codes: `<prefix>_BAD_REQUEST`, `<prefix>_INTERNAL`. */
  codePrefix: string;
  logLevel: string;
  logger?: FastifyBaseLogger;
  openapi: { title: string; description: string; bearer?: boolean };
  registry: Registry;
  /** Called for every 4xx answer with the route (as registered) and the code. */
  onRejected?: (route: string, code: string) => void;
  /** Registers the service's routes (after swagger, so the docs list them). */
  routes: (app: FastifyInstance) => void;
}

export function createServiceApp(options: ServiceAppOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logger ? undefined : { level: options.logLevel, base: { service: options.name } },
    loggerInstance: options.logger,
    bodyLimit: 4 * 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as FastifyInstance;
  void app.register(swagger, {
    openapi: {
      info: { title: options.openapi.title, version: "1.0.0", description: options.openapi.description },
      ...(options.openapi.bearer
        ? { components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } } }
        : {}),
    },
  });
  app.setErrorHandler((error, request, reply) => {
    const status = isServiceError(error) ? error.status : (error as { statusCode?: number }).statusCode;
    if (!status || status < 400 || status >= 500) {
      request.log.error({ err: error }, "unexpected error");
      return reply.code(500).send({ statusCode: 500, code: `${options.codePrefix}_INTERNAL`, error: "internal error" });
    }
    const code = (error as { code?: string }).code ?? `${options.codePrefix}_BAD_REQUEST`;
    options.onRejected?.(request.routeOptions.url ?? "", code);
    return reply.code(status).send({ statusCode: status, code, error: (error as Error).message });
  });
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
