/**
 * Edge DNS index (D57): what answers are read from, rebuilt only when the configuration or the catalogue object
 * changes (they are replaced, never mutated), never per query; zones per zone, reused across configurations by a
 * hash of their content and, in the server, indexed off the query path (R18-3, `DnsIndexer.current`).
 *
 * - Zones: `indexZones` of the configuration's zones; an invalid zone is logged once per distinct set of problems
 *   and counted (edge_dns_zones{state="invalid"}), never served.
 * - Site names: every site's `hostname` (lower-case, the trailing dot removed).
 * - Gateways: the catalogue's endpoints of role gateway, healthy, not in the configuration's `draining`; the
 *   address is the IP literal of the endpoint's URL (the URL its signed hello names: no stargate invents one). A URL
 *   naming a host instead of an IP is not answered.
 * - Regions (issue 20, D69): a site's answer is the serving gateways its placement allows (static: the gateways or
 *   regions listed; enforced: gateways declaring a listed country, never any other, SERVFAIL when none serves),
 *   and of those, when the client's region is known (dnsRegions.ts), only the nearest region's: the client's own,
 *   else the closest by the configuration's latency table, undeclared gateways last; a dynamic site's, the nearest
 *   region its gateways' load has not spilled it from (dnsSpill.ts, D71). Each (policy, client region) pair is
 *   grouped once per index. A site whose placement is malformed is not served (as gateways refuse it).
 */
import { isIPv4, isIPv6 } from "node:net";

import type { FastifyBaseLogger } from "fastify";

import { type NetworkConfig, placementProblem } from "../../../offchain/common/protocol";
import type { Placement } from "../../../offchain/common/protocol/placement";
import { type Region, regionKey } from "../../../offchain/common/protocol/regions";
import { type CompiledPolicy, allows, compilePolicy } from "../../placement";
import type { Zone } from "../../../offchain/common/protocol/zones";
import type { Catalogue } from "../../context";
import type { DnsIndex, Gateways } from "./dnsAnswer";
import { ClientRegions } from "./dnsRegions";
import type { DnsSpill } from "./dnsSpill";
import { ZoneIndexCache, type ZonesIndex } from "./dnsZones";

const NAME = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * The sites' hostnames of a configuration (sites are validated by gateways; here only the name and owner are read).
 * A hostname at or below a customer's zone is a site only when the site's owner is the zone's owner (R18-1): else
 * the zone's own records answer there, whatever the configuration holds.
 */
export function siteNames(sites: readonly unknown[], zones: readonly Zone[] = []): Set<string> {
  const owners = new Map(zones.map((z) => [z.name, z.owner.toLowerCase()]));
  const out = new Set<string>();
  for (const site of sites) {
    const { hostname, owner } = (site ?? {}) as { hostname?: unknown; owner?: unknown };
    if (typeof hostname !== "string") continue;
    const name = hostname.toLowerCase().replace(/\.$/, "");
    if (name.length > 253 || !NAME.test(name)) continue;
    const zoneOwner = closestOwner(owners, name);
    if (zoneOwner === undefined || (typeof owner === "string" && owner.toLowerCase() === zoneOwner)) out.add(name);
  }
  return out;
}

/** The owner of the closest zone at or above `name`, if any. */
function closestOwner(owners: ReadonlyMap<string, string>, name: string): string | undefined {
  for (let n = name; ; n = n.slice(n.indexOf(".") + 1)) {
    const owner = owners.get(n);
    if (owner !== undefined || !n.includes(".")) return owner;
  }
}

/** The DNS address of an endpoint URL: its host if that is an IP literal. */
export function urlAddress(url: string): { a?: string; aaaa?: string } {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return {};
  }
  if (isIPv4(host)) return { a: host };
  const bare = host.startsWith("[") ? host.slice(1, -1) : host;
  return isIPv6(bare) ? { aaaa: bare } : {};
}

/** A serving gateway: its device, declared region and the address its URL names. */
export interface ServingGateway {
  device: string;
  region?: Region;
  a?: string;
  aaaa?: string;
}

/** The serving gateways: gateway, healthy, not draining, an IP literal URL. */
export function servingEndpoints(catalogue: Catalogue, draining: readonly string[] | undefined): ServingGateway[] {
  const drained = new Set((draining ?? []).map((d) => d.toLowerCase()));
  const out: ServingGateway[] = [];
  for (const e of catalogue.endpoints) {
    if (e.role !== "gateway" || !e.healthy || drained.has(e.device.toLowerCase())) continue;
    const address = urlAddress(e.url);
    if (address.a || address.aaaa) out.push({ device: e.device.toLowerCase(), region: e.region, ...address });
  }
  return out;
}

