/**
 * A site's placement at the gateway (issue 20, D69): whether this gateway serves the site at all (else 421
 * EDGE_NODE_PLACEMENT: another gateway does), and what the queue places its jobs by (queue.ts: the placement
 * engine's decisions, never bypassed). The rules are node/placement's.
 */
import type { Region } from "../../../offchain/common/protocol/regions";
import { nodeError } from "../../errors";
import { gatewayRefusal } from "../../placement";
import type { HostLink } from "./links";
import type { QueuedJob } from "./queue";
import type { Site } from "./sites";

/** Throws 421 EDGE_NODE_PLACEMENT when this gateway (`device` in `region`) may not serve `site`. */
export function checkPlacement(site: Site, region: Region | undefined, device: string): void {
  const refusal = gatewayRefusal(site.placement, region, device);
  if (refusal) throw nodeError(refusal.code, refusal.message);
}
/**
 * What the queue needs to place a site's job (D69): the site (its id, the key of its spill state, and its
 * placement: the engine never places a job outside it) and this gateway's region (a dynamic site's first region).
 */
export function hostsFor(site: Site, region: Region | undefined): Pick<QueuedJob<HostLink>, "site" | "origin"> {
  return { site: { name: site.id, placement: site.placement }, origin: region };
}
