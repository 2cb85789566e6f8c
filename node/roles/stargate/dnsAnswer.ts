/**
 * Edge DNS answers (D57): what the server answers for one question, read from the index (dnsZones.ts) and the
 * serving gateways; no I/O, no wire format (dnsWire.ts encodes, truncates and echoes EDNS).
 *
 * - A customer's zone: the records of the name and type (aa); a CNAME is followed inside its zone (and into site
 *   names, which are ours too), at most 8 links; a name below an NS cut is a referral (no aa, the NS in authority,
 *   glue in additional); NXDOMAIN or NODATA carry the zone's SOA in authority, its TTL the lesser of the SOA's TTL
 *   and its minimum (RFC 2308).
 * - A site's hostname: A/AAAA with the serving gateways its placement allows, the nearest region's when the
 *   client's region is known (dnsIndex.ts), rotated per query, TTL --dns-site-ttl; no serving gateway
 *   at all is SERVFAIL (a resolver tries another server). Other types: inside a customer's zone the zone's
 *   records, else the site is its own apex with a synthesized SOA (and NS --dns-nameserver).
 * - ANY: one record set (RFC 8482, R18-6): the apex's SOA, else the name's first set (an alias: its CNAME).
 * - Anything else: REFUSED (we are not a resolver).
 */
import type { Answer, SoaData } from "dns-packet";
import type { Address } from "viem";

import type { ZoneRecord } from "../../../offchain/common/protocol/zones";
import type { ClientRegions } from "./dnsRegions";
import { type IndexedZone, type ZoneType, type ZonesIndex, inside, txtStrings, zoneOf } from "./dnsZones";

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Kind = "zone" | "site" | "refused" | "malformed";

export interface Gateways {
  a: string[];
  aaaa: string[];
}

/** Everything an answer is read from; rebuilt when the configuration or the catalogue changes. */
export interface DnsIndex {
  version: number;
  zones: ZonesIndex;
  sites: Set<string>;
  /** Every serving gateway (whatever the site or client). */
  gateways: Gateways;
  /** The client regions table (dnsRegions.ts) of the configuration. */
  regions: ClientRegions;
  /** The gateways answered for `site` to a client in region `client` (a region key; undefined: unknown). */
  gatewaysFor(site: string, client: string | undefined): Gateways;
  siteTtl: number;
  nameserver: string;
}

export interface Reply {
  rcode: number;
  aa: boolean;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  kind: Kind;
  /** The zone's owner, billed for the query (zone answers only). */
  owner?: Address;
  /** Holds site records (rotated per query: not to be reused). */
  rotated?: boolean;
}

const MAX_CHAIN = 8;

const reply = (kind: Kind, rcode: number, aa: boolean, owner?: Address): Reply => ({
  rcode,
  aa,
  answers: [],
  authorities: [],
  additionals: [],
  kind,
  ...(owner && { owner }),
});

export const refused = (): Reply => reply("refused", RCODE.REFUSED, false);

function record(name: string, type: ZoneType, ttl: number, data: ZoneRecord["data"]): Answer {
  if (type === "TXT") return { name, type, ttl, class: "IN", data: txtStrings(data as string) };
  if (type === "MX") return { name, type, ttl, class: "IN", data: data as { preference: number; exchange: string } };
  return { name, type, ttl, class: "IN", data: data as string };
}

const soaRecord = (name: string, ttl: number, data: SoaData): Answer => ({ name, type: "SOA", ttl, class: "IN", data });

function zoneSoa(zone: IndexedZone): Answer {
  const { soa, ttl } = zone.zone;
  return soaRecord(zone.apex, ttl, { ...soa, serial: zone.serial });
}

/** The SOA a negative answer carries: its TTL the lesser of the SOA's and its minimum (RFC 2308 3). */
const negativeSoa = (soa: Answer): Answer => {
  const { data, ttl } = soa as { data: SoaData; ttl: number };
  return { ...soa, ttl: Math.min(ttl, data.minimum ?? 0) } as Answer;
};