/** The addresses of `gateways`, sorted, no duplicates. */
export function addressesOf(gateways: readonly ServingGateway[]): Gateways {
  const a = new Set<string>();
  const aaaa = new Set<string>();
  for (const g of gateways) {
    if (g.a) a.add(g.a);
    if (g.aaaa) aaaa.add(g.aaaa);
  }
  return { a: [...a].sort(), aaaa: [...aaaa].sort() };
}

/** The serving gateways' addresses: gateway, healthy, not draining, an IP literal URL; sorted, no duplicates. */
export function servingGateways(catalogue: Catalogue, draining: readonly string[] | undefined): Gateways {
  return addressesOf(servingEndpoints(catalogue, draining));
}

/** The sites' valid placement policies by hostname, and the hostnames whose placement is malformed. */
export function sitePolicies(sites: readonly unknown[]): { policies: Map<string, CompiledPolicy>; bad: Set<string> } {
  const policies = new Map<string, CompiledPolicy>();
  const bad = new Set<string>();
  for (const site of sites) {
    const { hostname, placement } = (site ?? {}) as { hostname?: unknown; placement?: unknown };
    if (typeof hostname !== "string" || placement === undefined) continue;
    const name = hostname.toLowerCase().replace(/\.$/, "");
    if (placementProblem(placement) !== undefined) bad.add(name);
    else policies.set(name, compilePolicy(placement as Placement));
  }
  return { policies, bad };
}

/**
 * The gateways a site with `policy` (undefined: none) may be answered with for a client in `client` (a region key,
 * or undefined when unknown): those the policy allows; with a known client region, grouped by region in order from
 * the client's (`order`, nearest first: undeclared gateways only when no allowed gateway declared a region). The
 * answer is `byRegion.get(order[0])`, or, for a dynamic site, the region DnsSpill picks.
 */
export interface Choice {
  all: Gateways;
  order: readonly string[];
  byRegion: ReadonlyMap<string, Gateways>;
}

export function choices(
  serving: readonly ServingGateway[],
  regions: ClientRegions,
  policy: CompiledPolicy | undefined,
  client: string | undefined,
): Choice {
  const allowed = policy ? serving.filter((g) => allows(policy, g.region, g.device, "gateway")) : serving;
  const all = addressesOf(allowed);
  if (client === undefined || allowed.length === 0) return { all, order: [], byRegion: new Map() };
  const byRegion = new Map<string, ServingGateway[]>();
  for (const g of allowed) {
    const key = g.region ? regionKey(g.region) : "";
    const list = byRegion.get(key);
    if (list) list.push(g);
    else byRegion.set(key, [g]);
  }
  const declared = [...byRegion.keys()].filter((k) => k !== "");
  const order = declared.length > 0 ? regions.orderFrom(client, declared) : [""];
  return { all, order, byRegion: new Map(order.map((k) => [k, addressesOf(byRegion.get(k)!)])) };
}

/** The answer of a choice: the nearest region's gateways (a dynamic site's: the region `spill` picks). */
export function answerOf(choice: Choice, site: string, policy: CompiledPolicy | undefined, spill?: DnsSpill): Gateways {
  if (choice.order.length === 0) return choice.all;
  const key = policy?.dynamic && spill ? spill.pick(site, choice.order, policy.dynamic) : choice.order[0];
  return choice.byRegion.get(key)!;
}

export interface IndexOptions {
  siteTtl: number;
  nameserver: string;
  /** Index a changed configuration's zones off the query path (the server); tests' indexers build at once. */
  background?: boolean;
  log: Pick<FastifyBaseLogger, "warn">;
  /** Dynamic sites' spill between regions (D71); without it a dynamic site's clients go to the nearest region. */
  spill?: DnsSpill;
}

export class DnsIndexer {
  private config: NetworkConfig | undefined;
  private catalogue: Catalogue | undefined;
  private zones: ZonesIndex | undefined;
  /** The configuration `zones` was built from. */
  private zonesOf: NetworkConfig | undefined;
  private sites = new Set<string>();
  private policies: ReturnType<typeof sitePolicies> | undefined;
  private clientRegions: ClientRegions | undefined;
  private regionsFor: NetworkConfig | undefined;
  private index: DnsIndex | undefined;
  /** zone name -> its problems as last logged */
  private readonly logged = new Map<string, string>();
  private readonly cache = new ZoneIndexCache();
  private building: Promise<void> | undefined;

