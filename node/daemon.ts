/**
 * The edge-node daemon: one process, one device key, one role. It follows StakeManager through the chain view
 * and decides by itself whether it may serve: admitted -> serve; not admitted -> stop taking work, finish what
 * is in flight, leave. An RPC outage changes nothing (the last decision holds) but is reported loudly once the
 * view is older than the staleness bound.
 */
import { join } from "node:path";
import { type Address, type Hex, http, createPublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { type AddressBook, contractEntry, readAddressBook } from "../offchain/common/addressBook";
import { rewardsManagerAbi, stakeManagerAbi } from "../offchain/common/generated/abis";
import { ChainView } from "../offchain/common/chainView";
import { type TypedApp, bearerMatches, createTypedApp, errorHandler } from "../offchain/common/http";
import { StakeType } from "../offchain/common/stakeMap";
import type { NodeConfig, Role } from "./config";
import { type Epochs, type NodeContext, type RoleModule, WorkTracker } from "./context";
import { nodeError } from "./errors";
import { type NodeMetrics, createMetrics } from "./metrics";
import { Outbox, postJson } from "./outbox";
import { createGateway } from "./roles/gateway";
import { createHost } from "./roles/host";
import { createStargate } from "./roles/stargate";

export const ROLE_STAKE_TYPE: Record<Role, StakeType> = {
  host: StakeType.Host,
  gateway: StakeType.Gateway,
  stargate: StakeType.Stargate,
};

const TYPE_NAMES = ["host", "gateway", "stargate"];

export interface AdmissionState {
  admitted: boolean;
  reason: string;
  /** Unix milliseconds of the last transition (null before the first decision). */
  changedAt: number | null;
}

export class EdgeNode {
  readonly device: Address;
  readonly app: TypedApp;
  private readonly ctx: NodeContext;
  private readonly role: RoleModule;
  private readonly view: ChainView;
  private readonly metrics: NodeMetrics;
  private admission: AdmissionState = {
    admitted: false,
    reason: "starting: the chain view has not synced yet",
    changedAt: null,
  };
  private decided = false;
  private draining = false;
  private wasStale = false;
  private transitions: Promise<void> = Promise.resolve();
  private stopView?: () => Promise<void>;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  /** The chain head's timestamp, polled while the role works in epochs (see epochClockSeconds). */
  private headTime = 0n;

  private constructor(
    private readonly config: NodeConfig,
    book: AddressBook,
    chainId: number,
    epochs: Epochs | null,
  ) {
    const account = privateKeyToAccount(config.deviceKey as Hex);
    this.device = account.address;
    // Strict validation (createTypedApp): an unknown field is an error, never silently dropped, and nothing is
    // coerced, so what a signature covers is exactly what was validated.
    this.app = createTypedApp({
      logger: { level: config.logLevel, base: { role: config.role, device: account.address } },
      bodyLimit: 128 * 1024,
    });
    const log = this.app.log;
    const client = createPublicClient({ transport: http(config.rpc, { retryCount: 0, timeout: 10_000 }) });
    const staking = contractEntry(book, "StakeManager");
    this.view = new ChainView({
      client,
      stakeManager: staking.address as Address,
      fromBlock: BigInt(staking.blockNumber),
      confirmations: config.confirmations,
      pollIntervalMs: config.pollIntervalMs,
      logger: log.child({ component: "chain-view" }),
      onProgress: (p) => {
        if (p.target - p.toBlock > 10_000n) {
          log.info({ at: p.toBlock.toString(), target: p.target.toString(), logs: p.logs }, "initial sync in progress");
        }
      },
    });
    const work = new WorkTracker();
    const outbox = new Outbox(
      join(config.dataDir, `${account.address.toLowerCase()}-${config.role}`, "outbox.jsonl"),
      log,
    );
    this.metrics = createMetrics(
      {
        admitted: () => this.serving(),
        draining: () => this.draining,
        stale: () => this.stale(),
        stakeAmount: () => this.view.map.stakeOfDevice(this.device)?.amount ?? 0n,
        head: () => this.view.status().head,
        cursor: () => this.view.cursor?.number ?? null,
        stalenessSeconds: () => {
          const ms = this.view.status().stalenessMs;
          return ms === null ? null : ms / 1000;
        },
        inFlight: () => work.inFlight,
        outboxPending: () => outbox.size,
        routableHosts: () => this.role.routableHosts(),
        reorgs: () => this.view.status().reorgs,
        consecutiveSyncErrors: () => this.view.status().consecutiveErrors,
      },
      config.role,
    );
    this.ctx = {
      config,
      device: account.address,
      account,
      chainId,
      client: client as NodeContext["client"],
      view: this.view,
      book,
      log,
      outbox,
      metrics: this.metrics,
      work,
      epochs,
      serving: () => this.serving(),
      stale: () => this.stale(),
      // Like the oracle: the wall clock, or the chain's head time when that is ahead (a devnet mines blocks faster
      // than one a second, and its timestamps run ahead), so reports and heartbeats name the oracle's epoch.
      epochClockSeconds: () => {
        const wall = BigInt(Math.floor(Date.now() / 1000));
        return wall > this.headTime ? wall : this.headTime;
      },
      deliver: async (item) => {
        const base = config[item.target];
        return base ? postJson(`${base.replace(/\/$/, "")}${item.path}`, item.body) : "retry";
      },
    };
    this.role =
      config.role === "host"
        ? createHost(this.ctx)
        : config.role === "gateway"
          ? createGateway(this.ctx)
          : createStargate(this.ctx);
    this.registerRoutes();
    this.role.register(this.app);
  }

  /** Reads the address book and the chain's id and epochs, and builds the node (not started). */
  static async create(config: NodeConfig): Promise<EdgeNode> {
    const book = readAddressBook(config.addresses);
    const client = createPublicClient({ transport: http(config.rpc, { retryCount: 2, timeout: 10_000 }) });
    const chainId = await client.getChainId();
    if (chainId !== book.chainId) {
      throw new Error(`the RPC serves chain ${chainId} but ${config.addresses} is for chain ${book.chainId}`);
    }
    let epochs: Epochs | null = null;
    const rewards = book.contracts.RewardsManager;
    if (rewards) {
      const address = rewards.address as Address;
      const [genesis, duration] = await Promise.all([
        client.readContract({ address, abi: rewardsManagerAbi, functionName: "genesis" }),
        client.readContract({ address, abi: rewardsManagerAbi, functionName: "epochDuration" }),
      ]);
      epochs = { genesis, duration };
    } else if (config.role !== "host") {
      throw new Error(`${config.addresses} has no RewardsManager: a ${config.role} needs its epochs`);
    }
    return new EdgeNode(config, book, chainId, epochs);
  }

  /** Starts following the chain and serving HTTP. Resolves with the URL it listens on. */
  async start(): Promise<string> {
    this.view.onChange(() => {
      this.evaluate();
      this.role.onViewChange();
    });
    this.stopView = this.view.start();
    const address = await this.app.listen({ host: this.config.listenHost, port: this.config.port });
    // Port 0 asked the OS for a free port: others must reach the one it gave.
    if (this.config.port === 0 && this.config.publicUrl.endsWith(":0")) this.config.publicUrl = address;
    this.timers.push(setInterval(() => this.evaluate(), Math.max(50, Math.min(1000, this.config.pollIntervalMs))));
    if (this.ctx.epochs) {
      const pollHeadTime = () =>
        this.ctx.client
          .getBlock({ blockTag: "latest" })
          .then((block) => {
            if (block.timestamp > this.headTime) this.headTime = block.timestamp;
          })
          .catch(() => undefined); // the view reports RPC trouble; the wall clock stands in meanwhile
      await pollHeadTime();
      this.timers.push(setInterval(pollHeadTime, Math.max(250, Math.min(5000, this.config.pollIntervalMs))));
    }
    this.role.start();
    this.app.log.info({ url: address, publicUrl: this.config.publicUrl }, "edge-node started");
    return address;
  }

  /** Takes no new work, waits for what is in flight, leaves the network. Idempotent. */
  async drain(): Promise<{ drained: true; inFlight: number }> {
    if (!this.draining) {
      this.draining = true;
      this.app.log.info({ inFlight: this.ctx.work.inFlight }, "draining: no new work");
    }
    await this.ctx.work.waitIdle();
    await this.role.onAdmission(false);
    return { drained: true, inFlight: this.ctx.work.inFlight };
  }

  /** Graceful shutdown: drain, leave, flush what can be flushed, close the server and the view. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.drain();
    await this.role.stop();
    await this.ctx.outbox.flush((item) => this.ctx.deliver(item));
    await this.stopView?.();
    await this.app.close();
  }

  serving(): boolean {
    return this.admission.admitted && !this.draining && !this.closed;
  }

  stale(): boolean {
    const ms = this.view.status().stalenessMs;
    return ms !== null && ms > this.config.staleAfterMs;
  }

  status(): Record<string, unknown> {
    const view = this.view.status();
    const stake = this.view.map.stakeOfDevice(this.device);
    const minimum = stake ? this.view.map.minimum(stake.stakeType) : undefined;
    return {
      device: this.device,
      role: this.config.role,
      chainId: this.ctx.chainId,
      admitted: this.admission.admitted,
      serving: this.serving(),
      reason: this.admission.reason,
      admissionChangedAt: this.admission.changedAt,
      draining: this.draining,
      stake: stake
        ? {
            stakeId: stake.stakeId.toString(),
            type: TYPE_NAMES[stake.stakeType],
            amount: stake.amount.toString(),
            phase: stake.phase,
            minimumStake: minimum?.toString() ?? null,
          }
        : null,
      sync: {
        head: view.head?.toString() ?? null,
        cursor: view.cursor?.number.toString() ?? null,
        lag: view.lag?.toString() ?? null,
        stalenessMs: view.stalenessMs,
        stale: this.stale(),
        synced: view.synced,
        confirmations: this.config.confirmations,
        reorgs: view.reorgs,
        consecutiveErrors: view.consecutiveErrors,
        lastError: view.lastError,
      },
      inFlight: this.ctx.work.inFlight,
      outboxPending: this.ctx.outbox.size,
      [this.config.role]: this.role.status(),
    };
  }

  /** Compares the view with the chain (admission) and acts on a change. */
  private evaluate(): void {
    const stale = this.stale();
    if (stale !== this.wasStale) {
      this.wasStale = stale;
      const status = this.view.status();
      if (stale) {
        this.app.log.error(
          { stalenessMs: status.stalenessMs, lastError: status.lastError },
          "chain view is STALE: admission frozen at its last state; gateways admit no new hosts until it is fresh",
        );
      } else this.app.log.info({}, "chain view is fresh again");
    }
    if (!this.view.status().synced) return;
    const next = this.decide();
    if (this.decided && next.admitted === this.admission.admitted) {
      this.admission.reason = next.reason;
      return;
    }
    const wasAdmitted = this.admission.admitted;
    this.decided = true;
    this.admission = { ...next, changedAt: Date.now() };
    this.metrics.admissionChanges.inc({ to: next.admitted ? "admitted" : "evicted" });
    if (next.admitted) this.app.log.info({ reason: next.reason }, "admitted: serving");
    else
      this.app.log.warn(
        { reason: next.reason },
        "not admitted: evicting (no new work, finishing in-flight work, leaving)",
      );
    const cursor = this.view.cursor;
    this.transitions = this.transitions.then(async () => {
      await this.role.onAdmission(next.admitted && !this.draining);
      if (wasAdmitted && !next.admitted && cursor) await this.recordEvictionDelay(cursor.number);
      if (cursor) await this.verify(cursor.number);
    });
  }

  private decide(): { admitted: boolean; reason: string } {
    const map = this.view.map;
    const stake = map.stakeOfDevice(this.device);
    if (!stake) return { admitted: false, reason: "no stake is bound to this device" };
    const want = ROLE_STAKE_TYPE[this.config.role];
    if (stake.stakeType !== want) {
      return {
        admitted: false,
        reason: `stake ${stake.stakeId} backs a ${TYPE_NAMES[stake.stakeType]}, this node runs as ${this.config.role}`,
      };
    }
    if (stake.phase === "unlocking")
      return { admitted: false, reason: `stake ${stake.stakeId} is unbonding (unstake requested)` };
    if (stake.phase === "released") return { admitted: false, reason: `stake ${stake.stakeId} was released` };
    if (map.minimum(stake.stakeType) === undefined) {
      // The constructor's MinimumStakeSet events precede the address book's block: the book is wrong.
      return {
        admitted: false,
        reason: `no ${this.config.role} minimum in the chain view: check StakeManager's blockNumber in the address book`,
      };
    }
    if (!map.isAdmitted(this.device)) {
      return {
        admitted: false,
        reason: `stake ${stake.stakeId} holds ${stake.amount}, below the ${this.config.role} minimum of ${map.minimum(stake.stakeType)}`,
      };
    }
    return { admitted: true, reason: `admitted by stake ${stake.stakeId}` };
  }

  private async recordEvictionDelay(blockNumber: bigint): Promise<void> {
    try {
      const block = await this.ctx.client.getBlock({ blockNumber });
      const delay = Date.now() / 1000 - Number(block.timestamp);
      this.metrics.evictionDelay.observe(Math.max(0, delay));
    } catch (error) {
      this.app.log.debug({ err: (error as Error).message }, "could not read the eviction block");
    }
  }

  /** Cheap cross-check of the view against the contract's own answer at the same block. */
  private async verify(blockNumber: bigint): Promise<void> {
    try {
      const status = await this.ctx.client.readContract({
        address: contractEntry(this.ctx.book, "StakeManager").address as Address,
        abi: stakeManagerAbi,
        functionName: "deviceStatus",
        args: [this.device],
        blockNumber,
      });
      const onChain = status.admitted && Number(status.stakeType) === ROLE_STAKE_TYPE[this.config.role];
      const inView = this.decide().admitted;
      if (onChain !== inView) {
        this.metrics.viewMismatches.inc();
        this.app.log.error(
          { block: blockNumber.toString(), onChain, inView },
          "chain view disagrees with deviceStatus",
        );
      }
    } catch (error) {
      this.app.log.debug({ err: (error as Error).message }, "deviceStatus cross-check skipped");
    }
  }

  private registerRoutes(): void {
    const app = this.app;
    app.setErrorHandler(errorHandler({ codePrefix: "EDGE_NODE" }));
    app.get("/health", async () => ({ ok: true }));
    app.get("/ready", async (_request, reply) => {
      if (this.serving()) return { ready: true };
      return reply.code(503).send({ ready: false, reason: this.draining ? "draining" : this.admission.reason });
    });
    app.get("/status", async () => this.status());
    app.get("/metrics", async (_request, reply) => {
      reply.header("content-type", this.metrics.registry.contentType);
      return this.metrics.registry.metrics();
    });
    app.post("/admin/drain", async (request) => {
      const token = this.config.adminToken;
      if (!token) throw nodeError("EDGE_NODE_ADMIN_DISABLED", "no admin token is configured (EDGE_NODE_ADMIN_TOKEN)");
      if (!bearerMatches(request.headers.authorization, token)) {
        throw nodeError("EDGE_NODE_UNAUTHORIZED", "a valid bearer token is required");
      }
      return this.drain();
    });
  }
}
