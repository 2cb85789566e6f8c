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
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type Server, createServer } from "node:http";
import { type AddressInfo, createServer as createTcpServer } from "node:net";
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

const ROOT = join(__dirname, "..", "..");
const TOKEN = 10n ** 18n;
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
  /** Stops the node's process (SIGTERM, its graceful stop) and starts it again; resolves once it is /ready. */
  restart(name: string): Promise<void>;
  /** The node's log so far (its process's output), to explain a failure. */
  logOf(name: string): string;
  close(): Promise<void>;
}

/**
 * A port free on `host` below the kernel's ephemeral range (32768 and up here): a daemon restarted on its port must
 * find it free, and an ephemeral port may meanwhile be some outgoing connection's.
 */
async function freePort(host = "127.0.0.1"): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if ((await portFree(host, port)) && (await udpFree(host, port))) return port;
  }
}

async function udpFree(host: string, port: number): Promise<boolean> {
  const socket = createSocket("udp4");
  const ok = await new Promise<boolean>((resolve) => {
    socket.once("error", () => resolve(false));
    socket.bind(port, host, () => resolve(true));
  });
  socket.close();
  return ok;
}

async function portFree(host: string, port: number): Promise<boolean> {
  const server = createTcpServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, host, () => resolve(true));
  });
  if (ok) await new Promise((resolve) => server.close(resolve));
  return ok;
}

export async function waitUntil<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The chain: deployed protocol, configuration key as ConfigRegistry's publisher, every device staked. */
async function startChain(dir: string, devices: Array<{ role: NetNode["role"]; key: Hex }>) {
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

class Daemon {
  child?: ChildProcess;
  exited?: Promise<void>;
  private lines: string[] = [];

  constructor(
    readonly node: NetNode,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    private readonly logFile: string,
  ) {}

  start(): void {
    this.node.starts += 1;
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "node/cli.ts", ...this.args], {
      cwd: ROOT,
      env: { ...process.env, ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out = createWriteStream(this.logFile, { flags: "a" });
    const keep = (chunk: Buffer) => {
      out.write(chunk);
      this.lines.push(...chunk.toString().split("\n").filter(Boolean));
      this.lines.splice(0, Math.max(0, this.lines.length - 300));
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    this.exited = new Promise((resolve) => child.on("exit", () => resolve()));
    this.child = child;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.kill("SIGTERM");
    await this.exited;
    clearTimeout(timer);
  }

  async ready(timeoutMs = 240_000): Promise<void> {
    await waitUntil(
      `${this.node.name} ready`,
      async () => {
        if (this.child?.exitCode !== null) throw new Error(`${this.node.name} exited:\n${this.output()}`);
        return (await fetch(`${this.node.url}/ready`)).status === 200;
      },
      timeoutMs,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${this.output()}`);
    });
  }

  output(): string {
    return this.lines.join("\n");
  }
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
    return [...common, "--cdn-port", String(ctx.cdnPort), ...stargates.flatMap((s) => ["--stargates", s])];
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
}

export async function startRolloutNet({ originLatencyMs = 5 } = {}): Promise<RolloutNet> {
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
    const origin = await startOrigin(originLatencyMs);
    closers.push(() => new Promise((resolve) => origin.server.close(resolve)));
    const password = `rollout-${Math.random().toString(36).slice(2)}`;
    const users = join(dir, "users.json");
    const user = { name: ROLLOUT_USER, passwordHash: await hashPassword(password), scopes: ["node:drain"] };
    writeFileSync(users, JSON.stringify({ users: [user] }));
    // A shared front door port on every gateway's own address: one free on both.
    let cdnPort = await freePort("127.0.0.11");
    while (!(await portFree("127.0.0.12", cdnPort))) cdnPort = await freePort("127.0.0.11");
    const ctx: NetContext = {
      dir,
      rpc: chain.rpc,
      bookFile: chain.bookFile,
      users,
      cdnPort,
      router,
      stargates: nodes.filter((n) => n.role === "stargate"),
      gateways: nodes.filter((n) => n.role === "gateway"),
    };
    mkdirSync(join(dir, "logs"));
    for (const node of nodes) {
      const env: Record<string, string> = { EDGE_NODE_DEVICE_KEY: key(node.name), EDGE_NODE_ADMIN_TOKEN: ADMIN_TOKEN };
      if (node.name === "stargate-1") env.EDGE_NODE_CONFIG_KEY = CONFIG_KEY;
      daemons.set(node.name, new Daemon(node, nodeArgs(node, ctx), env, join(dir, "logs", `${node.name}.log`)));
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
      nodes,
      apiUrl: ctx.stargates[0].url,
      password,
      dir,
      async restart(name) {
        await daemon(name).stop();
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