  constructor(private readonly options: IndexOptions) {}

  /** Zones indexed and reused by the last build of the zones (R18-3). */
  get stats(): { indexed: number; reused: number } {
    return { ...this.cache.stats };
  }

  /**
   * The index for this configuration and catalogue (undefined before a configuration). Site names and gateways
   * follow at once. Zones: the first configuration's are indexed at once; with `background`, a later
   * configuration's are indexed off the query path (`ZoneIndexCache.build`, unchanged zones reused) while
   * answers come from the previous zones, and the index is replaced when they are ready (R18-3).
   */
  current(config: NetworkConfig | undefined, catalogue: Catalogue): DnsIndex | undefined {
    if (config === this.config && catalogue === this.catalogue) return this.index;
    if (!config) return (this.index = undefined);
    if (config !== this.config) {
      this.policies = sitePolicies(config.sites);
      this.sites = siteNames(config.sites, config.zones);
      for (const name of this.policies.bad) this.sites.delete(name);
      if (this.policies.bad.size > 0)
        this.options.log.warn({ sites: [...this.policies.bad].slice(0, 10) }, "DNS: sites with a malformed placement are not served"); // prettier-ignore
      if (!this.zones || !this.options.background) this.zonesFor(config, this.cache.buildSync(config.zones, config.version)); // prettier-ignore
    }
    if (config !== this.config) this.options.spill?.retain(new Set(this.policies!.policies.keys()));
    this.config = config;
    this.catalogue = catalogue;
    this.index = this.assemble();
    if (this.zonesOf !== config && !this.building) this.building = this.rebuild();
    return this.index;
  }

  /** Resolves once the zones of the latest configuration are in the index. */
  async settled(): Promise<void> {
    while (this.building) await this.building;
  }

  private assemble(): DnsIndex {
    const serving = servingEndpoints(this.catalogue!, this.config!.draining);
    const gateways = addressesOf(serving);
    const regions = this.regionsOf(this.config!);
    const { policies } = this.policies!;
    const spill = this.options.spill;
    const chosen = new Map<CompiledPolicy | undefined, Map<string, Choice>>();
    return {
      version: this.config!.version,
      zones: this.zones!,
      sites: this.sites,
      gateways,
      regions,
      gatewaysFor(site: string, client: string | undefined): Gateways {
        const policy = policies.get(site);
        if (policy === undefined && (client === undefined || regions.empty)) return gateways;
        let byClient = chosen.get(policy);
        if (!byClient) chosen.set(policy, (byClient = new Map()));
        const key = client ?? "";
        let choice = byClient.get(key);
        if (!choice) byClient.set(key, (choice = choices(serving, regions, policy, client)));
        return answerOf(choice, site, policy, spill);
      },
      siteTtl: this.options.siteTtl,
      nameserver: this.options.nameserver,
    };
  }

  /** The client regions table of `config`, rebuilt only when the configuration changes. */
  private regionsOf(config: NetworkConfig): ClientRegions {
    if (this.regionsFor !== config) {
      this.clientRegions = new ClientRegions(config.regions);
      this.regionsFor = config;
    }
    return this.clientRegions!;
  }

  private zonesFor(config: NetworkConfig, zones: ZonesIndex): void {
    this.zones = zones;
    this.zonesOf = config;
    this.report(zones);
  }

  private async rebuild(): Promise<void> {
    try {
      await new Promise((resolve) => setImmediate(resolve)); // not in the query that saw the change
      while (this.config && this.zonesOf !== this.config) {
        const config = this.config;
        const zones = await this.cache.build(config.zones, config.version);
        if (config !== this.config) continue; // a newer one came meanwhile: build that
        this.zonesFor(config, zones);
        this.index = this.assemble();
      }
    } catch (error) {
      this.options.log.warn({ err: (error as Error).message }, "DNS: indexing the zones failed");
    } finally {
      this.building = undefined;
    }
  }

  private report(zones: ZonesIndex): void {
    const now = new Map(zones.invalid.map((z) => [z.name, z.problems.join("; ")]));
    for (const [name, problems] of now) {
      if (this.logged.get(name) === problems) continue;
      this.options.log.warn({ zone: name, problems }, "a DNS zone is not served: it has problems");
    }
    this.logged.clear();
    for (const [name, problems] of now) this.logged.set(name, problems);
  }
}
