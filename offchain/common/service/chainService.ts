/**
 * The shared shape of a chain-connected service (the oracle, billing): the HTTP app, a JSON-RPC client, a
 * confirmed chain view of StakeManager, an optional crash-safe transaction sender on the service's database, and
 * one background work loop; started and stopped in one order.
 *
 * Start: prepare (the service's own start-up state) -> reconcile transactions in flight -> first view sync
 * (a failure is logged and retried by the view) -> follow the chain -> listen -> work loop.
 * Stop: work loop (the pass under way finishes) -> view -> HTTP server -> database.
 */
import type Database from "better-sqlite3";
import type { FastifyBaseLogger } from "fastify";
import { type Address, type Hex, type PublicClient, createPublicClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { Registry } from "prom-client";

import { contractEntry } from "../addressBook";
import { ChainView } from "../chainView";
import { type ServiceAppOptions, type TypedApp, createServiceApp } from "../http";
import { TxSender } from "../txSender";
import { redactUrls } from "../redact";
import { WorkLoop } from "../workLoop";
import { stateGauge } from "./metrics";
import type { Deployment } from "./deployment";

export interface ChainServiceConfig {
  rpc: string;
  listenHost: string;
  port: number;
  pollIntervalMs: number;
  confirmations: number;
  logLevel: string;
  /** The fee cap of every transaction the service sends, in gwei (F10; default 1,000). */
  maxFeeGwei?: number;
}

export interface ChainServiceOptions {
  config: ChainServiceConfig;
  deployment: Pick<Deployment, "book" | "chainId">;
  app: Omit<ServiceAppOptions, "logLevel" | "registry">;
  db: Database.Database;
  /** The key transactions are sent from; none: the service sends nothing. */
  senderKey?: string;
  /** Extra options of the long-running JSON-RPC client (billing batches its reads). */
  batchSize?: number;
}

/** Whole and fractional gwei to wei, exactly for up to 9 decimals. */
const gweiToWei = (gwei: number): bigint => BigInt(Math.round(gwei * 1e9));

export class ChainService {
  readonly app: TypedApp;
  readonly registry = new Registry();
  readonly client: PublicClient;
  /** StakeManager's devices, confirmed `config.confirmations` blocks deep. */
  readonly view: ChainView;
  readonly sender: TxSender | null;
  readonly chainId: number;
  readonly log: FastifyBaseLogger;
  private readonly config: ChainServiceConfig;
  private readonly name: string;
  private loop?: WorkLoop;
  private stopView?: () => Promise<void>;

  constructor(options: ChainServiceOptions) {
    const { config, deployment } = options;
    this.config = config;
    this.chainId = deployment.chainId;
    this.name = options.app.name;
    this.app = createServiceApp({ ...options.app, logLevel: config.logLevel, registry: this.registry });
    this.log = this.app.log;
    this.client = createPublicClient({
      transport: http(config.rpc, {
        retryCount: 0,
        timeout: 30_000,
        ...(options.batchSize ? { batch: { batchSize: options.batchSize } } : {}),
      }),
    }) as PublicClient;
    this.view = this.stakeView(deployment, config.confirmations, "view");
    this.sender = options.senderKey
      ? new TxSender(
          options.db,
          this.client,
          privateKeyToAccount(options.senderKey as Hex),
          deployment.chainId,
          this.log.child({ component: "tx" }),
          { maxFeePerGas: config.maxFeeGwei === undefined ? undefined : gweiToWei(config.maxFeeGwei) },
        )
      : null;
    if (this.sender) {
      const sender = this.sender;
      stateGauge(
        this.registry,
        `edge_${this.name}_tx_fee_capped`,
        "Pending transactions held at the fee cap (--max-fee-gwei): alert when above 0",
        () => sender.feeCapped(),
      );
    }
  }

  /** A view of StakeManager from its deployment block (a service may keep a second one, e.g. at epoch ends). */
  stakeView(deployment: Pick<Deployment, "book">, confirmations: number, component: string): ChainView {
    const staking = contractEntry(deployment.book, "StakeManager");
    return new ChainView({
      client: this.client,
      stakeManager: staking.address as Address,
      fromBlock: BigInt(staking.blockNumber),
      pollIntervalMs: this.config.pollIntervalMs,
      confirmations,
      logger: this.log.child({ component }),
    });
  }

  /**
   * Starts everything in order (see the header), logs "<name> started" with the URL and what `describe` adds,
   * and resolves with the URL the service listens on.
   */
  async start(service: {
    work: () => Promise<void>;
    prepare?: () => Promise<void>;
    describe?: () => Record<string, unknown>;
  }): Promise<string> {
    await service.prepare?.();
    await this.sender?.reconcile();
    await this.view
      .syncOnce()
      .catch((error: Error) => this.log.warn({ err: redactUrls(error.message) }, "initial sync failed; retrying"));
    this.stopView = this.view.start();
    const url = await this.app.listen({ host: this.config.listenHost, port: this.config.port });
    this.loop = new WorkLoop(service.work, this.config.pollIntervalMs, (error) =>
      this.log.warn({ err: error.message.split("\n")[0] }, `${this.name} work failed; retrying`),
    );
    this.loop.start();
    this.log.info({ url, ...service.describe?.() }, `${this.name} started`);
    return url;
  }

  /** Stops in order (see the header); `closeStore` closes the service's database last. */
  async close(closeStore: () => void): Promise<void> {
    await this.loop?.stop();
    await this.stopView?.();
    await this.app.close();
    closeStore();
  }
}
