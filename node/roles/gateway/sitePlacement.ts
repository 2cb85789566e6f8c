/**
 * A site's placement at the gateway (issue 20, D69): whether this gateway serves the site at all (else 421
 * EDGE_NODE_PLACEMENT: another gateway does), and which hosts its jobs may run on, for the queue (queue.ts
 * `eligible`, never bypassed; `rank`, a dynamic site's own-region hosts first). The rules are node/placement's.
 */
import type { Region } from "../../../offchain/common/protocol/regions";
import { nodeError } from "../../errors";
import { allows, compilePolicy, gatewayRefusal } from "../../placement";
import type { HostLink } from "./links";
import type { QueuedJob } from "./queue";
import type { Site } from "./sites";

/** Throws 421 EDGE_NODE_PLACEMENT when this gateway (`device` in `region`) may not serve `site`. */
export function checkPlacement(site: Site, region: Region | undefined, device: string): void {
  const refusal = gatewayRefusal(site.placement, region, device);
  if (refusal) throw nodeError(refusal.code, refusal.message);
}
/**
 * The hosts a site's jobs may run on (D69): with a placement, only those it allows (`eligible`, never bypassed by
 * the queue); a dynamic site's own-region hosts first (`rank`). Without one, nothing: any host.
 */
export function hostsFor(site: Site, region: Region | undefined): Pick<QueuedJob<HostLink>, "eligible" | "rank"> {
  if (!site.placement) return {};
  const policy = compilePolicy(site.placement);
  const eligible = (link: HostLink) => allows(policy, link.region, link.host, "host");
  if (policy.mode !== "dynamic" || !region) return { eligible };
  const own = (link: HostLink) => (link.region?.country === region.country && link.region.region === region.region ? 0 : 1); // prettier-ignore
  return { eligible, rank: own };
}
