/**
 * The rollout-under-load network (issue 18 Deliver 4, D60), used by test/scripts/rollout.test.ts and bench:dns:
 *
 * - the Hardhat network in this process over JSON-RPC, the protocol deployed (deployProtocol) with ConfigRegistry's
 *   publisher = the configuration key, 2 stargates, 2 gateways and 2 hosts staked;
 * - the anycast router (anycast.ts) standing in for BGP;
 * - stargate-1 (EDGE_NODE_CONFIG_KEY, the Network API's users file) and stargate-2 (relaying stargate-1's stream
 *   with --stargates), each the other's --peers, both with --dns-port (their own port on 127.0.0.1) and
 *   --dns-announce to the router;
 * - gateway-1 and gateway-2 listening on 127.0.0.11 and 127.0.0.12 with the same --cdn-port, subscribed to both
 *   stargates (--stargates, failover); host-1 links to gateway-1, host-2 to gateway-2;
 * - an origin (node:http, in this process) and configuration version 1 naming the site, anchored and uploaded as
 *   config:publish does.
 *
 * Every daemon is its own process (`node/cli.ts`, as `npm run edge-node` runs it), so a node's update is a real
 * restart: SIGTERM (the daemon drains, leaves and flushes), then the same command again (`restart`).
 *
 * With `certs` (issue 19, test/scripts/certsPebble.test.ts) the certificate service runs too (offchain/certs, its own
 * process on the chain) and every gateway gets --certs and an HTTPS front door (--tls-port, shared like --cdn-port);
 * `prepare` runs once ports are chosen (Pebble starts there) and `gatewayArgs` adds flags per gateway.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type Server, createServer } from "node:http";
import { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre from "hardhat";
import { JsonRpcServer } from "hardhat/internal/hardhat-network/jsonrpc/server";
import { type Address, type Hex, createPublicClient, createWalletClient, http, keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { anchorVersion } from "../../offchain/common/configAnchor";
import { DEVICE_CONSENT_TYPES } from "../../offchain/common/consent";
import { documentHash, emptyConfig, encodeDocument } from "../../offchain/common/protocol";
import { hashPassword } from "../../node/roles/stargate/passwords";
import { deployProtocol } from "../deploy/deployProtocol";
import { uploadTo } from "../tasks/configLib";
import { type AnycastRouter, startAnycastRouter } from "./anycast";
import { hardhat } from "./hardhatChain";
import { Daemon, freePort, sharedPort, waitUntil } from "./netDaemon";

export { waitUntil };

const TOKEN = 10n ** 18n;
const CERTS_CLI = "offchain/certs/cli.ts";
export const SITE = "shop.rollout.test";
export const ADMIN_TOKEN = "rollout-net-admin-token";
export const ROLLOUT_USER = "ops";
const key = (name: string) => keccak256(toHex(`edge rollout net ${name}`));
const CONFIG_KEY = key("configuration");

export interface NetNode {
  name: string;
  role: "stargate" | "gateway" | "host";
  address: Address;
  /** The node's API (and, for gateways, the IP DNS names). */
  url: string;
  /** Stargates: their DNS port (127.0.0.1) and configuration stream port. */
  dnsPort?: number;
  grpcPort?: number;
  /** Times it was (re)started. */
  starts: number;
}

export interface RolloutNetOptions {
  /** The origin's delay before it answers (ms, default 5). */
  originLatencyMs?: number;
  /**
   * Called once every port is chosen, before any daemon starts: e.g. starts Pebble with its httpPort = `cdnPort`,
   * resolving through stargate-1's DNS (`dnsServers[0]`).
   */
  prepare?: (net: { cdnPort: number; tlsPort?: number; dnsServers: string[]; dir: string }) => Promise<void>;
  /**
   * Runs the certificate service (offchain/certs/cli.ts `serve`, its own process, as `npm run certs` does) on the
   * chain, and gives every gateway `--certs`, `--tls-port` (shared, like the front door) and `--cert-sync-ms`.
   * `args()` adds flags to the service's command line (asked after `prepare`).
   */
  certs?: { args?: () => string[]; certSyncMs?: number };
  /** More flags for a gateway's command line (asked after `prepare`), e.g. --acme-directory for one of them. */
  gatewayArgs?: (name: string) => string[];
}

