/**
 * login.p99.ms (issue 17 benchmark, D56): password logins through a stargate's Network API over HTTP, `concurrency`
 * at once (each its own user and client, so the rate limits stay out of the figure), `rounds` times; the p99 of the
 * time from sending POST /api/login to holding the token. The cost is the default scrypt cost (passwords.ts),
 * named in the result. Runs in one process: the hashes run on libuv's pool, `parallel` (default: the cores less
 * one, at least one: R17-11) at once.
 *
 * Standalone: npx ts-node --transpile-only scripts/bench/control/login.ts [concurrency] [rounds]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { createTypedApp } from "../../../offchain/common/http";
import { NetworkApi } from "../../../node/roles/stargate/api";
import { registerApiRoutes } from "../../../node/roles/stargate/apiRoutes";
import { DEFAULT_COST, describeCost, hashPassword } from "../../../node/roles/stargate/passwords";

export interface LoginFigures {
  "login.p99.ms": number;
  "login.p50.ms": number;
  "login.hashCost": string;
  "login.concurrency": number;
  "login.count": number;
}

export async function measureLogin({ concurrency = 100, rounds = 3 } = {}): Promise<LoginFigures> {
  const dir = mkdtempSync(join(tmpdir(), "bench-login-"));
  const users = await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => ({
      name: `user${i}`,
      passwordHash: await hashPassword(`password-${i}`, DEFAULT_COST),
      scopes: ["blocklist:write"],
    })),
  );
  writeFileSync(join(dir, "users.json"), JSON.stringify({ users }));
  const app = createTypedApp({ logger: false });
  const account = privateKeyToAccount(generatePrivateKey() as Hex);
  const api = new NetworkApi({
    ctx: { signer: { account, chainId: 31337 }, log: app.log, chainAdmits: () => true },
    users: join(dir, "users.json"),
    tokenTtlMs: 600_000,
    peers: [],
    publicUrl: () => "http://127.0.0.1",
    authority: () => undefined,
    configSigner: () => account, // a password login's token is signed by the configuration key (R17-1)
    anchor: undefined,
    effectiveConfig: () => undefined,
    login: { perClientPerMinute: 1_000_000, perNamePerMinute: 1_000_000, maxQueued: concurrency },
  });
  registerApiRoutes(app, api);
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  const times: number[] = [];
  try {
    for (let round = 0; round < rounds; round += 1) {
      await Promise.all(
        users.map(async (_, i) => {
          const start = performance.now();
          const response = await fetch(`${url}/api/login`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ name: `user${i}`, password: `password-${i}` }),
          });
          const body = (await response.json()) as { token?: string };
          if (response.status !== 200 || !body.token)
            throw new Error(`login ${i}: ${response.status} ${JSON.stringify(body)}`);
          times.push(performance.now() - start);
        }),
      );
    }
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => Math.round(times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)]);
  return {
    "login.p99.ms": at(0.99),
    "login.p50.ms": at(0.5),
    "login.hashCost": describeCost(DEFAULT_COST),
    "login.concurrency": concurrency,
    "login.count": times.length,
  };
}

if (require.main === module) {
  const [concurrency, rounds] = process.argv.slice(2).map(Number);
  measureLogin({ concurrency: concurrency || 100, rounds: rounds || 3 }).then(
    (figures) => console.log(JSON.stringify(figures, null, 2)),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
