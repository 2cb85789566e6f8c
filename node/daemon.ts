/**
 * The edge-node daemon's composition root: one process, one device key, one role. It wires the chain view,
 * admission (admission.ts: the node decides by itself whether it may serve), the role (roles/), the outbox, the
 * epoch clock, the metrics and the HTTP routes (routes.ts), and starts and stops them in order:
 *
 * - start: follow the chain -> listen -> admission loop -> epoch clock at the chain head (its first read
 *   awaited) -> the role's loops;
 * - stop: admission and clock loops -> drain (no new work, in-flight work finishes, the role leaves) -> the
 *   role's loops and last reports -> one more outbox flush -> the chain view -> the HTTP server.
 */
import { join } from "node:path";
import { type Address, type Hex, type PublicClient, createPublicClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { type AddressBook, contractEntry } from "../offchain/common/addressBook";
import { ConfigAnchor } from "../offchain/common/configAnchor";
import { ChainView } from "../offchain/common/chainView";
import { EpochClock, type Epochs, readEpochs } from "../offchain/common/epochs";
import { type TypedApp, createTypedApp } from "../offchain/common/http";
import { type Tracing, initTracing } from "../offchain/common/tracing";
import { senderStanding } from "../offchain/common/service/admittedSender";
import { connectDeployment } from "../offchain/common/service/deployment";
import { StakeType } from "../offchain/common/stakeMap";
import { WorkLoop } from "../offchain/common/workLoop";
import { Admission } from "./admission";
import type { NodeConfig } from "./config";
import { ConfigSubscriber } from "./configSubscriber";
import type { RoleContext, RoleModule } from "./context";
import { HeadTimeFollower } from "./headTime";
import { type NodeMetrics, createMetrics } from "./metrics";
import { Outbox, type Sender, httpSender } from "./outbox";
import { unseal } from "../offchain/common/seal";
import { createGateway } from "./roles/gateway";
import { createHost } from "./roles/host";
import { createStargate } from "./roles/stargate";
import type { LoadReport } from "./loadReport";
import { type DrainReply, registerNodeRoutes } from "./routes";
import { nodeStatus } from "./status";
import { TokenVerifier } from "./tokens";
import { WorkTracker } from "./workTracker";

export class EdgeNode {
  readonly device: Address;
  readonly app: TypedApp;
  private readonly client: PublicClient;
  private readonly view: ChainView;
  private readonly admission: Admission;
  private readonly admissionLoop: WorkLoop;
  private readonly headTime: HeadTimeFollower | null;
  private readonly role: RoleModule;
  private readonly outbox: Outbox;
  private readonly deliver: Sender;
  private readonly work = new WorkTracker();
  private readonly metrics: NodeMetrics;
  private readonly tracing: Tracing;
  /** Gateways and hosts with --stargates: the configuration stream (a stargate relays in its role, D53). */
  private readonly configSubscriber: ConfigSubscriber | undefined;
  /** ConfigRegistry's reader, shared by the subscriber and the token check (privileged tokens, R17-1). */
  private readonly anchor: ConfigAnchor | undefined;
  private draining = false;
  private closed = false;
  private stopView?: () => Promise<void>;

  private constructor(
    private readonly config: NodeConfig,
    private readonly chainId: number,
    book: AddressBook,
    epochs: Epochs | null,
  ) {
    const account = privateKeyToAccount(config.deviceKey as Hex);
    this.device = account.address;
    // Strict validation (createTypedApp): an unknown field is an error, never silently dropped, and nothing is
    // coerced, so what a signature covers is exactly what was validated.
    this.app = createTypedApp({
      // Bodies and headers are not logged (fastify's serializers); should one ever be, its secrets are not (D56).
      logger: {
        level: config.logLevel,
        base: { role: config.role, device: account.address },
        redact: ["req.headers.authorization", "body.password", "*.password"],
      },
      bodyLimit: 128 * 1024,
    });
    const log = this.app.log;
    this.client = createPublicClient({
      transport: http(config.rpc, { retryCount: 0, timeout: 10_000 }),
    }) as PublicClient;
    const stakeManager = contractEntry(book, "StakeManager");
    this.view = new ChainView({
      client: this.client,
      stakeManager: stakeManager.address as Address,
      fromBlock: BigInt(stakeManager.blockNumber),
      confirmations: config.confirmations,
      pollIntervalMs: config.pollIntervalMs,
      logger: log.child({ component: "chain-view" }),
      onProgress: (p) => {
        if (p.target - p.toBlock > 10_000n) {
          log.info({ at: p.toBlock.toString(), target: p.target.toString(), logs: p.logs }, "initial sync in progress");
        }
      },
    });
    this.outbox = new Outbox(join(config.dataDir, `${this.device.toLowerCase()}-${config.role}`, "outbox.jsonl"), log);
    this.deliver = httpSender(config);
    this.metrics = this.createMetrics();
    this.admission = new Admission({
      device: this.device,
      role: config.role,
      view: this.view,
      client: this.client,
      stakeManager: stakeManager.address as Address,
      metrics: this.metrics,
      log,
      stale: () => this.stale(),
      act: (admitted) => this.role.onAdmission(admitted),
      draining: () => this.draining,
    });
    // The view triggers a reconcile on every change; the loop also catches the staleness bound passing.
    this.admissionLoop = new WorkLoop(
      async () => this.admission.reconcile(),
      Math.max(50, Math.min(1000, config.pollIntervalMs)),
      (error) => log.error({ err: error }, "admission check failed"),
    );
    const clock = epochs && new EpochClock(epochs);
    this.headTime =
      clock && new HeadTimeFollower(this.client, clock, Math.max(250, Math.min(5000, config.pollIntervalMs)));
    // Spans are exported when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set; else only propagated.
    this.tracing = initTracing({
      serviceName: `edge-${config.role}`,
      resource: { "service.instance.id": account.address },
    });
    this.role = this.createRole(
      {
        signer: { account, chainId },
        log,
        work: this.work,
        metrics: this.metrics,
        tracing: this.tracing,
        serving: () => this.serving(),
      },
      clock,
      book,
    );
    const registry = book.contracts.ConfigRegistry?.address as Address | undefined;
    this.anchor = registry && new ConfigAnchor({ client: this.client, address: registry });
    registerNodeRoutes(this.app, {
      serving: () => this.serving(),
      notServingReason: () => (this.draining ? "draining" : this.admission.state.reason),
      status: () => this.status(),
      load: () => this.load(),
      registry: this.metrics.registry,
      adminToken: config.adminToken,
      // Network API tokens with node:drain (D56): revoked ids from the configuration this node holds.
      tokens: new TokenVerifier({
        chainId,
        chainAdmits: (device, type) => senderStanding(this.view, device, type) === "admitted",
        anchor: this.anchor,
        currentConfig: () => this.configSubscriber?.current() ?? this.role.currentConfig?.(),
        now: Date.now,
      }),
      drain: () => this.drain(),
      leaveGroup: this.role.leaveGroup && (() => this.role.leaveGroup!()),
      joinGroup: this.role.joinGroup && (() => this.role.joinGroup!()),
    });
    this.role.register(this.app);
    this.configSubscriber = this.createConfigSubscriber({ signer: { account, chainId }, log }, book);
  }

  /** Connects to the deployment (address book, chain id, the epochs a gateway or stargate needs); not started. */
  static async create(config: NodeConfig): Promise<EdgeNode> {
    const { book, chainId, client } = await connectDeployment(config.rpc, config.addresses);
    let epochs: Epochs | null = null;
    const rewards = book.contracts.RewardsManager;
    // A host without epochs runs jobs but signs no tallies (F11), so its jobs score nothing.
    if (rewards) epochs = await readEpochs(client, rewards.address as Address);
    else if (config.role !== "host")
      throw new Error(`${config.addresses} has no RewardsManager: a ${config.role} needs its epochs`);
    return new EdgeNode(config, chainId, book, epochs);
  }

  /** Starts following the chain and serving HTTP. Resolves with the URL it listens on. */
  async start(): Promise<string> {
    this.view.onChange(() => {
      this.admission.reconcile();
      this.role.onViewChange();
    });
    this.stopView = this.view.start();
    const address = await this.app.listen({ host: this.config.listenHost, port: this.config.port });
    // Port 0 asked the OS for a free port: others must reach the one it gave (the host role reads it from here).
    if (this.config.port === 0 && this.config.publicUrl.endsWith(":0")) this.config.publicUrl = address;
    this.admissionLoop.start();
    await this.headTime?.start();
    await this.role.start();
    await this.configSubscriber?.start();
    this.app.log.info({ url: address, publicUrl: this.config.publicUrl }, "edge-node started");
    return address;
  }

  /** Takes no new work, waits for what is in flight, leaves the network. Idempotent. */
  async drain(): Promise<DrainReply> {
    if (!this.draining) {
      this.draining = true;
      this.app.log.info({ inFlight: this.work.inFlight }, "draining: no new work");
    }
    await this.work.waitIdle();
    await this.role.onAdmission(false);
    return { drained: true, inFlight: this.work.inFlight };
  }

  /** Graceful shutdown: drain, leave, flush what can be flushed, close the server and the view. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.admissionLoop.stop(), this.headTime?.stop()]);
    await this.drain();
    await this.configSubscriber?.stop();
    await this.role.stop();
    await this.outbox.flush(this.deliver);
    await this.stopView?.();
    await this.app.close();
    await this.tracing.shutdown();
  }

  serving(): boolean {
    return this.admission.state.admitted && !this.draining && !this.closed;
  }

  stale(): boolean {
    const ms = this.view.status().stalenessMs;
    return ms !== null && ms > this.config.staleAfterMs;
  }

  /** Jobs in flight, the role's capacity and queue, the p99 of recent work (D71). */
  load(): LoadReport {
    const role = this.role.load?.() ?? { capacity: 0, queueDepth: 0 };
    return { inFlight: this.work.inFlight, ...role, p99Ms: this.work.latency.p99() };
  }

  status(): Record<string, unknown> {
    const status = nodeStatus({
      device: this.device,
      role: this.config.role,
      region: this.config.region,
      chainId: this.chainId,
      confirmations: this.config.confirmations,
      admission: this.admission.state,
      serving: this.serving(),
      draining: this.draining,
      stale: this.stale(),
      view: this.view,
      inFlight: this.work.inFlight,
      outboxPending: this.outbox.size,
      load: this.load(),
      roleStatus: this.role.status(),
    });
    return this.configSubscriber ? { ...status, config: this.configSubscriber.status() } : status;
  }

  /**
   * Gateways and hosts with --stargates subscribe to the configuration stream; what verifies against ConfigRegistry
   * goes to the role's applyConfig (throwing refuses it) and the catalogue to applyCatalogue.
   */
  private createConfigSubscriber(
    ctx: Pick<RoleContext, "signer" | "log">,
    book: AddressBook,
  ): ConfigSubscriber | undefined {
    const config = this.config;
    if (config.stargates.length === 0 || config.role === "stargate") return undefined;
    const registry = book.contracts.ConfigRegistry?.address as Address | undefined;
    if (!registry) throw new Error(`${config.addresses} has no ConfigRegistry: --stargates needs one`);
    const role = this.role;
    return new ConfigSubscriber(ctx, {
      role: config.role,
      url: () => config.publicUrl,
      region: config.region,
      stargates: config.stargates,
      anchor: this.anchor!,
      isStargate: (address) => senderStanding(this.view, address, StakeType.Stargate) === "admitted",
      apply: (applied) => role.applyConfig?.(applied),
      applyCatalogue: role.applyCatalogue && ((catalogue) => role.applyCatalogue!(catalogue)),
      file: join(config.dataDir, `${this.device.toLowerCase()}-${config.role}`, "config.json"),
    });
  }

  /** The role, given only what it uses (context.ts). */
  private createRole(base: RoleContext, clock: EpochClock | null, book: AddressBook): RoleModule {
    const config = this.config;
    if (config.role === "host") return createHost(base, config, clock);
    // create() reads the epochs for every role (a host without them signs no tallies).
    if (!clock) throw new Error(`a ${config.role} needs RewardsManager's epochs`);
    const outgoing = {
      put: this.outbox.put.bind(this.outbox),
      flush: () => this.outbox.flush(this.deliver),
      pending: () => this.outbox.items(),
    };
    const sending = { ...base, outgoing, clock };
    const chain = {
      chainAdmits: (device: string, type: StakeType) => senderStanding(this.view, device, type) === "admitted",
      stale: () => this.stale(),
      contracts: this.client,
    };
    if (config.role === "stargate")
      return createStargate(
        {
          ...sending,
          ...chain,
          configRegistry: book.contracts.ConfigRegistry?.address as Address | undefined,
          rpc: config.rpc,
          admittedDevices: () =>
            this.view.map
              .devices()
              .filter((d) => d.admitted)
              .map((d) => ({ device: d.device as Address, type: d.stakeType })),
        },
        config,
      );
    return createGateway(
      {
        ...sending,
        ...chain,
        paymentVault: book.contracts.PaymentVault?.address as Address | undefined,
        unseal: (sealed, context) => unseal(config.deviceKey, sealed, context),
      },
      config,
    );
  }

  private createMetrics(): NodeMetrics {
    return createMetrics(
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
        inFlight: () => this.work.inFlight,
        outboxPending: () => this.outbox.size,
        outboxConflicts: () => this.outbox.conflicts,
        routableHosts: () => this.role.routableHosts(),
        reorgs: () => this.view.status().reorgs,
        consecutiveSyncErrors: () => this.view.status().consecutiveErrors,
      },
      this.config.role,
    );
  }
}
