/**
 * The daemon's own routes, whatever its role: /health (the process runs), /ready (200 while serving, else 503
 * with the reason), /status, /metrics (Prometheus text) and POST /admin/drain (bearer token of
 * EDGE_NODE_ADMIN_TOKEN). Errors answer through the one error handler, under EDGE_NODE_* codes.
 */
import type { Registry } from "prom-client";

import { type TypedApp, bearerMatches, errorHandler } from "../offchain/common/http";
import { nodeError } from "./errors";

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
  /** Without one, /admin/drain is disabled. */
  adminToken: string | undefined;
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
    const token = node.adminToken;
    if (!token) throw nodeError("EDGE_NODE_ADMIN_DISABLED", "no admin token is configured (EDGE_NODE_ADMIN_TOKEN)");
    if (!bearerMatches(request.headers.authorization, token)) {
      throw nodeError("EDGE_NODE_UNAUTHORIZED", "a valid bearer token is required");
    }
    return node.drain();
  });
}
