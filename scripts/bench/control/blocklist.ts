/**
 * blocklist.p99.ms (issue 17 Deliver 5, D54): from the Network API call that adds a blocklist entry
 * (`POST /api/blocklist` with a `blocklist:write` token, on a stargate with the configuration key) to its
 * enforcement at every gateway: each gateway's front door is polled from the blocked address (a 127.x loopback
 * source address per trial) until it answers 403 EDGE_NODE_BLOCKED; a trial's figure is its slowest gateway.
 *
 * Everything is real and in one process: the Hardhat network over JSON-RPC with ConfigRegistry (version 1
 * anchored on-chain), the stargate's configuration plane (store, gRPC server, authority signing deltas) and its
 * Network API over HTTP, and `gateways` whole gateway roles, each with the daemon's configuration subscriber (gRPC,
 * every snapshot checked against the chain, every delta's signer checked against ConfigRegistry's role).
 *
 * Standalone: npx hardhat run scripts/bench/control/blocklist.ts (BENCH_GATEWAYS, BENCH_TRIALS).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre from "hardhat";
import { JsonRpcServer } from "hardhat/internal/hardhat-network/jsonrpc/server";
import { Registry } from "prom-client";
import { Agent } from "undici";
import { type Address, type Hex, createPublicClient, createWalletClient, http } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { hardhat } from "../../lib/hardhatChain";

import { ConfigSubscriber } from "../../../node/configSubscriber";
import type { StargateContext } from "../../../node/context";
import { NetworkApi } from "../../../node/roles/stargate/api";
import { registerApiRoutes } from "../../../node/roles/stargate/apiRoutes";
import { createConfigPlane } from "../../../node/roles/stargate/configPlane";
import { ConfigAnchor, anchorVersion } from "../../../offchain/common/configAnchor";
import { createTypedApp, errorHandler } from "../../../offchain/common/http";
import { documentHash, emptyConfig, encodeDocument, issueToken } from "../../../offchain/common/protocol";
import { type GatewayRole, startGatewayRole } from "../../lib/gatewayRole";

const CHAIN = 31337;
const silentLog = { info() {}, warn() {}, error() {}, debug() {}, child: () => silentLog } as never;

export interface BlocklistRig {
  gateways: GatewayRole[];
  /** Adds `ipRange` through the Network API; resolves with its answer's status. */
  block(ipRange: string): Promise<number>;
  close(): Promise<void>;
}

/** The chain, one stargate (authority, API) and `gateways` subscribed gateways, version 1 applied at each. */
export async function startBlocklistRig({ gateways = 2 } = {}): Promise<BlocklistRig> {
  const closers: Array<() => Promise<unknown> | unknown> = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer();
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), "bench-blocklist-"));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const rpcServer = new JsonRpcServer({ hostname: "127.0.0.1", port: 0, provider: hre.network.provider });
    const { port } = await rpcServer.listen();
    closers.push(() => rpcServer.close());
    const rpc = `http://127.0.0.1:${port}`;
    const client = createPublicClient({ chain: hardhat, transport: http(rpc, { retryCount: 0 }) });
    const configKey = generatePrivateKey();
    const publisher = privateKeyToAccount(configKey);
    const [admin] = await hre.ethers.getSigners();
    const contract = await hre.ethers.deployContract("ConfigRegistry", [admin.address, 0n, publisher.address]);
    const registry = (await contract.getAddress()) as Address;
    await hre.network.provider.send("hardhat_setBalance", [publisher.address, "0xde0b6b3a7640000"]);

    const stargate = privateKeyToAccount(generatePrivateKey());
    const gatewayKeys = Array.from({ length: gateways }, () => generatePrivateKey());
    const admitted = new Set([stargate.address, ...gatewayKeys.map((k) => privateKeyToAccount(k).address)]);
    const ctx = {
      signer: { account: stargate, chainId: CHAIN },
      log: silentLog,
      metrics: { registry: new Registry() },
      chainAdmits: (device: string) => admitted.has(device as Address),
      contracts: client,
      configRegistry: registry,
      rpc,
    } as unknown as StargateContext;
    const plane = createConfigPlane(ctx, {
      dataDir: dir,
      listenHost: "127.0.0.1",
      grpcPort: 0,
      configKey,
      anchorIntervalMs: 3_600_000, // deltas only while measuring: enforcement never waits for a block
      stargates: [],
      publicUrl: "http://127.0.0.1:1",
    });
    await plane.start();
    closers.push(() => plane.stop());
    const app = createTypedApp({ logger: false });
    app.setErrorHandler(errorHandler({ codePrefix: "EDGE_NODE" }));
    plane.register(app);
    const api = new NetworkApi({
      ctx,
      users: undefined,
      tokenTtlMs: 3_600_000,
      peers: [],
      publicUrl: () => "http://127.0.0.1:1",
      authority: () => plane.authority,
      configSigner: () => publisher,
      anchor: plane.anchor,
      effectiveConfig: () => plane.effectiveConfig(),
    });
    registerApiRoutes(app, api);
    const apiUrl = await app.listen({ host: "127.0.0.1", port: 0 });
    closers.push(() => app.close());

    // Version 1, anchored on-chain as config:publish does, then uploaded to the stargate.
    const bytes = encodeDocument(emptyConfig(1));
    const wallet = createWalletClient({ account: publisher, chain: hardhat, transport: http(rpc) });
    await anchorVersion(wallet, client, registry, 1, documentHash(bytes));
    const upload = await fetch(`${apiUrl}/config/versions`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: bytes,
    });
    if (upload.status !== 200) throw new Error(`upload: ${upload.status} ${await upload.text()}`);

    const target = `127.0.0.1:${plane.server.boundPort}`;
    const roles: GatewayRole[] = [];
    for (const key of gatewayKeys) {
      const role = await startGatewayRole({ key });
      closers.push(() => role.close());
      const subscriber = new ConfigSubscriber(
        { signer: { account: role.account, chainId: CHAIN }, log: silentLog },
        {
          role: "gateway",
          url: () => role.url,
          stargates: [target],
          anchor: new ConfigAnchor({ client, address: registry }),
          isStargate: (address) => address === stargate.address,
          apply: (config) => role.role.applyConfig!(config),
          applyCatalogue: (catalogue) => role.role.applyCatalogue!(catalogue),
        },
      );
      await subscriber.start();
      closers.push(() => subscriber.stop());
      roles.push(role);
    }
    for (const role of roles) await until(() => (role.status().configuration as { version?: number })?.version === 1);

    // blocklist:write is privileged: only the configuration key (DELTA_SIGNER_ROLE) signs it (R17-1).
    const token = await issueToken(publisher, CHAIN, {
      id: `0x${randomBytes(32).toString("hex")}` as Hex,
      subject: "bench",
      scopes: ["blocklist:write"],
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
    });
    return {
      gateways: roles,
      async block(ipRange) {
        const reply = await fetch(`${apiUrl}/api/blocklist`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify({ ipRange }),
        });
        await reply.arrayBuffer();
        return reply.status;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !check(); await new Promise((r) => setTimeout(r, 5)))
    if (Date.now() > end) throw new Error("timed out waiting for the gateways' first configuration");
}