export interface RolloutNet {
  router: AnycastRouter;
  site: string;
  /** Every gateway's front door port (on its own address). */
  cdnPort: number;
  nodes: NetNode[];
  /** stargate-1's URL: the Network API and the configuration authority. */
  apiUrl: string;
  password: string;
  dir: string;
  /** With `certs`: every gateway's HTTPS front door port (on its own address) and the certificate service's URL. */
  tlsPort?: number;
  certsUrl?: string;
  /** A node's device key (signing as a gateway in tests). */
  deviceKey(name: string): Hex;
  /**
   * Stops the node's process (SIGTERM, its graceful stop) and starts it again; resolves once it is /ready.
   * `extraArgs` replace the flags the node's command line had from `gatewayArgs` (or add them).
   */
  restart(name: string, extraArgs?: string[]): Promise<void>;
  /** The node's log so far (its process's output), to explain a failure. */
  logOf(name: string): string;
  close(): Promise<void>;
}

/**
 * The chain (bench:certs uses it too): the protocol deployed, ConfigRegistry's publisher the configuration key,
 * every device staked.
 */
export async function startChain(dir: string, devices: Array<{ role: NetNode["role"]; key: Hex }>) {
  const rpcServer = new JsonRpcServer({ hostname: "127.0.0.1", port: 0, provider: hre.network.provider });
  const { port } = await rpcServer.listen();
  const rpc = `http://127.0.0.1:${port}`;
  const publisher = privateKeyToAccount(CONFIG_KEY);
  const { book, file } = await deployProtocol(hre, {
    parameters: {
      ignition: {
        StakeManager: {
          adminDelay: 0n,
          typeParams: [
            { minimumStake: 100n * TOKEN, unbondingPeriod: 60n },
            { minimumStake: 25_000n * TOKEN, unbondingPeriod: 60n },
            { minimumStake: 250_000n * TOKEN, unbondingPeriod: 60n },
          ],
        },
        RewardsManager: { epochDuration: 60n },
        ConfigRegistry: { adminDelay: 0n, publisher: publisher.address },
      },
      roles: {},
    } as never,
    addressesDir: join(dir, "book"),
  });
  await hre.network.provider.send("hardhat_setBalance", [publisher.address, "0xde0b6b3a7640000"]);
  const [deployer] = await hre.ethers.getSigners();
  const address = (name: "StakeManager" | "EdgeToken" | "ConfigRegistry") => book.contracts[name]!.address as Address;
  const staking = await hre.ethers.getContractAt("StakeManager", address("StakeManager"));
  const token = await hre.ethers.getContractAt("EdgeToken", address("EdgeToken"));
  await (await token.connect(deployer).approve(address("StakeManager"), 2n ** 255n)).wait();
  // The chain's clock, not the wall clock: the in-process network is shared with earlier tests, which move it on.
  const deadline = BigInt((await hre.ethers.provider.getBlock("latest"))!.timestamp + 3600);
  const types = { host: [0, 200n], gateway: [1, 25_000n], stargate: [2, 250_000n] } as const;
  for (const device of devices) {
    const account = privateKeyToAccount(device.key);
    const signature = await account.signTypedData({
      domain: { name: "Edge StakeManager", version: "1", chainId: 31337, verifyingContract: address("StakeManager") },
      types: DEVICE_CONSENT_TYPES,
      primaryType: "DeviceConsent",
      message: {
        device: account.address,
        owner: deployer.address as Address,
        nonce: await staking.deviceNonce(account.address),
        deadline,
      },
    });
    const [type, amount] = types[device.role];
    await (
      await staking
        .connect(deployer)
        .stakeAndAssign(type, amount * TOKEN, { device: account.address, deadline, signature })
    ).wait();
  }
  return { rpc, rpcServer, bookFile: file, registry: address("ConfigRegistry") };
}

/** Anchors version 1 (the site, nothing else) with the configuration key and uploads it to `stargateUrl`. */
async function publishVersion1(rpc: string, registry: Address, stargateUrl: string, origin: string) {
  const doc = emptyConfig(1);
  const owner = privateKeyToAccount(key("customer")).address;
  doc.sites = [{ id: "shop", hostname: SITE, owner, origin, cache: { defaultTtlSeconds: 0 } }];
  const bytes = encodeDocument(doc);
  const client = createPublicClient({ chain: hardhat, transport: http(rpc) });
  const wallet = createWalletClient({ account: privateKeyToAccount(CONFIG_KEY), chain: hardhat, transport: http(rpc) });
  await anchorVersion(wallet, client, registry, 1, documentHash(bytes));
  const upload = await waitUntil("version 1 uploaded to stargate-1", async () => {
    const result = await uploadTo(stargateUrl, bytes);
    return result.outcome === "failed" && result.detail.startsWith("unreachable") ? undefined : result;
  });
  if (upload.outcome === "failed") throw new Error(`uploading version 1: ${upload.detail}`);
}

