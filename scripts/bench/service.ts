/** Shared by the service benchmarks: a service's CLI as its own process, and polling for a condition. */
import { spawnServe } from "../../test/shared/spawn";

/**
 * `<cli> serve <args>` as its own process (see test/shared/spawn.ts). BENCH_PROFILE_DIR=dir writes the service's CPU
 * profile there (open it in Chrome DevTools).
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
