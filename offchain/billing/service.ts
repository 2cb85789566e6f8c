/**
 * The billing service's composition root: wiring, and start and stop order (through the shared ChainService).
 *
 * - ./ingest: gateways' signed usage batches, checked whole and stored once per record id;
 * - ./close: periods closed into bills once their end plus the grace period has passed (local clock);
 * - ./settle: non-zero bills settled through PaymentVault exactly once, through TxSender;
 * - ./signIn: customers' EIP-4361 sign-in and bearer tokens; ./routes: the HTTP API (docs/billing.md);
 * - ./vault: PaymentVault reads; ./metrics: the billing metrics; ./store: the SQLite database.
 *
 * Start: the first period is recorded (once) and the open periods' usage summed from the database, then the
 * ChainService order (transactions in flight, chain view, HTTP, work loop). Stop: the reverse, database last.
 */
import type { FastifyBaseLogger } from "fastify";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { contractEntry } from "../common/addressBook";
import type { TypedApp } from "../common/http";
import type { PeriodScheme } from "../common/period";
import { ChainService } from "../common/service/chainService";
import { type Deployment, connectDeployment } from "../common/service/deployment";
import { AdmissionHistory } from "./admission";
import { billingAppOptions } from "./app";
import type { HashedBill, PriceList } from "./bills";
import { type CloseDeps, closeDuePeriods, closePeriod } from "./close";
import type { BillingConfig } from "./config";
import { CreditBook, CreditGuard, vaultAccountsReader } from "./credit";
import { type BillingMetrics, createBillingMetrics } from "./metrics";
import { OpenUsage } from "./openUsage";
import { periodScheme, recordFirstPeriod } from "./periods";
import type { BillingRouteDeps } from "./routes";
import { type SettleDeps, settleClosedPeriods } from "./settle";
import { SignIn } from "./signIn";
import { BillingStore } from "./store";
import { hasBillerRole } from "./vault";

export interface BillingDeps {
  now?: () => number;
  logger?: FastifyBaseLogger;
}

export class BillingService {
  readonly app: TypedApp;
  readonly store: BillingStore;
  private readonly chain: ChainService;
  private readonly now: () => number;
  private readonly scheme: PeriodScheme;
  private readonly openUsage = new OpenUsage();
  private readonly metrics: BillingMetrics;
  private readonly routes: BillingRouteDeps;
  private readonly closing: CloseDeps;
  private readonly settling: SettleDeps;

  private constructor(config: BillingConfig, prices: PriceList, deployment: Deployment, deps: BillingDeps) {
    const now = (this.now = deps.now ?? Date.now);
    const scheme = (this.scheme = periodScheme(config));
    const store = (this.store = new BillingStore(config.db));
    const { openUsage } = this;
    this.chain = new ChainService({
      config,
      deployment,
      db: store.db,
      senderKey: config.billerKey,
      batchSize: 200,
      // Read once the app is readied: by then the routes and metrics below are in place.
      app: billingAppOptions(() => ({ routes: this.routes, metrics: this.metrics }), deps.logger),
    });
    const { view, sender, client, log } = this.chain;
    this.app = this.chain.app;
    const admission = new AdmissionHistory(store.db, now);
    admission.follow(view);
    const signIn = new SignIn({
      domain: config.domain,
      chainId: deployment.chainId,
      tokenTtlMs: config.tokenTtlSeconds * 1000,
      maxNonces: config.maxNonces,
      noncesPerMinute: config.noncesPerMinute,
      now,
      onLogin: (outcome) => metrics.logins.inc({ outcome }),
    });
    const metrics = (this.metrics = createBillingMetrics(this.chain.registry, {
      lastClosedPeriod: () => store.lastClosedIndex() ?? -1,
      pendingTransactions: () => sender?.pending().length ?? 0,
      unsettledPeriods: () => store.unsettledPeriods().length,
      stalenessSeconds: () => (view.status().stalenessMs ?? NaN) / 1000,
      sessions: () => signIn.sessionCount,
    }));
    const { chainId } = deployment;
    const maxSkewMs = config.maxSkewSeconds * 1000;
    const maxStalenessMs = config.maxStalenessSeconds * 1000;
    const vault = contractEntry(deployment.book, "PaymentVault");
    const vaultAddress = vault.address as Address;
    const readAccounts = vaultAccountsReader(client, vaultAddress, now);
    const balanceMaxAgeMs = config.creditCacheMs;
    this.routes = {
      ingest: { chainId, view, admission, maxStalenessMs, store, prices, scheme, openUsage, maxSkewMs, metrics, now },
      store,
      signIn,
      usage: { scheme, openUsage, prices, now },
      credit: {
        book: new CreditBook({ store, openUsage, prices, scheme, readAccounts, balanceMaxAgeMs, now }),
        guard: new CreditGuard({ chainId, view, now }),
      },
    };
    const graceMs = config.graceSeconds * 1000;
    const { batchSize } = config;
    this.closing = { store, prices, scheme, openUsage, graceMs, batchSize, metrics, now, log };
    const vaultAt = { address: vaultAddress, fromBlock: BigInt(vault.blockNumber) };
    this.settling = { store, client, vault: vaultAt, sender, metrics, now, log };
  }

  /** Reads the address book, checks the chain and the biller's role; not started. */
  static async create(config: BillingConfig, prices: PriceList, deps: BillingDeps = {}): Promise<BillingService> {
    const deployment = await connectDeployment(config.rpc, config.addresses);
    if (config.billerKey) {
      const vault = contractEntry(deployment.book, "PaymentVault").address as Address;
      const biller = privateKeyToAccount(config.billerKey as Hex).address;
      if (!(await hasBillerRole(deployment.client, vault, biller)))
        throw new Error(`the biller key ${biller} does not hold BILLER_ROLE on PaymentVault ${vault}`);
    }
    return new BillingService(config, prices, deployment, deps);
  }

  start(): Promise<string> {
    return this.chain.start({
      work: () => this.work(),
      prepare: async () => {
        recordFirstPeriod(this.store, this.scheme, this.now());
        this.openUsage.load(this.store);
      },
      describe: () => ({ firstPeriod: this.store.getMeta("firstPeriod"), biller: this.chain.sender?.address ?? null }),
    });
  }

  async close(): Promise<void> {
    await this.chain.close(() => this.store.close());
  }

  /** One pass of the background work; the loop never runs two at once. */
  async work(): Promise<void> {
    await this.chain.sender?.reconcile();
    this.closeDuePeriods();
    await settleClosedPeriods(this.settling);
  }

  /** Closes every period whose end plus the grace period has passed, oldest first. */
  closeDuePeriods(): void {
    closeDuePeriods(this.closing);
  }

  /** Bills one period from the database and saves them with the period. */
  closePeriod(index: number): HashedBill[] {
    return closePeriod(this.closing, index);
  }
}
