/**
 * The rollout plan (docs/rollout.md): which nodes to update in which order, where to drain them, which DNS servers
 * and site name to check, how long each wait may take. A TypeBox schema; `parsePlan` fills the defaults and
 * reports every problem with its path (PlanError, exit 2 in the CLI).
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import { Value } from "typebox/value";

import { errorClass } from "../common/errors";

export const PlanError = errorClass("PlanError", "ROLLOUT_PLAN_INVALID");

const URL_PATTERN = "^https?://[^\\s/]+(/[^\\s]*)?$";
const HOST_PORT_PATTERN = "^(\\d{1,3}(\\.\\d{1,3}){3}|\\[[0-9a-fA-F:]+\\]):\\d{1,5}$";
const NAME_PATTERN = "^[A-Za-z0-9._-]+$";
/** What each pattern means, for the problems' messages. */
const PATTERNS: Record<string, string> = {
  [URL_PATTERN]: "an http(s) URL",
  [NAME_PATTERN]: "letters, digits, '.', '_' or '-'",
  [HOST_PORT_PATTERN]: 'an IP literal and a port ("127.0.0.1:53" or "[::1]:53")',
};
const HttpUrl = Type.String({ pattern: URL_PATTERN });
const HostPort = Type.String({ pattern: HOST_PORT_PATTERN });
const Ms = (fallback: number) => Type.Integer({ minimum: 1, maximum: 86_400_000, default: fallback });

export const NodeSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, pattern: NAME_PATTERN }),
    role: Type.Union([Type.Literal("gateway"), Type.Literal("stargate")]),
    /** The node's own HTTP API (/status, /ready, /metrics, /admin/*). */
    url: HttpUrl,
    /** The update action the CLI runs (a shell command); the library takes `update(node)` instead. */
    update: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** A gateway's address in DNS answers; default: the IP literal of its catalogue URL. */
    address: Type.Optional(Type.String({ minLength: 2, maxLength: 45 })),
  },
  { additionalProperties: false },
);

export const PlanSchema = Type.Object(
  {
    /** A stargate's Network API (drain and undrain go there; forwarded to the authority when needed). */
    api: HttpUrl,
    /** Stargates' node URLs whose catalogue must say an updated node is healthy (GET /health/catalogue). */
    stargates: Type.Array(HttpUrl, { minItems: 1, maxItems: 64 }),
    /** DNS servers queried for `site` (each must stop, then start again, returning a drained gateway). */
    dns: Type.Array(HostPort, { maxItems: 64, default: [] }),
    /** A site's hostname the DNS servers answer with the serving gateways. */
    site: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
    nodes: Type.Array(NodeSchema, { minItems: 1, maxItems: 10_000 }),
    /** The window over which a node's request (or DNS query) rate is measured to call its traffic gone (ms). */
    quietMs: Ms(2_000),
    /**
     * The highest rate (requests or DNS queries per second over quietMs) still called "no traffic" (R18-8). 0, the
     * default: the counter unchanged for quietMs.
     */
    maxTrafficPerSecond: Type.Number({ minimum: 0, maximum: 1_000_000, default: 0 }),
    /**
     * Drain a gateway even when it is the last one serving (the API's ?force=true; R18-14): only for a network of one
     * gateway, whose sites then answer SERVFAIL until it is back. Default false: such a drain stops the rollout.
     */
    forceDrain: Type.Boolean({ default: false }),
    /** Hosts a gateway must route to again (edge_node_routable_hosts) before it is put back; 0 for a gateway without. */
    minHosts: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1 }),
    /** How often the waits poll (ms). */
    pollMs: Ms(250),
    timeouts: Type.Object(
      {
        /** The API's drain/undrain, a stargate's leave/join, each HTTP call. */
        request: Ms(10_000),
        /** DNS stops (or starts again) returning a gateway. */
        dns: Ms(30_000),
        /** A gateway's traffic, or a stargate's subscribers and queries, fall to zero. */
        drain: Ms(120_000),
        /** The update action. */
        update: Ms(600_000),
        /** Ready, healthy in the catalogue, back in the group. */
        ready: Ms(120_000),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type Plan = Static<typeof PlanSchema>;
export type PlanNode = Static<typeof NodeSchema>;

/** The plan with its defaults, or a PlanError listing every problem by path. */
export function parsePlan(input: unknown): Plan {
  const plan = Value.Default(PlanSchema, Value.Clone(input)) as Plan;
  const problems = problemsOf(plan);
  if (problems.length === 0) {
    const names = new Set<string>();
    plan.nodes.forEach((node, i) => {
      if (names.has(node.name)) problems.push(`/nodes/${i}/name: "${node.name}" is named twice`);
      names.add(node.name);
    });
    if (plan.nodes.some((n) => n.role === "gateway") && plan.dns.length > 0 && !plan.site)
      problems.push("/site: required when gateways are rolled with dns servers to check");
    const urls: [string, string][] = [
      ["/api", plan.api],
      ...plan.stargates.map((url, i): [string, string] => [`/stargates/${i}`, url]),
      ...plan.nodes.map((node, i): [string, string] => [`/nodes/${i}/url`, node.url]),
    ];
    for (const [path, url] of urls) {
      const problem = plainHttpProblem(url);
      if (problem) problems.push(`${path}: ${problem}`);
    }
  }
  if (problems.length > 0) throw new PlanError(`the plan is invalid:\n  ${[...new Set(problems)].join("\n  ")}`);
  return plan;
}

/**
 * R18-7: tokens travel to these URLs (drain, leave, join), so plain http is refused unless the host is a loopback
 * address (127.0.0.0/8, ::1, localhost), where nothing leaves the machine.
 */
function plainHttpProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL`;
  }
  if (parsed.protocol === "https:") return undefined;
  const host = parsed.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  const loopback = host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  return loopback
    ? undefined
    : `"${url}" must be https: plain http is allowed only to a loopback address (127.0.0.0/8, ::1, localhost), as the rollout's tokens go there`;
}

/** Schema problems, one per path: patterns named, a union's choices listed. */
function problemsOf(plan: unknown): string[] {
  const byPath = new Map<string, string>();
  const choices = new Map<string, unknown[]>();
  for (const e of Value.Errors(PlanSchema, plan) as Iterable<{
    keyword: string;
    instancePath: string;
    params: Record<string, unknown>;
    message: string;
  }>) {
    const path = e.instancePath || "/";
    if (e.keyword === "const") choices.set(path, [...(choices.get(path) ?? []), e.params.allowedValue]);
    else if (e.keyword === "anyOf" && choices.has(path))
      byPath.set(
        path,
        `must be one of ${choices
          .get(path)!
          .map((c) => JSON.stringify(c))
          .join(", ")}`,
      );
    else if (e.keyword === "pattern") byPath.set(path, `must be ${PATTERNS[String(e.params.pattern)] ?? e.message}`);
    else if (!byPath.has(path)) byPath.set(path, e.message);
  }
  return [...byPath].map(([path, message]) => `${path}: ${message}`);
}
