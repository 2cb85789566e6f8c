/**
 * Who may hold which DNS names (issue 18 review, D62): shared by the sites and zones routes of the Network API
 * (api.ts, apiZones.ts), checked under the authority's lock against the configuration in force.
 */
import type { NetworkConfig } from "../../../offchain/common/protocol";
import type { Zone } from "../../../offchain/common/protocol/zones";

/** `name` is `apex` or a name below it. */
export const within = (name: string, apex: string) => name === apex || name.endsWith(`.${apex}`);
export const sameOwner = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Another owner's zone that `hostname` is at or below (R18-1: a site there would take over its names). */
export function zoneHolding(current: NetworkConfig, hostname: string, owner: string): Zone | undefined {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  return current.zones.find((z) => !sameOwner(z.owner, owner) && within(name, z.name));
}
