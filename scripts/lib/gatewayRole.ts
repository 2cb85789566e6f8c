/**
 * A whole gateway role (node/roles/gateway, createGateway) without a chain or a daemon: its API app on 127.0.0.1
 * (hosts link there), its front door on a free port, every device admitted, no oracle or billing. Hosts connect
 * with real GatewayLinks (HTTP/2 over the upgraded socket), answering jobs with the caller's handler. For tests
 * (test/node/gatewayConfig.test.ts) and the blocklist benchmark (scripts/bench/control/blocklist.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Counter, Registry } from "prom-client";
import type { LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import type { GatewayConfig, GatewayContext, RoleModule } from "../../node/context";
import { createGateway } from "../../node/roles/gateway";
import { GatewayLink, type JobHandler } from "../../node/roles/host/link";
import { WorkTracker } from "../../node/workTracker";
import { EpochClock } from "../../offchain/common/epochs";
import { createTypedApp, errorHandler } from "../../offchain/common/http";
import { unseal } from "../../offchain/common/seal";
import { initTracing } from "../../offchain/common/tracing";

const CHAIN = 31337;
const silentLog = { info() {}, warn() {}, error() {}, debug() {}, child: () => silentLog } as never;

async function waitUntil(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  for (const until = Date.now() + timeoutMs; Date.now() < until;) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface GatewayRole {
  role: RoleModule;
  account: LocalAccount;
  /** The API port (hosts link here). */
  url: string;
  /** The front door for sites. */
  frontDoor: string;
  registry: Registry;
  /** The role's work in flight and its latency window (what /ready's x-edge-load reports, D71). */
  work: WorkTracker;
  status(): Record<string, unknown> & { hosts: number };
  /** Links a host answering jobs with `handler`; resolves once the gateway routes to it. */
  connectHost(account: LocalAccount, handler: JobHandler, capacity?: number): Promise<GatewayLink>;
  close(): Promise<void>;
}

export async function startGatewayRole(
  options: { key?: `0x${string}`; config?: Partial<GatewayConfig>; log?: GatewayContext["log"] } = {},
): Promise<GatewayRole> {
  const key = options.key ?? `0x${"71".repeat(32)}`;
  const account = privateKeyToAccount(key);
  const dataDir = mkdtempSync(join(tmpdir(), "gateway-role-"));
  const registry = new Registry();
  const ctx: GatewayContext = {
    signer: { account, chainId: CHAIN },
    log: options.log ?? silentLog,
    work: new WorkTracker(),
    metrics: {
      registry,
      jobs: new Counter({ name: "edge_jobs_total", help: "jobs", labelNames: ["outcome"], registers: [registry] }),
    },
    tracing: initTracing({ serviceName: "edge-gateway", env: {} }),
    serving: () => true,
    outgoing: { put() {}, flush: async () => 0, pending: () => [] },
    clock: new EpochClock({ genesis: 0n, duration: 3600n }),
    chainAdmits: () => true,
    stale: () => false,
    contracts: {} as never,
    paymentVault: undefined,
    unseal: (sealed, context) => unseal(key, sealed, context),
  };
  const config: GatewayConfig = {
    dataDir,
    oracle: undefined,
    billing: undefined,
    allowCustomers: [],
    linkPingMs: 1_000,
    listenHost: "127.0.0.1",
    sites: undefined,
    stargates: ["127.0.0.1:1"],
    cdnPort: 0,
    queueMax: 1_000,
    queueWaitMs: 5_000,
    verifyOneIn: 0,
    reportIntervalMs: 60_000,
    usageFlushMs: 60_000,
    creditRefreshMs: 60_000,
    creditMaxStaleMs: 120_000,
    jobTimeoutMs: 5_000,
    maxJobRounds: 1_000,
    certSyncMs: 1_000,
    storageQuotaMb: 256,
    storageRepairGraceMs: 60_000,
    storageRepairMs: 5_000,
    ...options.config,
  };
  const role = createGateway(ctx, config);
  const app = createTypedApp({ logger: false });
  app.setErrorHandler(errorHandler({ codePrefix: "EDGE_NODE" }));
  app.get("/status", async () => ({ device: account.address, roleStatus: role.status() })); // the daemon's, in short
  role.register(app);
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  await role.start();
  const status = () => role.status() as Record<string, unknown> & { hosts: number };
  const links: GatewayLink[] = [];
  return {
    role,
    account,
    url,
    frontDoor: status().frontDoor as string,
    registry,
    work: ctx.work,
    status,
    async connectHost(host, handler, capacity = 4) {
      const link = new GatewayLink(
        { signer: { account: host, chainId: CHAIN }, log: silentLog },
        url,
        { capacity, publicUrl: () => "http://127.0.0.1:9", pingMs: 1_000, minBackoffMs: 20, maxBackoffMs: 200 },
        handler,
      );
      links.push(link);
      const before = status().hosts;
      await link.want();
      await waitUntil(`host ${host.address} routable`, () => status().hosts > before);
      return link;
    },
    async close() {
      await Promise.all(links.map((link) => link.leave()));
      await role.stop();
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
