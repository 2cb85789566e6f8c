/**
 * Gateway role: takes the links of hosts that prove they hold an admitted host device key (links.ts, hosts.ts),
 * serves sites' requests at its front door (cdn.ts, sites.ts) and customers' signed compute jobs (customers.ts,
 * jobs.ts, dispatch.ts), all through one job queue that hosts pull from as they have capacity (queue.ts, D44),
 * counts the jobs each host returned per epoch, collects the hosts' signed tallies (tallies.ts), and sends
 * signed job reports to the oracle (reports.ts) and signed usage batches to billing (node/usage.ts) through the
 * outbox, each on its own work loop. Counts and sequence numbers persist in the gateway's state file (state.ts).
 *
 * A host stops receiving jobs the moment the gateway's own chain view says it is no longer admitted, whatever
 * the host does. While the view is stale, hosts already routed keep working but no new host is accepted.
 *
 * Certificates (D65, frontDoor.ts): with --certs the front door answers ACME challenges from the certificate
 * service, loads the sites' certificates for the HTTPS door (--tls-port) and, with --acme-directory, orders them.
 */
import { join } from "node:path";

import type { TypedApp } from "../../../offchain/common/http";
import { WorkLoop } from "../../../offchain/common/workLoop";
import type { AppliedConfig, Catalogue, GatewayConfig, GatewayContext, RoleModule } from "../../context";
import { type CdnMetrics, createCdnMetrics } from "./cdnMetrics";
import { CreditLimiter } from "./credit";
import { Customers } from "./customers";
import { Dispatcher } from "./dispatch";
import { siteServing } from "./frontDoor";
import { HostRegistry, routeLinks } from "./hosts";
import { JobFrontDoor } from "./jobs";
import { type HostLink, HostLinks } from "./links";
import { createPlacementMetrics } from "./placementMetrics";
import { JobQueue } from "./queue";
import { JobReports } from "./reports";
import { registerGatewayRoutes } from "./routes";
import { GatewayStateFile } from "./state";
import { DEFAULT_MAX_OBJECTS, GatewayStorage } from "./storage";
import { StorageAuth } from "./storageAuth";
import { StorageIndex } from "./storageIndex";
import { StorageRepair } from "./storageRepair";
import { registerStorageRoutes } from "./storageRoutes";
import { collectTallies } from "./tallies";
import { UsageMeter } from "../../usage";

export { SIGNATURE_WINDOW_SECONDS } from "./customers";

