/** Shared by the service benchmarks: a service's CLI as its own process, polling for a condition, POSTing bodies. */
import autocannon from "autocannon";

import { spawnServe } from "../lib/spawnServe";

/**
 * `<cli> serve <args>` as its own process (see scripts/lib/spawnServe.ts). BENCH_PROFILE_DIR=dir writes the service's
 * CPU profile there (open it in Chrome DevTools).
 */
export function spawnService(cli: string, args: string[], env: Record<string, string>, started: string) {
  const profile = process.env.BENCH_PROFILE_DIR;
  const service = spawnServe(cli, args, env, started, profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : []);
  return { child: service.process, url: service.url };
}

export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 120_000, everyMs = 20) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * POSTs `bodies[from]`, `bodies[from + 1]`, … (`amount` of them) to `url` with autocannon over `connections`
 * connections; counts the replies as "<status> <outcome>", the outcome read from a 200's JSON by `outcome`.
 */
export async function postBodies(
  url: string,
  bodies: readonly string[],
  from: number,
  amount: number,
  connections: number,
  outcome: (json: Record<string, unknown>) => unknown,
): Promise<{ result: autocannon.Result; seconds: number; statuses: Record<string, number> }> {
  const statuses: Record<string, number> = {};
  let next = from;
  const t0 = performance.now();
  const result = await autocannon({
    url,
    method: "POST",
    headers: { "content-type": "application/json" },
    connections,
    pipelining: 1,
    amount,
    requests: [
      {
        setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length] }),
        onResponse: (status: number, body: string) => {
          const key = `${status} ${status === 200 ? outcome(JSON.parse(body)) : body.slice(0, 80)}`;
          statuses[key] = (statuses[key] ?? 0) + 1;
        },
      },
    ],
  });
  return { result, seconds: (performance.now() - t0) / 1000, statuses };
}
