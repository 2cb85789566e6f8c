/**
 * Gateway role: accepts hosts that prove they hold an admitted host device key (hosts.ts), accepts client jobs
 * from customers in good standing (customers.ts, jobs.ts), dispatches them to admitted hosts only
 * (dispatch.ts), counts the jobs each host returned per epoch, and sends signed job reports to the oracle
 * (reports.ts) and signed usage batches to billing (usage.ts) through the outbox, each on its own work loop.
 * Counts and sequence numbers persist in the gateway's state file (state.ts).
 *
 * A host stops receiving jobs the moment the gateway's own chain view says it is no longer admitted, whatever
 * the host does. While the view is stale, hosts already routed keep working but no new host is accepted.
 */
import { join } from "node:path";

import type { TypedApp } from "../../../offchain/common/http";
import { WorkLoop } from "../../../offchain/common/workLoop";
import type { GatewayConfig, GatewayContext, RoleModule } from "../../context";
import { CreditLimiter } from "./credit";
import { Customers } from "./customers";
import { Dispatcher } from "./dispatch";
import { HostRegistry } from "./hosts";
import { JobFrontDoor } from "./jobs";
import { JobReports } from "./reports";
import { registerGatewayRoutes } from "./routes";
import { GatewayStateFile } from "./state";
import { UsageMeter } from "./usage";

export { SIGNATURE_WINDOW_SECONDS } from "./customers";

export function createGateway(ctx: GatewayContext, config: GatewayConfig): RoleModule {
  const log = ctx.log.child({ component: "gateway" });
  const device = ctx.signer.account.address;
  const store = new GatewayStateFile(join(config.dataDir, `${device.toLowerCase()}-gateway`));
  const hosts = new HostRegistry({ ...ctx, log }, config.registerIntervalMs * 3);
  const reports = new JobReports(ctx, store, config.oracle !== undefined);
  const usage = new UsageMeter(ctx, store, config.billing !== undefined);
  // One queue at a time: the usage loop, the credit refresh and stop() all queue the meter.
  let queueing: Promise<void> = Promise.resolve();
  const queueUsage = () => (queueing = queueing.catch(() => undefined).then(() => usage.queue()));
  // D43: with billing and a PaymentVault, billing's credit decides whom to serve (it covers debt and balance).
  const credit =
    config.billing && ctx.paymentVault
      ? new CreditLimiter(
          {
            signer: ctx.signer,
            log,
            pending: () => ctx.outgoing.pending(),
            queueUsage,
            flush: () => ctx.outgoing.flush(),
          },
          { billingUrl: config.billing, refreshMs: config.creditRefreshMs, maxStaleMs: config.creditMaxStaleMs },
        )
      : undefined;
  const customers = new Customers({ ...ctx, creditBound: credit !== undefined }, config.allowCustomers);
  const dispatcher = new Dispatcher(ctx, hosts, reports, config.jobTimeoutMs);
  const jobs = new JobFrontDoor(ctx, { customers, dispatcher, usage, credit }, config.maxJobRounds);

  if (!config.oracle) log.warn({}, "no --oracle: job reports are counted but not sent");
  if (!config.billing) log.warn({}, "no --billing: usage is not recorded");
  if (!ctx.paymentVault)
    log.warn(
      { allowed: customers.allowedCount },
      "no PaymentVault in the address book: serving the --allow-customers list",
    );

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
  const loops = [
    ...(config.oracle ? [sender("report", () => reports.queue(), config.reportIntervalMs)] : []),
    ...(config.billing ? [sender("usage", queueUsage, config.usageFlushMs)] : []),
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

  return {
    register(app: TypedApp) {
      registerGatewayRoutes(app, hosts, jobs);
    },
    start() {
      for (const loop of loops) loop.start();
    },
    async stop() {
      await Promise.all(loops.map((loop) => loop.stop()));
      await reports.queue();
      await queueUsage();
      store.save();
    },
    async onAdmission(admitted: boolean) {
      if (!admitted) {
        await ctx.work.waitIdle();
        hosts.clear(); // an evicted gateway routes nothing
      }
    },
    onViewChange: () => hosts.prune(),
    status() {
      return {
        hosts: hosts.routable().length,
        registeredHosts: hosts.registered,
        rejectedHosts: hosts.rejectedCount,
        bannedHosts: hosts.bannedHosts(),
        resultsVerified: dispatcher.checked.verified,
        wrongResults: dispatcher.checked.wrong,
        replayEntries: { jobs: customers.replayEntries, hosts: hosts.replayEntries },
        jobsDispatched: jobs.dispatchedCount,
        creditCustomers: credit?.known ?? 0,
        creditRefused: credit?.refusedCount ?? 0,
        counts: store.state.counts,
        reportSequence: store.state.sequence,
        pendingUsage: usage.pending,
      };
    },
    routableHosts: () => hosts.routable().length,
  };
}
