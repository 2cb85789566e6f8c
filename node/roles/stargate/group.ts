/**
 * The stargate's membership of the serving group (issue 18, D59). Leaving withdraws its DNS announcement
 * (dns.leave(): the announcer sends new flows to the other members; what still arrives is answered) and sends its
 * configuration subscribers to the other stargates: the configuration server refuses new subscriptions with
 * UNAVAILABLE "the stargate is leaving its group" and ends the current streams, so each node moves on to the next
 * stargate of its --stargates list and resumes from the version it holds (nothing is lost: the next stargate sends
 * what it lacks). Joining undoes both. Both are idempotent; the daemon exposes them as POST /admin/leave and
 * POST /admin/join (node/routes.ts). A restarted stargate starts in its group.
 */
import { Gauge } from "prom-client";

import type { StargateContext } from "../../context";
import { nodeError } from "../../errors";
import type { DnsServer } from "./dns";

export const LEAVING_REASON = "the stargate is leaving its group";

export interface GroupSeams {
  dns: DnsServer | undefined;
  /** The configuration server: its subscribers, and the switch that refuses and ends their streams. */
  server: { subscribers(): { connected: boolean }[]; setLeaving(reason: string | undefined): void };
  ctx?: Pick<StargateContext, "log" | "metrics">;
}

export interface Group {
  leave(): Promise<Record<string, unknown>>;
  join(): Promise<Record<string, unknown>>;
  status(): Record<string, unknown>;
}

export function createGroup(seams: GroupSeams): Group {
  let inGroup = true;
  const log = seams.ctx?.log.child({ component: "group" });
  if (seams.ctx)
    new Gauge({
      name: "edge_group_in_group",
      help: "1 while the stargate is in its serving group (not left for a rollout), else 0",
      registers: [seams.ctx.metrics.registry],
      collect() {
        this.set(inGroup ? 1 : 0);
      },
    });
  const status = () => ({
    inGroup,
    subscribers: seams.server.subscribers().filter((s) => s.connected).length,
  });
  return {
    async leave() {
      if (inGroup) log?.info({ subscribers: status().subscribers }, "leaving the serving group");
      inGroup = false;
      seams.server.setLeaving(LEAVING_REASON);
      await seams.dns?.leave().catch(announcerFailed);
      return status();
    },
    async join() {
      if (!inGroup) log?.info({}, "joining the serving group");
      inGroup = true;
      seams.server.setLeaving(undefined);
      await seams.dns?.join().catch(announcerFailed);
      return status();
    },
    status,
  };
}

/** The route announcer (--dns-announce) did not take the change: 502, the group state stays as asked. */
function announcerFailed(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  throw nodeError("EDGE_NODE_ANNOUNCER_FAILED", `the route announcer did not take the change: ${message}`);
}
