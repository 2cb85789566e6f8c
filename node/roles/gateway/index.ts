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
  const customers = new Customers(ctx, config.allowCustomers);
  const reports = new JobReports(ctx, store, config.oracle !== undefined);
  const usage = new UsageMeter(ctx, store, config.billing !== undefined);
  const dispatcher = new Dispatcher(ctx, hosts, reports, config.jobTimeoutMs);
  const jobs = new JobFrontDoor(ctx, { customers, dispatcher, usage }, config.maxJobRounds);

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
    ...(config.billing ? [sender("usage", () => usage.queue(), config.usageFlushMs)] : []),
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
      await usage.queue();
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
        counts: store.state.counts,
        reportSequence: store.state.sequence,
        pendingUsage: usage.pending,
      };
    },
    routableHosts: () => hosts.routable().length,
  };
}
