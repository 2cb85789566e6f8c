/**
 * The daemon's own routes, whatever its role: /health (the process runs), /ready (200 while serving, else 503
 * with the reason), /status, /metrics (Prometheus text) and POST /admin/drain (the bearer token of
 * EDGE_NODE_ADMIN_TOKEN, or a Network API token with the scope node:drain: D56). Errors answer through the one
 * error handler, under EDGE_NODE_* codes.
 */
import type { Registry } from "prom-client";

import { type TypedApp, bearerMatches, errorHandler } from "../offchain/common/http";
import { nodeError } from "./errors";
import type { TokenVerifier } from "./tokens";

export interface DrainReply {
  drained: true;
  inFlight: number;
}

export interface NodeRoutesSource {
  serving(): boolean;
  /** Why the node does not serve ("draining", or the admission's reason). */
  notServingReason(): string;
  status(): Record<string, unknown>;
  registry: Registry;
  /** Without one (and without `tokens`), /admin/drain is disabled. */
  adminToken: string | undefined;
  /** Checks Network API tokens (node:drain); without it only the admin token drains. */
  tokens?: Pick<TokenVerifier, "verify">;
  drain(): Promise<DrainReply>;
}

export function registerNodeRoutes(app: TypedApp, node: NodeRoutesSource): void {
  app.setErrorHandler(errorHandler({ codePrefix: "EDGE_NODE" }));
  app.get("/health", async () => ({ ok: true }));
  app.get("/ready", async (_request, reply) => {
    if (node.serving()) return { ready: true };
    return reply.code(503).send({ ready: false, reason: node.notServingReason() });
  });
  app.get("/status", async () => node.status());
  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", node.registry.contentType);
    return node.registry.metrics();
  });
  app.post("/admin/drain", async (request) => {
    const { adminToken, tokens } = node;
    const authorization = request.headers.authorization;
    if (adminToken && bearerMatches(authorization, adminToken)) return node.drain();
    // A signed Network API token has a dot before its signature; anything else is a wrong admin token.
    if (tokens && /^Bearer [A-Za-z0-9_-]+\.0x/.test(authorization ?? "")) {
      await tokens.verify(authorization, "node:drain", request.ip);
      return node.drain();
    }
    if (!adminToken)
      throw nodeError(
        "EDGE_NODE_ADMIN_DISABLED",
        `no admin token is configured (EDGE_NODE_ADMIN_TOKEN)${tokens ? "; a Network API token with node:drain also drains" : ""}`,
      );
    throw nodeError("EDGE_NODE_UNAUTHORIZED", "a valid bearer token is required");
  });
}
