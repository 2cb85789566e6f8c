/**
 * Newton's HTTP API: targets (add, list, update, remove), a load plan (start, status, stop), a summary per target,
 * and Prometheus metrics. Every route but /health, /metrics and /docs/json needs the configured bearer token.
 */
import type { FastifyBaseLogger, FastifyRequest } from "fastify";
import { Type } from "@fastify/type-provider-typebox";

import { errorFactory } from "../common/errors";
import { type TypedApp, bearerMatches, createServiceApp } from "../common/http";
import type { NewtonConfig } from "./config";
import { DNS_PROBE_TYPES, parseServer } from "./dnsProbe";
import { LoadRun, type Plan, type Target } from "./engine";
import { NewtonMetrics } from "./metrics";

export const NEWTON_ERRORS = {
  NEWTON_UNAUTHORIZED: 401,
  NEWTON_BAD_TARGET_URL: 400,
  NEWTON_BAD_DNS_SERVER: 400,
  NEWTON_UNKNOWN_TARGET: 404,
  NEWTON_TARGET_EXISTS: 409,
  NEWTON_NO_TARGETS: 409,
  NEWTON_PLAN_RUNNING: 409,
  NEWTON_NO_PLAN: 409,
} as const;

export const newtonError = errorFactory(NEWTON_ERRORS);

/**
 * The target URL as the load engine will parse it (F13): the schema's pattern admits strings that `new URL()`
 * rejects (`http://[`, `http://a:99999`), which used to fail only when a plan started, as a 500.
 */