function siteSoa(index: DnsIndex, site: string): Answer {
  const ns = index.nameserver;
  const data = { mname: ns, rname: `hostmaster.${ns}`, serial: index.version, refresh: 3600, retry: 600 };
  return soaRecord(site, index.siteTtl, { ...data, expire: 86_400, minimum: index.siteTtl });
}

/**
 * A/AAAA records of the gateways answered at `name` for a client in region `client`, rotated by `rotation`;
 * undefined when none serves.
 */
function siteRecords(index: DnsIndex, name: string, type: "A" | "AAAA", rotation: number, client?: string) {
  const { a, aaaa } = index.gatewaysFor(name, client);
  if (a.length + aaaa.length === 0) return undefined;
  const list = type === "A" ? a : aaaa;
  const out: Answer[] = [];
  for (let i = 0; i < list.length; i++) {
    out.push({ name, type, ttl: index.siteTtl, class: "IN", data: list[(i + rotation) % list.length] });
  }
  return out;
}

/** The delegation `name` falls under in `zone` (the cut closest to the apex), if any. */
function cutOf(zone: IndexedZone, name: string): string | undefined {
  if (zone.cuts.size === 0 || name === zone.apex) return undefined;
  const labels: string[] = [];
  for (let n = name; n !== zone.apex; n = n.slice(n.indexOf(".") + 1)) labels.push(n);
  for (let i = labels.length - 1; i >= 0; i--) if (zone.cuts.has(labels[i])) return labels[i];
  return undefined;
}

/** A/AAAA of in-zone targets (NS and MX names) for the additional section. */
function glue(zone: IndexedZone, targets: string[]): Answer[] {
  const out: Answer[] = [];
  for (const target of targets) {
    const types = zone.names.get(target);
    for (const type of ["A", "AAAA"] as const) {
      const set = types?.get(type);
      for (const data of set?.data ?? []) out.push(record(target, type, set!.ttl, data));
    }
  }
  return out;
}

function setRecords(zone: IndexedZone, name: string, type: ZoneType, out: Reply): void {
  const set = zone.names.get(name)?.get(type);
  if (!set) return;
  for (const data of set.data) out.answers.push(record(name, type, set.ttl, data));
  if (type === "NS") out.additionals.push(...glue(zone, set.data as string[]));
  if (type === "MX")
    out.additionals.push(
      ...glue(
        zone,
        set.data.map((d) => (d as { exchange: string }).exchange),
      ),
    );
}

function referral(zone: IndexedZone, cut: string, out: Reply): Reply {
  const set = zone.names.get(cut)!.get("NS")!;
  for (const data of set.data) out.authorities.push(record(cut, "NS", set.ttl, data));
  out.additionals.push(...glue(zone, set.data as string[]));
  if (out.answers.length === 0) out.aa = false;
  return out;
}

/** Adds a site's A/AAAA to `out`; SERVFAIL when no gateway serves, NODATA (with `soa`) when none of this type. */
function siteAnswer(
  index: DnsIndex,
  name: string,
  type: "A" | "AAAA",
  rotation: number,
  out: Reply,
  soa: Answer,
  client?: string,
) {
  const records = siteRecords(index, name, type, rotation, client);
  if (!records) return { ...reply(out.kind, RCODE.SERVFAIL, false, out.owner), rotated: true };
  out.rotated = true;
  out.answers.push(...records);
  if (records.length === 0) out.authorities.push(negativeSoa(soa));
  return out;
}