/**
 * Polls `frontDoor` from `from` until it answers 403 EDGE_NODE_BLOCKED; resolves with when (performance.now()).
 * Rejects after `timeoutMs`.
 */
export async function enforcedAt(frontDoor: string, from: string, timeoutMs = 5_000): Promise<number> {
  const agent = new Agent({ localAddress: from });
  try {
    for (const end = performance.now() + timeoutMs; performance.now() < end;) {
      const reply = await agent.request({ origin: frontDoor, path: "/", method: "GET", headers: { host: "any.test" } });
      const at = performance.now();
      const body = await reply.body.text();
      if (reply.statusCode === 403 && body.includes("EDGE_NODE_BLOCKED")) return at;
      await new Promise((r) => setTimeout(r, 1));
    }
    throw new Error(`${frontDoor} did not block ${from} within ${timeoutMs} ms`);
  } finally {
    await agent.close();
  }
}

/** A loopback address for trial `i` (127.0.0.1 is never one). */
export const trialAddress = (i: number) => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;

/** Times from the API call to enforcement at every gateway (the slowest of them), per trial (ms). */
export async function runTrials(rig: BlocklistRig, trials: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < trials; i++) {
    const from = trialAddress(i);
    const start = performance.now();
    const [status, ...ats] = await Promise.all([
      rig.block(`${from}/32`),
      ...rig.gateways.map((g) => enforcedAt(g.frontDoor, from)),
    ]);
    if (status !== 200) throw new Error(`POST /api/blocklist answered ${status}`);
    times.push(Math.max(...ats) - start);
  }
  return times;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
const round = (ms: number) => Math.round(ms * 100) / 100;

export async function measureBlocklist({ gateways = 2, trials = 100 } = {}): Promise<Record<string, number>> {
  const rig = await startBlocklistRig({ gateways });
  try {
    const times = (await runTrials(rig, trials)).sort((a, b) => a - b);
    return {
      "blocklist.p99.ms": round(percentile(times, 0.99)),
      "blocklist.p50.ms": round(percentile(times, 0.5)),
      "blocklist.max.ms": round(times[times.length - 1]),
      "blocklist.gateways": gateways,
      "blocklist.trials": trials,
    };
  } finally {
    await rig.close();
  }
}

// Run as a script (hardhat run names this file), not when imported (scripts/bench/control.ts, the test).
if (process.argv.some((arg) => arg.endsWith(join("control", "blocklist.ts")))) {
  measureBlocklist({
    gateways: Number(process.env.BENCH_GATEWAYS ?? 2),
    trials: Number(process.env.BENCH_TRIALS ?? 20),
  })
    .then((figures) => {
      console.log(JSON.stringify(figures, null, 2));
      process.exit(0);
    })
    .catch((error) => {
      console.error(error);
      process.exit(1);
    });
}
