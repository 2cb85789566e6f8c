/**
 * The certificate service's composition root (D64): wiring, and start and stop order through the shared
 * ChainService (no sender key: it sends no transactions; its chain view says which gateways are admitted).
 *
 * - ./auth: the signed-request check; ./book: the rules over ./store (SQLite); ./chain: uploaded chains checked;
 * - ./dataKey: the key that encrypts private keys at rest (--data-key-file, created 0600 on first start);
 * - ./routes: the HTTP API; ./metrics: edge_cert_*.
 *
 * The work loop (every --poll-interval-ms) sweeps expired challenges and leases. Start: the data key and trusted
 * roots are read before anything listens (a bad file stops the start). Stop: the reverse, database last.
 */
import { readFileSync } from "node:fs";
import type { FastifyBaseLogger } from "fastify";

import type { TypedApp } from "../common/http";
import { ChainService } from "../common/service/chainService";
import { type Deployment, connectDeployment } from "../common/service/deployment";
import { KeyedLimiter } from "../common/tokenBucket";
import { certsAppOptions } from "./app";
import { RequestAuth } from "./auth";
import { CertsBook, type CertsLimits } from "./book";
import { nodeRoots, parseRoots } from "./chain";
import type { CertsConfig } from "./config";
import { dataKeyCheck, loadDataKey } from "./dataKey";
import { EdgeError } from "../common/errors";
import { type CertsMetrics, createCertsMetrics } from "./metrics";
import type { CertsRouteDeps } from "./routes";
import { CertsStore } from "./store";

export interface CertsDeps {
  now?: () => number;
  logger?: FastifyBaseLogger;
}

export function limitsOf(config: CertsConfig): CertsLimits {
  return {
    challengeTtlMs: config.challengeTtlSeconds * 1000,
    backoffMs: config.backoffSeconds * 1000,
    maxBackoffMs: Math.max(config.maxBackoffSeconds, config.backoffSeconds) * 1000,
    maxChallengesPerGateway: config.maxChallengesPerGateway,
    maxLeasesPerGateway: config.maxLeasesPerGateway,
    maxChallenges: config.maxChallenges,
    maxLeaseHoldMs: config.maxLeaseHoldSeconds * 1000,
  };
}

/** Node's public roots and --trust's; a --trust file that is unreadable or holds none stops the start. */
export function loadRoots(file: string | undefined) {
  if (file === undefined) return nodeRoots();
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new EdgeError("CONFIG_INVALID", `cannot read --trust ${file}: ${(error as Error).message}`);
  }
  try {
    return [...nodeRoots(), ...parseRoots(text, file)];
  } catch (error) {
    throw new EdgeError("CONFIG_INVALID", (error as Error).message);
  }
}

export class CertsService {
  readonly app: TypedApp;
  readonly store: CertsStore;
  readonly book: CertsBook;
  private readonly chain: ChainService;
  private readonly metrics: CertsMetrics;
  private readonly routes: CertsRouteDeps;

  private constructor(config: CertsConfig, deployment: Deployment, deps: CertsDeps) {
    const now = deps.now ?? Date.now;
    const dataKey = loadDataKey(config.dataKeyFile);
    const roots = loadRoots(config.trust);
    const store = (this.store = new CertsStore(config.db));
    try {
      const check = dataKeyCheck(dataKey, store.getMeta("dataKeyCheck"), config.dataKeyFile);
      if (check !== undefined) store.setMeta("dataKeyCheck", check);
    } catch (error) {
      store.close();
      throw error;
    }
    this.chain = new ChainService({
      config,
      deployment,
      db: store.db,
      app: certsAppOptions(() => ({ routes: this.routes, metrics: this.metrics }), deps.logger),
    });
    this.app = this.chain.app;
    const metrics = (this.metrics = createCertsMetrics(this.chain.registry, {
      challenges: () => store.challengeCount(now()),
      leases: () => store.leaseCount(now()),
      expiries: () => store.expiries(),
      now,
    }));
    this.book = new CertsBook({ store, dataKey, roots, limits: limitsOf(config), metrics, now });
    this.routes = {
      book: this.book,
      auth: new RequestAuth({ chainId: deployment.chainId, view: this.chain.view, now }),
      readers: new KeyedLimiter(config.challengeReadsPerMinute),
      now,
    };
  }

  /** Reads the address book and checks the chain; not started. */
  static async create(config: CertsConfig, deps: CertsDeps = {}): Promise<CertsService> {
    const deployment = await connectDeployment(config.rpc, config.addresses);
    return new CertsService(config, deployment, deps);
  }

  start(): Promise<string> {
    return this.chain.start({
      work: async () => {
        this.book.sweep();
      },
      prepare: async () => {
        this.book.sweep();
      },
      describe: () => ({ certificates: this.store.expiries().length }),
    });
  }

  async close(): Promise<void> {
    await this.chain.close(() => this.store.close());
  }
}