export function parseTargetUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw newtonError("NEWTON_BAD_TARGET_URL", `not a valid URL: ${JSON.stringify(text.slice(0, 200))}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw newtonError("NEWTON_BAD_TARGET_URL", `the target URL must be http(s), not ${url.protocol}`);
  }
  return url;
}

const Id = Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$" });
/** "address:port" (checked by parseServer: an IP literal). */
const DnsServer = Type.String({ minLength: 3, maxLength: 64 });
// No `default` keywords in the union's branches (ajv ignores them there): toTarget fills method and headers.
const HttpFields = {
  kind: Type.Optional(Type.Literal("http")),
  url: Type.String({ pattern: "^https?://[^\\s]+$", maxLength: 2048 }),
  method: Type.Optional(
    Type.Union(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].map((m) => Type.Literal(m))),
  ),
  headers: Type.Optional(
    Type.Record(Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }), Type.String({ maxLength: 8192 })),
  ),
  body: Type.Optional(Type.String({ maxLength: 1024 * 1024 })),
  /** Resolve the URL's host through these DNS servers (D58). */
  resolve: Type.Optional(
    Type.Object({ servers: Type.Array(DnsServer, { minItems: 1, maxItems: 8 }) }, { additionalProperties: false }),
  ),
};
/** A DNS probe target (D58). */
const DnsFields = {
  kind: Type.Literal("dns"),
  server: DnsServer,
  name: Type.String({ minLength: 1, maxLength: 253, pattern: "^[A-Za-z0-9_.-]+$" }),
  type: Type.Union(DNS_PROBE_TYPES.map((t) => Type.Literal(t))),
};
const closed = { additionalProperties: false } as const;
const TargetBody = Type.Union([
  Type.Object({ id: Type.Optional(Id), ...HttpFields }, closed),
  Type.Object({ id: Type.Optional(Id), ...DnsFields }, closed),
]);
const TargetUpdate = Type.Union([Type.Object(HttpFields, closed), Type.Object(DnsFields, closed)]);

/** A target from the API's body, checked as the engine will use it, with an HTTP target's defaults. */
function toTarget(body: Record<string, unknown>, id: string): Target {
  const { id: _ignored, ...fields } = body;
  if (fields.kind === "dns") {
    dnsServer(fields.server as string);
    return { ...fields, id } as Target;
  }
  parseTargetUrl(fields.url as string);
  for (const server of (fields.resolve as { servers: string[] } | undefined)?.servers ?? []) dnsServer(server);
  return { ...fields, id, method: (fields.method as string) ?? "GET", headers: fields.headers ?? {} } as Target;
}

function dnsServer(text: string): void {
  try {
    parseServer(text);
  } catch (error) {
    throw newtonError("NEWTON_BAD_DNS_SERVER", (error as Error).message);
  }
}
const TargetParams = Type.Object({ id: Id }, { additionalProperties: false });
const PlanBody = Type.Object(
  {
    rate: Type.Number({ exclusiveMinimum: 0, maximum: 100_000 }),
    durationSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 7 * 86_400 }),
    maxConcurrency: Type.Integer({ minimum: 1, maximum: 10_000, default: 256 }),
    timeoutMs: Type.Integer({ minimum: 1, maximum: 600_000, default: 10_000 }),
    targets: Type.Optional(Type.Array(Id, { minItems: 1, uniqueItems: true })),
  },
  { additionalProperties: false },
);
const Auth = { headers: Type.Object({ authorization: Type.Optional(Type.String()) }), security: [{ bearer: [] }] };

export interface NewtonDeps {
  logger?: FastifyBaseLogger;
}

export class NewtonService {
  readonly app: TypedApp;
  readonly metrics = new NewtonMetrics();
  private readonly targets = new Map<string, Target>();
  private run?: LoadRun;
  private nextId = 1;

  constructor(
    private readonly config: NewtonConfig,
    deps: NewtonDeps = {},
  ) {
    this.app = createServiceApp({
      name: "newton",
      codePrefix: "NEWTON",
      logLevel: config.logLevel,
      logger: deps.logger,
      openapi: {
        title: "Newton",
        description: "Open-loop load generation and monitoring of gateways, with Prometheus metrics.",
        bearer: true,
      },
      registry: this.metrics.registry,
      routes: (api) => this.routes(api),
    });
  }

  async start(): Promise<string> {
    const url = await this.app.listen({ host: this.config.listenHost, port: this.config.port });
    this.app.log.info({ url }, "newton started");
    return url;
  }

  async close(): Promise<void> {
    this.run?.stop();
    await this.app.close();
  }

  /** Starts a plan over `targetIds` (all targets by default); resolves once it is under way. */
  startPlan(plan: Plan, targetIds?: string[]): { targets: string[]; plan: Plan } {
    if (this.run?.running) throw newtonError("NEWTON_PLAN_RUNNING", "a plan is running: stop it first");
    const ids = targetIds ?? [...this.targets.keys()];
    for (const id of ids) if (!this.targets.has(id)) throw newtonError("NEWTON_UNKNOWN_TARGET", `no target ${id}`);
    if (ids.length === 0) throw newtonError("NEWTON_NO_TARGETS", "add a target first (POST /targets)");
    const run = new LoadRun(
      ids.map((id) => this.targets.get(id)!),
      plan,
      this.metrics,
    );
    this.run = run;
    this.metrics.running.set(1);
    this.app.log.info({ targets: ids, plan }, "plan started");
    void run.start().then(
      (summary) => {
        if (this.run === run) this.metrics.running.set(0);
        this.app.log.info({ summary }, "plan ended");
      },
      (error: Error) => this.app.log.error({ err: error }, "plan failed"),
    );
    return { targets: ids, plan };
  }

  private authorize(request: FastifyRequest): void {
    if (!bearerMatches(request.headers.authorization, this.config.token)) {
      throw newtonError("NEWTON_UNAUTHORIZED", "missing or wrong bearer token");
    }
  }

  private target(id: string): Target {
    const target = this.targets.get(id);
    if (!target) throw newtonError("NEWTON_UNKNOWN_TARGET", `no target ${id}`);
    return target;
  }

  private routes(app: TypedApp): void {
    app.addHook("onRequest", async (request) => {
      const open = ["/health", "/metrics", "/docs/json"];
      if (!open.includes(request.routeOptions.url ?? "")) this.authorize(request);
    });

    app.get("/targets", { schema: { summary: "The targets", ...Auth } }, async () => ({
      targets: [...this.targets.values()],
    }));

    app.post("/targets", { schema: { summary: "Add a target", body: TargetBody, ...Auth } }, async (request, reply) => {
      const body = request.body;
      let id = body.id;
      if (id === undefined) while (this.targets.has((id = `t${this.nextId++}`)));
      if (this.targets.has(id)) throw newtonError("NEWTON_TARGET_EXISTS", `target ${id} exists: PUT to change it`);
      const target = toTarget(body, id);
      this.targets.set(id, target);
      return reply.code(201).send({ target });
    });

    app.get("/targets/:id", { schema: { summary: "One target", params: TargetParams, ...Auth } }, async (request) => ({
      target: this.target(request.params.id),
    }));

    app.put(
      "/targets/:id",
      {
        schema: {
          summary: "Replace a target (the next plan uses it)",
          params: TargetParams,
          body: TargetUpdate,
          ...Auth,
        },
      },
      async (request) => {
        const { id } = request.params;
        this.target(id);
        const target = toTarget(request.body, id);
        this.targets.set(id, target);
        return { target };
      },
    );

    app.delete(
      "/targets/:id",
      { schema: { summary: "Remove a target", params: TargetParams, ...Auth } },
      async (request, reply) => {
        const { id } = request.params;
        this.target(id);
        this.targets.delete(id);
        return reply.code(204).send();
      },
    );

    app.post("/plan", { schema: { summary: "Start a load plan", body: PlanBody, ...Auth } }, async (request, reply) => {
      const body = request.body;
      const started = this.startPlan(
        {
          rate: body.rate,
          durationMs: body.durationSeconds * 1000,
          maxConcurrency: body.maxConcurrency,
          timeoutMs: body.timeoutMs,
        },
        body.targets,
      );
      return reply.code(202).send(started);
    });

    app.get("/plan", { schema: { summary: "The current or last plan", ...Auth } }, async () => ({
      running: this.run?.running ?? false,
      plan: this.run?.plan ?? null,
      startedAt: this.run ? new Date(this.run.startedAt).toISOString() : null,
    }));

    app.delete("/plan", { schema: { summary: "Stop the running plan", ...Auth } }, async () => {
      if (!this.run?.running) throw newtonError("NEWTON_NO_PLAN", "no plan is running");
      this.run.stop();
      return { stopping: true };
    });

    app.get(
      "/summary",
      { schema: { summary: "Per target: counts and latency, TTFB and lag percentiles", ...Auth } },
      async () => ({
        running: this.run?.running ?? false,
        targets: this.run?.summaries() ?? [],
      }),
    );
  }
}