export function createGateway(ctx: GatewayContext, config: GatewayConfig): RoleModule {
  const log = ctx.log.child({ component: "gateway" });
  const device = ctx.signer.account.address;
  const store = new GatewayStateFile(join(config.dataDir, `${device.toLowerCase()}-gateway`));
  const hosts = new HostRegistry({ ...ctx, log });
  const reports = new JobReports(ctx, store, config.oracle !== undefined);
  const usage = new UsageMeter(ctx, store, config.billing !== undefined);
  // One queue at a time: the usage loop, the credit refresh and stop() all queue the meter.
  let queueing: Promise<void> = Promise.resolve();
  const queueUsage = () => (queueing = queueing.catch(() => undefined).then(() => usage.queue()));
  const credit = creditLimiter(ctx, config, log, queueUsage);
  const customers = new Customers({ ...ctx, creditBound: credit !== undefined }, config.allowCustomers);
  const { queue, links, metrics } = routing(ctx, config, hosts, log);
  const dispatcher = new Dispatcher(ctx, hosts, queue, reports, config.jobTimeoutMs);
  const jobs = new JobFrontDoor(ctx, { customers, dispatcher, usage, credit }, config.maxJobRounds);
  const parts = { queue, hosts, reports, usage, credit, metrics };
  const { frontDoor, settings } = siteServing({ ...ctx, log }, config, parts);
  const storage = edgeStorage(ctx, config, { hosts, usage, credit, log });

  if (!config.oracle) log.warn({}, "no --oracle: job reports are counted but not sent");
  if (!config.billing) log.warn({}, "no --billing: usage is not recorded");
  if (!ctx.paymentVault)
    log.warn(
      { allowed: customers.allowedCount },
      "no PaymentVault in the address book: serving the --allow-customers list",
    );

  const loops = workLoops(ctx, config, {
    hosts,
    reports,
    credit,
    storage: storage.service,
    repair: storage.repair,
    queueUsage,
    log,
  });

  return {
    register(app: TypedApp) {
      registerGatewayRoutes(app, hosts, jobs);
      registerStorageRoutes(app, storage.service);
      links.attach(app.server);
    },
    async start() {
      for (const loop of loops) loop.start();
      await frontDoor?.start();
      // Certificates after the doors open (an order's challenge is answered at the HTTP door), D65.
      frontDoor?.startCerts();
    },
    async stop() {
      // Orders under way finish (or fail) while the doors still answer their challenges, then the doors close.
      await frontDoor?.stopCerts();
      await frontDoor?.stop();
      await Promise.all(loops.map((loop) => loop.stop()));
      await reports.queue();
      await queueUsage();
      store.save();
      queue.close(); // its placement tick (R20-5)
      storage.index.close();
    },
    async onAdmission(admitted: boolean) {
      if (!admitted) {
        await ctx.work.waitIdle();
        hosts.clear(); // an evicted gateway routes nothing (closes every host's link)
      }
    },
    onViewChange: () => hosts.prune(),
    status() {
      return {
        hosts: hosts.routable().length,
        registeredHosts: hosts.registered,
        hostRegions: hosts.regions(),
        rejectedHosts: hosts.rejectedCount,
        bannedHosts: hosts.bannedHosts(),
        resultsVerified: dispatcher.checked.verified,
        wrongResults: dispatcher.checked.wrong,
        replayEntries: { jobs: customers.replayEntries, hosts: hosts.replayEntries },
        jobsDispatched: jobs.dispatchedCount,
        ...queue.status(), // queueDepth, placement (D69)
        linksRefused: links.refused,
        ...(frontDoor?.status() ?? { frontDoor: null }),
        ...settings.status(),
        unhealthyHosts: hosts.unhealthyLinked,
        creditCustomers: credit?.known ?? 0,
        creditRefused: credit?.refusedCount ?? 0,
        counts: store.state.counts,
        reportSequence: store.state.sequence,
        pendingUsage: usage.pending,
        storage: {
          ...storage.index.counts,
          requestsServed: storage.service.requestsServed,
          repair: storage.repair.stats,
        },
      };
    },
    routableHosts: () => hosts.routable().length,
    load: () => ({ capacity: linkedCapacity(hosts), queueDepth: queue.depth }),
    /** Sites, blocklist and dispatch policy from a verified configuration (configured.ts, D54); throws: NACK. */
    applyConfig: (applied: AppliedConfig) => settings.apply(applied),
    /** Hosts the stargates call unhealthy get no new job (configured.ts, D54). */
    applyCatalogue: (catalogue: Catalogue) => settings.applyCatalogue(catalogue),
  };
}

/** D43: with billing and a PaymentVault, billing's credit decides whom to serve (it covers debt and balance). */
function creditLimiter(
  ctx: GatewayContext,
  config: GatewayConfig,
  log: GatewayContext["log"],
  queueUsage: () => Promise<void>,
): CreditLimiter | undefined {
  if (!config.billing || !ctx.paymentVault) return undefined;
  return new CreditLimiter(
    {
      signer: ctx.signer,
      log,
      pending: () => ctx.outgoing.pending(),
      queueUsage,
      flush: () => ctx.outgoing.flush(),
    },
    { billingUrl: config.billing, refreshMs: config.creditRefreshMs, maxStaleMs: config.creditMaxStaleMs },
  );
}

