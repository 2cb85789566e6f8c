/**
 * Who may hold which DNS names (issue 18 review, D62): shared by the sites and zones routes of the Network API
 * (api.ts, apiZones.ts), checked under the authority's lock against the configuration in force.
 */
import * as psl from "psl";

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

/**
 * Whether `name` is itself a public suffix (co.uk, github.io: R18-4), by the Public Suffix List that the `psl`
 * package embeds (pinned; nothing is downloaded at run time). A name the list does not know is no suffix.
 */
export function isPublicSuffix(name: string): boolean {
  const parsed = psl.parse(name);
  if ("error" in parsed && parsed.error) return false;
  const domain = parsed as psl.ParsedDomain;
  return domain.listed && domain.tld === name;
}

/** How long a removed apex stays its last owner's (R18-4): no one else may claim it meanwhile. */
export const APEX_HOLD_MS = 24 * 60 * 60 * 1000;

/**
 * Apexes removed in the last APEX_HOLD_MS and their last owner, kept by the stargate that holds the authority (every
 * write runs there, under its lock). In memory: a restart of that stargate, or a move of the authority, forgets them.
 */
export class ApexHolds {
  private readonly held = new Map<string, { owner: string; until: number }>();

  constructor(private readonly now: () => number) {}

  hold(apex: string, owner: string): void {
    const now = this.now();
    if (this.held.size >= 100_000) for (const [k, v] of this.held) if (v.until <= now) this.held.delete(k);
    this.held.set(apex, { owner: owner.toLowerCase(), until: now + APEX_HOLD_MS });
  }

  /** The owner `apex` is held for, if the hold runs and it is not `owner`. */
  heldFrom(apex: string, owner: string): { owner: string; until: number } | undefined {
    const hold = this.held.get(apex);
    if (!hold || hold.until <= this.now() || hold.owner === owner.toLowerCase()) return undefined;
    return hold;
  }
}