/** The origin: every path answers 200 with a small body after `latencyMs`. */
async function startOrigin(latencyMs: number): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    setTimeout(() => {
      response.writeHead(200, { "content-type": "text/plain", "cache-control": "no-store" });
      response.end(`origin ${request.url}\n`);
    }, latencyMs);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function nodeArgs(node: NetNode, ctx: NetContext): string[] {
  const common = ["--role", node.role, "--rpc", ctx.rpc, "--addresses", ctx.bookFile, "--confirmations", "0"];
  common.push("--poll-interval-ms", "250", "--data-dir", join(ctx.dir, node.name), "--log-level", "warn");
  common.push("--listen-host", new URL(node.url).hostname, "--port", new URL(node.url).port);
  const stargates = ctx.stargates.map((s) => `127.0.0.1:${s.grpcPort}`);
  if (node.role === "stargate") {
    const peers = ctx.stargates.filter((s) => s !== node).map((s) => s.url);
    const first = node === ctx.stargates[0];
    return [
      ...common,
      ...["--grpc-port", String(node.grpcPort), "--dns-port", String(node.dnsPort), "--dns-announce", ctx.router.url],
      ...["--health-interval-ms", "1000", "--anchor-interval-ms", "5000", ...peers.flatMap((p) => ["--peers", p])],
      ...(first ? ["--users", ctx.users] : ["--stargates", stargates[0]]),
    ];
  }
  if (node.role === "gateway")
    return [
      ...common,
      ...["--cdn-port", String(ctx.cdnPort), ...stargates.flatMap((s) => ["--stargates", s]), ...ctx.certFlags],
    ];
  const gateway = ctx.gateways[Number(node.name.split("-")[1]) - 1];
  return [
    ...common,
    ...["--gateway", gateway.url, "--allow-private-origins", "true", "--capacity", "16", "--link-ping-ms", "500"],
    ...stargates.flatMap((s) => ["--stargates", s]),
  ];
}

interface NetContext {
  dir: string;
  rpc: string;
  bookFile: string;
  users: string;
  cdnPort: number;
  router: AnycastRouter;
  stargates: NetNode[];
  gateways: NetNode[];
  /** With the certificate service: the flags every gateway gets for it. */
  certFlags: string[];
}

/** The certificate service on the chain, its own process (`npm run certs -- serve`); resolves once it answers. */
async function startCertsService(ctx: NetContext, daemons: Map<string, Daemon>, extra: string[]): Promise<string> {
  const url = `http://127.0.0.1:${await freePort()}`;
  const dir = join(ctx.dir, "certs");
  mkdirSync(dir, { recursive: true });
  const args = ["serve", "--rpc", ctx.rpc, "--addresses", ctx.bookFile, "--confirmations", "0"];
  args.push("--poll-interval-ms", "250", "--listen-host", "127.0.0.1", "--port", new URL(url).port);
  args.push("--db", join(dir, "certs.db"), "--data-key-file", join(dir, "data.key"), "--log-level", "warn");
  const node = { name: "certs", url, starts: 0 };
  const service = new Daemon(node, [...args, ...extra], {}, join(ctx.dir, "logs", "certs.log"), CERTS_CLI, "/health");
  daemons.set("certs", service);
  service.start();
  await service.ready();
  return url;
}

