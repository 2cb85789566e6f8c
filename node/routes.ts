/**
 * The daemon's own routes, whatever its role: /health (the process runs), /ready (200 while serving, else 503
 * with the reason; either way with the node's load in x-edge-load, D71), /status, /metrics (Prometheus text), POST /admin/drain (the bearer token of
 * EDGE_NODE_ADMIN_TOKEN, or a Network API token with the scope node:drain: D56), and POST /admin/leave and
 * /admin/join (the same authorisation; a stargate leaves or rejoins its serving group for a rollout, D59; other
 * roles answer 404). Errors answer through the one error handler, under EDGE_NODE_* codes.
 */
import type { FastifyRequest } from "fastify";
import type { Registry } from "prom-client";

import { type TypedApp, bearerMatches, errorHandler } from "../offchain/common/http";
import { nodeError } from "./errors";
import { LOAD_HEADER, type LoadReport, formatLoadHeader } from "./loadReport";
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
  /** The node's load, sent with /ready (x-edge-load, D71) for the stargates' probes; without it, no header. */
  load?(): LoadReport;
  registry: Registry;
  /** Without one (and without `tokens`), /admin/drain is disabled. */
  adminToken: string | undefined;
  /** Checks Network API tokens (node:drain); without it only the admin token drains. */
  tokens?: Pick<TokenVerifier, "verify">;
  drain(): Promise<DrainReply>;
  /** The role's group membership (stargates, D59); without them /admin/leave and /admin/join answer 404. */
  leaveGroup?(): Promise<Record<string, unknown>>;
  joinGroup?(): Promise<Record<string, unknown>>;
}

export function registerNodeRoutes(app: TypedApp, node: NodeRoutesSource): void {
  app.setErrorHandler(errorHandler({ codePrefix: "EDGE_NODE" }));
  app.get("/health", async () => ({ ok: true }));
  app.get("/ready", async (_request, reply) => {
    if (node.load) reply.header(LOAD_HEADER, formatLoadHeader(node.load()));
    if (node.serving()) return { ready: true };
    return reply.code(503).send({ ready: false, reason: node.notServingReason() });
  });
  app.get("/status", async () => node.status());
  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", node.registry.contentType);
    return node.registry.metrics();
  });
  /** Admin token, or a Network API token with node:drain (D56); else 401/403. */
  const authorize = async (request: FastifyRequest) => {
    const { adminToken, tokens } = node;
    const authorization = request.headers.authorization;
    if (adminToken && bearerMatches(authorization, adminToken)) return;
    // A signed Network API token has a dot before its signature; anything else is a wrong admin token.
    if (tokens && /^Bearer [A-Za-z0-9_-]+\.0x/.test(authorization ?? "")) {
      await tokens.verify(authorization, "node:drain", request.ip);
      return;
    }
    if (!adminToken)
      throw nodeError(
        "EDGE_NODE_ADMIN_DISABLED",
        `no admin token is configured (EDGE_NODE_ADMIN_TOKEN)${tokens ? "; a Network API token with node:drain also drains" : ""}`,
      );
    throw nodeError("EDGE_NODE_UNAUTHORIZED", "a valid bearer token is required");
  };
  app.post("/admin/drain", async (request) => {
    await authorize(request);
    return node.drain();
  });
  for (const [path, action] of [
    ["/admin/leave", "leaveGroup"],
    ["/admin/join", "joinGroup"],
  ] as const)
    app.post(path, async (request) => {
      await authorize(request);
      const run = node[action];
      if (!run)
        throw nodeError("EDGE_NODE_NO_GROUP", `this node has no serving group to leave or join: only stargates do`);
      return run.call(node);
    });
}