function zoneAnswer(
  index: DnsIndex,
  zone: IndexedZone,
  qname: string,
  qtype: string,
  rotation: number,
  client?: string,
): Reply {
  const out = reply("zone", RCODE.NOERROR, true, zone.owner);
  const visited = new Set<string>();
  for (let name = qname; visited.size < MAX_CHAIN && !visited.has(name);) {
    visited.add(name);
    const cut = cutOf(zone, name);
    if (cut) return referral(zone, cut, out);
    if ((qtype === "A" || qtype === "AAAA") && index.sites.has(name))
      return siteAnswer(index, name, qtype, rotation, out, zoneSoa(zone), client);
    const types = zone.names.get(name);
    const before = out.answers.length;
    if (name === zone.apex && (qtype === "SOA" || qtype === "ANY")) out.answers.push(zoneSoa(zone));
    // ANY gets one record set (RFC 8482 4.1): the apex's SOA, else the name's first set.
    const first = qtype === "ANY" && out.answers.length === before ? types?.keys().next().value : undefined;
    if (first) setRecords(zone, name, first, out);
    else if (types?.has(qtype as ZoneType)) setRecords(zone, name, qtype as ZoneType, out);
    if (out.answers.length > before) return out;
    const cname = types?.get("CNAME");
    if (cname) {
      const target = (cname.data[0] as string).toLowerCase();
      out.answers.push(record(name, "CNAME", cname.ttl, cname.data[0]));
      if ((qtype === "A" || qtype === "AAAA") && index.sites.has(target) && !inside(target, zone.apex))
        return siteAnswer(index, target, qtype, rotation, out, siteSoa(index, target), client);
      if (!inside(target, zone.apex)) return out;
      name = target;
      continue;
    }
    if (!types && !zone.parents.has(name) && name !== zone.apex) out.rcode = RCODE.NXDOMAIN;
    out.authorities.push(negativeSoa(zoneSoa(zone)));
    return out;
  }
  return out;
}

/** The longest site hostname `name` is below (not at). */
function siteAbove(sites: Set<string>, name: string): string | undefined {
  for (let n = name, dot = n.indexOf("."); dot >= 0; dot = n.indexOf(".")) {
    n = n.slice(dot + 1);
    if (sites.has(n)) return n;
  }
  return undefined;
}

/**
 * The answer to one question: `qname` lower-case without the trailing dot, `qtype` dns-packet's type name, from a
 * client in region `client` (a region key; undefined when unknown).
 */
export function answer(index: DnsIndex, qname: string, qtype: string, rotation: number, client?: string): Reply {
  const zone = zoneOf(index.zones.zones, qname);
  const site = index.sites.has(qname);
  if (site && (qtype === "A" || qtype === "AAAA")) {
    const soa = zone ? zoneSoa(zone) : siteSoa(index, qname);
    return siteAnswer(index, qname, qtype, rotation, reply("site", RCODE.NOERROR, true), soa, client);
  }
  const apex = site ? qname : siteAbove(index.sites, qname);
  // A site is its own apex unless a customer's zone below it holds the name (the closest enclosing apex wins).
  if (apex && !(zone && inside(zone.apex, apex))) {
    const out = reply("site", site ? RCODE.NOERROR : RCODE.NXDOMAIN, true);
    const soa = siteSoa(index, apex);
    if (site && (qtype === "SOA" || qtype === "ANY")) out.answers.push(soa);
    if (site && qtype === "NS")
      out.answers.push({ name: apex, type: "NS", ttl: index.siteTtl, class: "IN", data: index.nameserver });
    if (out.answers.length === 0) out.authorities.push(negativeSoa(soa));
    return out;
  }
  if (!zone) return refused();
  return zoneAnswer(index, zone, qname, qtype, rotation, client);
}

/**
 * `answer` for a client: placed by its client subnet when the query has one, else by `asker` (the resolver's
 * address), through the configuration's regions table (D69). With a subnet, `scope` is what to echo: a site's
 * answer holds for the range that placed the client (only its own subnet when none did); any other for all (0).
 */
export function answerClient(
  index: DnsIndex,
  qname: string,
  qtype: string,
  rotation: number,
  asker: string,
  subnet?: { ip: string; sourcePrefixLength: number },
): Reply & { scope?: number } {
  const { regions } = index;
  const client = regions.empty
    ? undefined
    : subnet
      ? regions.regionOf(subnet.ip, subnet.sourcePrefixLength)
      : regions.regionOf(asker);
  const reply: Reply & { scope?: number } = answer(index, qname, qtype, rotation, client?.region);
  if (subnet) reply.scope = reply.kind === "site" ? (client?.scope ?? subnet.sourcePrefixLength) : 0;
  return reply;
}
