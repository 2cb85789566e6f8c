/**
 * Host role: registers with its gateway while admitted (GatewaySession, every --register-interval-ms), executes
 * the jobs the gateway sends (compute.ts), and leaves the gateway when it is no longer admitted (or drains).
 * Only requests carrying the session's bearer token are executed. Each result goes back with the host's own
 * signed tally of the jobs it returned at that gateway in the epoch (tallies.ts, F11), when the deployment has
 * epochs (RewardsManager).
 */
import { join } from "node:path";

import type { EpochClock } from "../../../offchain/common/epochs";
import type { TypedApp } from "../../../offchain/common/http";
import { HostJobBodySchema, type HostJobReply } from "../../../offchain/common/protocol";
import { WorkLoop } from "../../../offchain/common/workLoop";
import type { NodeConfig } from "../../config";
import type { HostConfig, RoleContext, RoleModule } from "../../context";
import { nodeError } from "../../errors";
import { assertJobSize, assertServing } from "../jobChecks";
import { runJobAsync } from "./compute";
import { GatewaySession } from "./session";
import { HostTallies } from "./tallies";

export { runJob, runJobAsync } from "./compute";

export function createHost(
  ctx: RoleContext,
  config: HostConfig & Pick<NodeConfig, "dataDir">,
  clock: EpochClock | null = null,
): RoleModule {
  if (!config.gateway) throw new Error("a host needs the URL of its gateway (--gateway)");
  const log = ctx.log.child({ component: "host" });
  const session = new GatewaySession(
    { signer: ctx.signer, log },
    config.gateway.replace(/\/$/, ""),
    () => config.publicUrl,
  );
  // Re-registering keeps the host routable at the gateway (which forgets hosts it has not heard from).
  const registration = new WorkLoop(
    async () => {
      if (ctx.serving()) await session.register();
    },
    config.registerIntervalMs,
    () => undefined, // the session logs its own failures
  );
  let executed = 0;
  const device = ctx.signer.account.address.toLowerCase();
  const tallies = clock && new HostTallies(join(config.dataDir, `${device}-host`), ctx.signer, clock);

  return {
    register(app: TypedApp) {
      app.post("/jobs", { schema: { body: HostJobBodySchema } }, async (request): Promise<HostJobReply> => {
        const body = request.body;
        assertServing(ctx.serving(), "host");
        if (!session.authorizes(request.headers.authorization)) {
          throw nodeError("EDGE_NODE_UNAUTHORIZED", "jobs come from this host's gateway only");
        }
        assertJobSize(body.rounds, config.maxJobRounds);
        return ctx.work.track(async () => {
          const result = await runJobAsync(body.payload, body.rounds);
          executed += 1;
          ctx.metrics.jobs.inc({ outcome: "executed" });
          const gateway = session.gatewayDevice;
          const reply: HostJobReply = { jobId: body.jobId, result, host: ctx.signer.account.address };
          if (tallies && gateway) reply.tally = await tallies.returned(gateway);
          return reply;
        });
      });
    },
    start() {
      registration.start();
    },
    async stop() {
      await registration.stop();
      await session.leave();
    },
    async onAdmission(admitted: boolean) {
      if (admitted) await session.register();
      else {
        // Finish what is in flight, then leave: the gateway stops routing here at once anyway.
        await ctx.work.waitIdle();
        await session.leave();
      }
    },
    onViewChange() {},
    status() {
      const { gateway, registered, registeredAt, lastError } = session.status();
      return { gateway, registered, registeredAt, jobsExecuted: executed, lastError, ...tallies?.status() };
    },
    routableHosts: () => 0,
  };
}
