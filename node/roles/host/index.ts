/**
 * Host role: keeps one outbound link to its gateway while admitted and serving (link.ts, D44), and runs the jobs
 * the gateway sends over it (jobs.ts): content delivery from its cache or the site's origin, the compute job,
 * and Edge Storage's fragments (fragmentJobs.ts, fragments.ts). It says how many jobs it runs at once
 * (`--capacity`); the gateway never sends more. When it is no longer admitted (or drains) it finishes what is in
 * flight and closes the link. The gateway asks it for its signed tally of the jobs it returned there (tallies.ts,
 * F11) before each job report, when the deployment has epochs.
 */
import { join } from "node:path";

import type { EpochClock } from "../../../offchain/common/epochs";
import type { TypedApp } from "../../../offchain/common/http";
import type { NodeConfig } from "../../config";
import type { HostConfig, RoleContext, RoleModule } from "../../context";
import { HostCache } from "./cache";
import { FragmentJobs } from "./fragmentJobs";
import { FragmentStore } from "./fragments";
import { createFragmentMetrics } from "./fragmentsMetrics";
import { HostJobs } from "./jobs";
import { GatewayLink } from "./link";
import { createOriginFetcher } from "./origin";
import { HostTallies } from "./tallies";

export { runJob, runJobAsync } from "./compute";

const MB = 1024 * 1024;

export function createHost(
  ctx: RoleContext,
  config: HostConfig & Pick<NodeConfig, "dataDir" | "storageMemoryMb">,
  clock: EpochClock | null = null,
): RoleModule {
  if (!config.gateway) throw new Error("a host needs the URL of its gateway (--gateway)");
  const log = ctx.log.child({ component: "host" });
  const device = ctx.signer.account.address.toLowerCase();
  const dir = join(config.dataDir, `${device}-host`);
  const tallies = clock && new HostTallies(dir, ctx.signer, clock);
  const origin = createOriginFetcher({
    headersTimeoutMs: config.jobTimeoutMs,
    bodyTimeoutMs: config.jobTimeoutMs,
    allowPrivateOrigins: config.allowPrivateOrigins,
  });
  const cache = new HostCache({
    origin,
    dir: join(dir, "cache"),
    memoryBytes: config.cacheMemoryMb * MB,
    diskBytes: config.cacheDiskMb * MB,
    log,
  });
  // Edge Storage fragments (issue 21): opened (loaded from disk) now; the gateway reaches them over the link.
  const fragments = new FragmentStore({
    dir: join(dir, "fragments"),
    budgetBytes: config.storageMemoryMb * MB,
    log: log.child({ component: "host-storage" }),
  });
  createFragmentMetrics(ctx.metrics.registry, () => fragments.stats());
  const gateway = () => link.gatewayDevice;
  const memoryBytes = config.cacheMemoryMb * MB;
  const jobs = new HostJobs(
    { ...ctx, log },
    {
      ...{ cache, memoryBytes, tallies, gateway, maxJobRounds: config.maxJobRounds },
      fragments: new FragmentJobs(fragments, ctx.serving),
    },
  );
  const link: GatewayLink = new GatewayLink(
    { signer: ctx.signer, log },
    config.gateway.replace(/\/$/, ""),
    { capacity: config.capacity, publicUrl: () => config.publicUrl, region: config.region },
    (request, response) => jobs.handle(request, response),
  );

  return {
    register(_app: TypedApp) {},
    start() {
      if (ctx.serving()) void link.want();
    },
    async stop() {
      await link.leave();
      await cache.close();
      await fragments.close();
      await origin.close();
    },
    async onAdmission(admitted: boolean) {
      if (admitted) await link.want();
      else {
        // Finish what is in flight, then leave: the gateway stops routing here at once anyway.
        await ctx.work.waitIdle();
        await link.leave();
      }
    },
    onViewChange() {},
    status() {
      const { gateway: url, connected, connectedAt, connections, capacity, lastError } = link.status();
      return {
        gateway: url,
        registered: connected,
        registeredAt: connectedAt,
        connections,
        capacity,
        jobsExecuted: jobs.executed,
        cache: cache.stats(),
        storage: fragments.stats(),
        lastError,
        ...tallies?.status(),
      };
    },
    routableHosts: () => 0,
    load: () => ({ capacity: config.capacity, queueDepth: 0 }),
    /**
     * A host uses no section of the network configuration today (D54): it validates nothing it does not use, so
     * every version the subscriber verified (anchored hash, delta signer) is acknowledged as it is.
     */
    applyConfig() {},
  };
}