export async function startRolloutNet(options: RolloutNetOptions = {}): Promise<RolloutNet> {
  const dir = mkdtempSync(join(tmpdir(), "rollout-net-"));
  const closers: Array<() => Promise<unknown> | unknown> = [() => rmSync(dir, { recursive: true, force: true })];
  const daemons = new Map<string, Daemon>();
  const close = async () => {
    await Promise.all([...daemons.values()].map((d) => d.stop()));
    for (const closer of closers.reverse()) await closer();
  };
  try {
    const nodes: NetNode[] = [];
    const make = async (name: string, role: NetNode["role"], host: string, extra: Partial<NetNode> = {}) => {
      const node: NetNode = {
        name,
        role,
        address: privateKeyToAccount(key(name)).address,
        url: `http://${host}:${await freePort(host)}`,
        starts: 0,
        ...extra,
      };
      nodes.push(node);
      return node;
    };
    for (const n of [1, 2])
      await make(`stargate-${n}`, "stargate", "127.0.0.1", { dnsPort: await freePort(), grpcPort: await freePort() });
    for (const n of [1, 2]) await make(`gateway-${n}`, "gateway", `127.0.0.${10 + n}`);
    for (const n of [1, 2]) await make(`host-${n}`, "host", "127.0.0.1");
    const chain = await startChain(
      dir,
      nodes.map((n) => ({ role: n.role, key: key(n.name) })),
    );
    closers.push(() => chain.rpcServer.close());
    const router = await startAnycastRouter();
    closers.push(() => router.close());
    const origin = await startOrigin(options.originLatencyMs ?? 5);
    closers.push(() => new Promise((resolve) => origin.server.close(resolve)));
    const password = `rollout-${Math.random().toString(36).slice(2)}`;
    const users = join(dir, "users.json");
    const user = { name: ROLLOUT_USER, passwordHash: await hashPassword(password), scopes: ["node:drain"] };
    writeFileSync(users, JSON.stringify({ users: [user] }));
    // A shared front door port on every gateway's own address: one free on both (and the HTTPS one likewise).
    const gatewayHosts = ["127.0.0.11", "127.0.0.12"];
    const cdnPort = await sharedPort(gatewayHosts);
    let tlsPort: number | undefined;
    while (options.certs && (tlsPort === undefined || tlsPort === cdnPort)) tlsPort = await sharedPort(gatewayHosts);
    const ctx: NetContext = {
      dir,
      rpc: chain.rpc,
      bookFile: chain.bookFile,
      users,
      cdnPort,
      router,
      stargates: nodes.filter((n) => n.role === "stargate"),
      gateways: nodes.filter((n) => n.role === "gateway"),
      certFlags: [],
    };
    mkdirSync(join(dir, "logs"));
    const dnsServers = ctx.stargates.map((s) => `127.0.0.1:${s.dnsPort}`);
    await options.prepare?.({ cdnPort, tlsPort, dnsServers, dir });
    let certsUrl: string | undefined;
    if (options.certs) {
      certsUrl = await startCertsService(ctx, daemons, options.certs.args?.() ?? []);
      ctx.certFlags = ["--certs", certsUrl, "--tls-port", String(tlsPort)];
      ctx.certFlags.push("--cert-sync-ms", String(options.certs.certSyncMs ?? 500));
    }
    const baseArgs = new Map<string, string[]>();
    for (const node of nodes) {
      const env: Record<string, string> = { EDGE_NODE_DEVICE_KEY: key(node.name), EDGE_NODE_ADMIN_TOKEN: ADMIN_TOKEN };
      if (node.name === "stargate-1") env.EDGE_NODE_CONFIG_KEY = CONFIG_KEY;
      baseArgs.set(node.name, nodeArgs(node, ctx));
      const args = [
        ...baseArgs.get(node.name)!,
        ...(node.role === "gateway" ? (options.gatewayArgs?.(node.name) ?? []) : []),
      ];
      daemons.set(node.name, new Daemon(node, args, env, join(dir, "logs", `${node.name}.log`)));
    }
    const daemon = (name: string) => daemons.get(name)!;
    daemon("stargate-1").start();
    await waitUntil("stargate-1's API", async () => (await fetch(`${ctx.stargates[0].url}/health`)).ok, 240_000);
    await publishVersion1(chain.rpc, chain.registry, ctx.stargates[0].url, origin.url);
    for (const node of nodes.slice(1)) daemon(node.name).start();
    for (const node of nodes) await daemon(node.name).ready();
    await waitUntil("both stargates announced to the router", async () => router.members().length === 2, 120_000);
    return {
      router,
      site: SITE,
      cdnPort,
      tlsPort,
      certsUrl,
      nodes,
      apiUrl: ctx.stargates[0].url,
      password,
      dir,
      deviceKey: key,
      async restart(name, extraArgs) {
        await daemon(name).stop();
        if (extraArgs) daemon(name).args = [...baseArgs.get(name)!, ...extraArgs];
        daemon(name).start();
        await daemon(name).ready();
        // A restarted gateway is /ready before its host has linked again (hosts notice on their next link ping):
        // until then it answers the site with 503. The update is done once it routes to a host again.
        const node = nodes.find((n) => n.name === name)!;
        if (node.role === "gateway")
          await waitUntil(
            `${name} routing to its host`,
            async () => {
              const status = (await (await fetch(`${node.url}/status`)).json()) as { gateway?: { hosts?: number } };
              return (status.gateway?.hosts ?? 0) > 0;
            },
            120_000,
          );
      },
      logOf: (name) => daemon(name).output(),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
