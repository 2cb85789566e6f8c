/**
 * The score oracle service: the composition root. It wires the shared chain-connected base
 * (../common/service) to the oracle's parts and fixes their order:
 *
 * - Ingestion (./ingest, ./routes/ingest): gateways POST signed job reports, stargates signed heartbeats
 *   (offchain/common/protocol). Each is verified, checked against the chain view (the sender must hold a stake
 *   of its kind), stored once in SQLite (./store), and relayed to peer instances (./relay).
 * - Closing (./close): once an epoch has ended plus the grace period, a second chain view, which only ever
 *   advances to the last block before an epoch's end, gives the admitted set at that end; the epoch is scored
 *   (./scoring) and cut into batches of (stake id, score), all saved in one transaction.
 * - Posting (./post, ./sign): each batch is signed by this instance's committee keys and, up to the threshold, by
 *   peers that recompute the same batch from their own data; the transaction goes through TxSender (persisted
 *   before it is broadcast). The chain is asked first (`isBatchPosted`), so a restart never posts a batch twice.
 * - Transparency (./routes/epochs): every epoch's inputs and results over HTTP in the recompute CLI's formats.
 */
import type { FastifyBaseLogger } from "fastify";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { contractEntry } from "../common/addressBook";
import type { ChainView } from "../common/chainView";
import { EpochClock, type Epochs, readEpochs } from "../common/epochs";
import type { TypedApp } from "../common/http";
import { ChainService } from "../common/service/chainService";
import { type Deployment, connectDeployment } from "../common/service/deployment";
import { EpochCloser } from "./close";
import type { OracleConfig } from "./config";
import type { IngestDeps } from "./ingest";
import { type OracleMetrics, createOracleMetrics } from "./metrics";
import { type PostDeps, postClosedEpochs } from "./post";
import { flushRelay } from "./relay";
import { epochRoutes } from "./routes/epochs";
import { ingestRoutes } from "./routes/ingest";
import { signRoutes } from "./routes/sign";
import { BatchSigner } from "./sign";
import { OracleStore } from "./store";

export { ORACLE_ERRORS, oracleError } from "./errors";

export interface OracleDeps {
  logger?: FastifyBaseLogger;
  now?: () => number;
}

export class OracleService {
  readonly app: TypedApp;
  readonly store: OracleStore;
  readonly clock: EpochClock;
  private readonly base: ChainService;
  private readonly epochView: ChainView;
  private readonly metrics: OracleMetrics;
  private readonly signer: BatchSigner;
  private readonly closer: EpochCloser;
  private readonly post: PostDeps;
  private readonly now: () => number;
  /** Ingestion's dependencies (the chain view, the store), for the ingest functions and their tests. */
  ingestDeps!: IngestDeps;

  private constructor(
    private readonly config: OracleConfig,
    deployment: Deployment,
    epochs: Epochs,
    deps: OracleDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.clock = new EpochClock(epochs, this.now);
    this.store = new OracleStore(config.db);
    const rewards = contractEntry(deployment.book, "RewardsManager").address as Address;
    this.base = new ChainService({
      config,
      deployment,
      db: this.store.db,
      senderKey: config.submit ? (config.submitterKey ?? config.keys[0]) : undefined,
      app: {
        name: "oracle",
        codePrefix: "ORACLE",
        logger: deps.logger,
        openapi: {
          title: "Edge Network score oracle",
          description: "Signed job reports and heartbeats in; every epoch's inputs and scores out.",
        },
        onRejected: (route, code) => {
          const counter =
            route === "/reports" ? this.metrics.reports : route === "/heartbeats" ? this.metrics.heartbeats : null;
          counter?.inc({ outcome: `rejected_${code.toLowerCase()}` });
        },
        routes: (api) => {
          ingestRoutes(api, this.ingestDeps, this.metrics);
          signRoutes(api, this.store, this.signer);
          epochRoutes(api, this.store, this.clock);
        },
      },
    });
    const { client, view, log } = this.base;
    this.app = this.base.app;
    this.epochView = this.base.stakeView(deployment, 0, "epoch-view");
    this.signer = new BatchSigner(
      client,
      rewards,
      config.keys.map((key) => privateKeyToAccount(key as Hex)),
      this.now,
    );
    this.metrics = createOracleMetrics(this.base.registry, {
      lastClosedEpoch: () => this.store.lastClosedEpoch() ?? -1,
      lastPostedEpoch: () => this.store.lastPostedEpoch() ?? -1,
      pendingTransactions: () => this.base.sender?.pending().length ?? 0,
      relayPending: () => this.store.relayPending(),
      stalenessSeconds: () => (view.status().stalenessMs ?? NaN) / 1000,
    });
    this.ingestDeps = {
      store: this.store,
      view,
      clock: this.clock,
      chainId: deployment.chainId,
      peers: config.peers,
      now: this.now,
    };
    this.closer = new EpochCloser({
      store: this.store,
      client,
      epochView: this.epochView,
      clock: this.clock,
      confirmations: config.confirmations,
      graceSeconds: config.graceSeconds,
      batchSize: config.batchSize,
      now: this.now,
      log,
    });
    this.post = {
      store: this.store,
      client,
      rewards,
      sender: this.base.sender,
      signer: this.signer,
      peers: config.peers,
      postingDuration: this.metrics.postingDuration,
      now: this.now,
      log,
    };
  }

  /** Reads the address book and the chain's epochs; builds the service (not started). */
  static async create(config: OracleConfig, deps: OracleDeps = {}): Promise<OracleService> {
    const deployment = await connectDeployment(config.rpc, config.addresses);
    const rewards = contractEntry(deployment.book, "RewardsManager").address as Address;
    const epochs = await readEpochs(deployment.client, rewards);
    return new OracleService(config, deployment, epochs, deps);
  }

  start(): Promise<string> {
    return this.base.start({
      work: () => this.work(),
      prepare: async () => {
        this.clock.setHead((await this.base.client.getBlock({ blockTag: "latest" })).timestamp);
        if (this.store.getMeta("firstEpoch") === undefined) {
          this.store.setMeta("firstEpoch", String(this.config.firstEpoch ?? this.clock.currentEpoch()));
        }
      },
      describe: () => ({ firstEpoch: this.store.getMeta("firstEpoch"), signers: this.signer.addresses }),
    });
  }

  async close(): Promise<void> {
    await this.base.close(() => this.store.close());
  }

  /** One pass of the background work; the loop never runs two at once. */
  async work(): Promise<void> {
    await this.base.sender?.reconcile();
    await this.closer.closeDue();
    await postClosedEpochs(this.post);
    await flushRelay(this.store);
  }

  /** Scores one ended epoch (see ./close). False when the chain is not far enough yet. */
  closeEpoch(epoch: bigint): Promise<boolean> {
    return this.closer.close(epoch);
  }
}