/** The gateway's periodic work: reports and usage to their services, credit from billing, deleted fragments. */
function workLoops(
  ctx: GatewayContext,
  config: GatewayConfig,
  parts: {
    hosts: HostRegistry;
    reports: JobReports;
    credit: CreditLimiter | undefined;
    storage: GatewayStorage;
    repair: StorageRepair;
    queueUsage: () => Promise<void>;
    log: GatewayContext["log"];
  },
): WorkLoop[] {
  const { hosts, reports, credit, storage, repair, queueUsage, log } = parts;
  /** Queues (reports or usage), then sends what the outbox holds. */
  const sender = (kind: "report" | "usage", queue: () => Promise<void>, intervalMs: number) =>
    new WorkLoop(
      async () => {
        await queue();
        await ctx.outgoing.flush();
      },
      intervalMs,
      (error) => log.warn({ err: error.message, kind }, "could not queue or send"),
    );
  return [
    ...(config.oracle
      ? [
          sender(
            "report",
            async () => {
              await collectTallies(hosts, reports, ctx.clock, config.jobTimeoutMs);
              await reports.queue();
            },
            config.reportIntervalMs,
          ),
        ]
      : []),
    ...(config.billing
      ? [
          sender(
            "usage",
            async () => {
              storage.accrueUsage(); // storage.byteHours (D75)
              await queueUsage();
            },
            config.usageFlushMs,
          ),
        ]
      : []),
    // Lost fragments rebuilt elsewhere (D75).
    new WorkLoop(
      () => repair.round(),
      config.storageRepairMs,
      (error) => log.warn({ err: error.message }, "storage repair round failed"),
    ),
    // Fragments of deleted objects whose hosts did not answer at the delete (D75).
    new WorkLoop(
      async () => void (await storage.sweepDeletes()),
      60_000,
      (error) => log.warn({ err: error.message }, "could not sweep deleted fragments"),
    ),
    ...(credit
      ? [
          new WorkLoop(
            () => credit.refresh(),
            config.creditRefreshMs,
            (error) => log.warn({ err: error.message }, "could not refresh customers' credit from billing"),
          ),
        ]
      : []),
  ];
}

/** Edge Storage's API (D75): the object index under --data-dir, owners' signed requests, placement on linked hosts. */
function edgeStorage(
  ctx: GatewayContext,
  config: GatewayConfig,
  parts: { hosts: HostRegistry; usage: UsageMeter; credit: CreditLimiter | undefined; log: GatewayContext["log"] },
): { service: GatewayStorage; index: StorageIndex; repair: StorageRepair } {
  const device = ctx.signer.account.address.toLowerCase();
  const index = new StorageIndex(join(config.dataDir, `${device}-storage.db`));
  const hosts = () =>
    parts.hosts
      .routable()
      .map(([host, entry]) => ({ host: host.toLowerCase(), link: entry.link, region: entry.region }));
  const service = new GatewayStorage(
    {
      index,
      auth: new StorageAuth(ctx.signer),
      hosts,
      usage: parts.usage,
      credit: parts.credit,
      log: parts.log,
      onBadFragment: (objectId, index, host) => repair.reportBad(objectId, index, host),
    },
    ctx.signer.chainId,
    { quotaBytes: config.storageQuotaMb * 1024 * 1024, maxObjects: DEFAULT_MAX_OBJECTS, callTimeoutMs: 10_000 },
  );
  const repair = new StorageRepair({ index, hosts, log: parts.log }, service, {
    graceMs: config.storageRepairGraceMs,
    maxObjects: 256,
    callTimeoutMs: 10_000,
  });
  return { service, index, repair };
}

/** The jobs the linked hosts run at once, together. */
const linkedCapacity = (hosts: HostRegistry) =>
  hosts.routable().reduce((sum, [, entry]) => sum + entry.link.capacity, 0);

/** The job queue hosts pull from, their links, and the content delivery metrics (D44). */
function routing(
  ctx: GatewayContext,
  config: GatewayConfig,
  hosts: HostRegistry,
  log: GatewayContext["log"],
): { queue: JobQueue<HostLink>; links: HostLinks; metrics: CdnMetrics } {
  let metrics: CdnMetrics | undefined;
  const queue = new JobQueue<HostLink>(
    {
      maxLength: config.queueMax,
      maxWaitMs: config.queueWaitMs,
      onStart: (waitedMs) => metrics?.queueWait.observe(waitedMs / 1000),
    },
    (link) => hosts.usable(link),
    (except, eligible) => hosts.anyRoutable(except, eligible),
  );
  const links = new HostLinks({ log }, routeLinks(hosts, queue), config.linkPingMs);
  metrics = createCdnMetrics(ctx.metrics.registry, {
    queueDepth: () => queue.depth,
    linkedHosts: () => hosts.routable().length,
    capacity: () => linkedCapacity(hosts),
  });
  createPlacementMetrics(ctx.metrics.registry, queue);
  return { queue, links, metrics };
}
