/**
 * What the rollout reads from the network (docs/rollout.md): nodes' HTTP APIs (/status, /ready, /metrics, the
 * stargates' /health/catalogue) and real DNS queries to the plan's servers (node:dns Resolver, no cache: every
 * lookup is a fresh query).
 */
import { Resolver } from "node:dns/promises";

/** The numbers a node's /metrics text holds for `name` (every label set summed), or undefined when absent. */
export function metricSum(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const value = Number(rest.slice(rest.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

export interface HttpAnswer {
  status: number;
  body: unknown;
  text: string;
}

/** One HTTP call with a timeout; the body parsed as JSON when it is. */
export async function http(
  url: string,
  init: { method?: string; token?: string; body?: unknown; timeoutMs: number },
): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, {
    method: init.method ?? "GET",
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(init.timeoutMs),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the text is the body
  }
  return { status: response.status, body, text };
}

/** A failed answer's message: its error code and message when it has them. */
export function describe(answer: HttpAnswer): string {
  const body = answer.body as { code?: unknown; error?: unknown } | null;
  if (body && typeof body === "object" && (body.code || body.error))
    return `${answer.status} ${String(body.code ?? "")} ${String(body.error ?? "")}`.trim();
  return `${answer.status} ${answer.text.slice(0, 200)}`;
}

/** The IPv4 and IPv6 addresses `server` ("ip:port") answers for `name`; [] for NXDOMAIN, NODATA or SERVFAIL. */
export async function resolveAddresses(server: string, name: string, timeoutMs: number): Promise<string[]> {
  const resolver = new Resolver({ timeout: Math.max(100, Math.min(timeoutMs, 5_000)), tries: 2 });
  resolver.setServers([server]);
  const empty = (error: NodeJS.ErrnoException) => {
    if (["ENOTFOUND", "ENODATA", "ESERVFAIL", "NOTFOUND", "NODATA", "SERVFAIL"].includes(error.code ?? "")) return [];
    throw new Error(`DNS ${server} for ${name}: ${error.code ?? error.message}`);
  };
  const [v4, v6] = await Promise.all([resolver.resolve4(name).catch(empty), resolver.resolve6(name).catch(empty)]);
  return [...v4, ...v6];
}
