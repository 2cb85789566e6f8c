/**
 * Edge DNS zones (D57): what a zone's schema cannot say (`zoneProblems`), the zone as a master file for other
 * servers (`renderZoneFile`, Knot in the comparison test and the benchmark), and the index the answers are read
 * from (`indexZones`, `ZoneIndexCache`: per zone, reused across configurations by a hash of the zone's content),
 * built when the configuration changes, never per query.
 *
 * Names in the index are absolute, lower-case, without the trailing dot. A zone with problems is left out of the
 * index whole (a half-served zone would answer NXDOMAIN for what it holds).
 */
import { createHash } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";

import type { Address } from "viem";

import type { Zone, ZoneRecord } from "../../../offchain/common/protocol/zones";

export type ZoneType = ZoneRecord["type"];

/** One record set: the records of one name and type (one TTL, RFC 2181 5.2). */
export interface RRset {
  ttl: number;
  /** A/AAAA/CNAME/NS: the address or name; TXT: the text; MX: preference and exchange. */
  data: ZoneRecord["data"][];
}

export interface IndexedZone {
  apex: string;
  owner: Address;
  zone: Zone;
  serial: number;
  /** name -> type -> records. */
  names: Map<string, Map<ZoneType, RRset>>;
  /** Names that exist only because a name below them does (empty non-terminals: NODATA, not NXDOMAIN). */
  parents: Set<string>;
  /** Names below the apex with NS records: delegations (answered with a referral). */
  cuts: Set<string>;
}

/** The absolute name of a record name relative to `apex`. */
export const absolute = (name: string, apex: string) => (name === "@" ? apex : `${name}.${apex}`);

/** Whether `name` is `apex` or below it. */
export const inside = (name: string, apex: string) => name === apex || name.endsWith(`.${apex}`);

const key = (r: ZoneRecord) => `${r.name} ${r.type} ${JSON.stringify(r.data)}`;
const PRINTABLE = /^[\x20-\x7e]*$/;

/** What is wrong with a zone that passed its schema: empty when it can be served. */
export function zoneProblems(zone: Zone): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const byName = new Map<string, Set<ZoneType>>();
  const ttls = new Map<string, number>();
  const cuts: string[] = [];
  for (const r of zone.records) {
    const name = absolute(r.name, zone.name);
    if (name.length > 253) problems.push(`${r.name}: the name is longer than 253 characters`);
    if (seen.has(key(r))) problems.push(`${r.name} ${r.type}: a duplicate record`);
    seen.add(key(r));
    const types = byName.get(name) ?? new Set<ZoneType>();
    types.add(r.type);
    byName.set(name, types);
    const ttl = r.ttl ?? zone.ttl;
    const rrset = `${name} ${r.type}`;
    if (ttls.has(rrset) && ttls.get(rrset) !== ttl) problems.push(`${r.name} ${r.type}: the records' TTLs differ`);
    ttls.set(rrset, ttl);
    if (r.type === "A" && (!isIPv4(r.data) || r.data.split(".").some((o) => o.length > 1 && o.startsWith("0"))))
      problems.push(`${r.name} A: ${r.data} is not an IPv4 address`);
    if (r.type === "AAAA" && !isIPv6(r.data)) problems.push(`${r.name} AAAA: ${r.data} is not an IPv6 address`);
    if (r.type === "TXT" && !PRINTABLE.test(r.data)) problems.push(`${r.name} TXT: only printable ASCII is served`);
    if (r.type === "NS" && name !== zone.name) cuts.push(name);
  }
  for (const [name, types] of byName) {
    const rel = name === zone.name ? "@" : name.slice(0, -zone.name.length - 1);
    if (types.has("CNAME") && name === zone.name) problems.push("@ CNAME: the apex cannot be an alias");
    else if (types.has("CNAME") && types.size > 1) problems.push(`${rel} CNAME: an alias must be alone at its name`);
    const cut = cuts.find((c) => name !== c && inside(name, c));
    if (cut && [...types].some((t) => t !== "A" && t !== "AAAA"))
      problems.push(`${rel}: only glue (A, AAAA) may sit below the delegation ${cut}`);
    if (cuts.includes(name) && [...types].some((t) => t !== "NS" && t !== "A" && t !== "AAAA"))
      problems.push(`${rel}: a delegation holds only NS (and glue)`);
  }
  return problems;
}

/** Builds the index of a zone without problems (`zoneProblems` first). */
export function indexZone(zone: Zone, serial: number): IndexedZone {
  const names = new Map<string, Map<ZoneType, RRset>>();
  const parents = new Set<string>();
  const cuts = new Set<string>();
  for (const r of zone.records) {
    const name = absolute(r.name, zone.name);
    const types = names.get(name) ?? new Map<ZoneType, RRset>();
    names.set(name, types);
    const set = types.get(r.type) ?? { ttl: r.ttl ?? zone.ttl, data: [] };
    set.data.push(r.data);
    types.set(r.type, set);
    if (r.type === "NS" && name !== zone.name) cuts.add(name);
    for (let n = name; n !== zone.name;) {
      n = n.slice(n.indexOf(".") + 1);
      parents.add(n);
    }
  }
  return { apex: zone.name, owner: zone.owner.toLowerCase() as Address, zone, serial, names, parents, cuts };
}

export interface ZonesIndex {
  /** apex -> zone */
  zones: Map<string, IndexedZone>;
  /** Zones not served, with why. */
  invalid: { name: string; problems: string[] }[];
}

/** Indexes the servable zones of a configuration (`serial` = its version); the rest are listed with why. */
export function indexZones(zones: readonly Zone[], serial: number): ZonesIndex {
  return new ZoneIndexCache().buildSync(zones, serial);
}

/**
 * A hash of a zone's canonical content (R18-3): every field of the schema in a fixed order (the owner lower-case),
 * so the same zone hashes the same in any configuration object, whatever its keys' order.
 */
export function zoneHash(zone: Zone): string {
  const { soa } = zone;
  const records = zone.records.map((r) => [
    r.name,
    r.type,
    r.ttl ?? null,
    typeof r.data === "string" ? r.data : [r.data.preference, r.data.exchange],
  ]);
  const soaFields = [soa.mname, soa.rname, soa.refresh, soa.retry, soa.expire, soa.minimum];
  const canonical = JSON.stringify([zone.name, zone.owner.toLowerCase(), zone.ttl, soaFields, records]);
  return createHash("sha256").update(canonical).digest("base64");
}

interface Cached {
  indexed?: IndexedZone;
  problems: string[];
}

/**
 * Zones' indexes kept by `zoneHash` across configurations (R18-3): a configuration that changes one zone indexes
 * that zone again and reuses the others (their serial set to the new version). `build` does the work in slices of
 * `sliceMs`, yielding to the event loop between them (the server keeps answering from the previous index).
 */
export class ZoneIndexCache {
  private byHash = new Map<string, Cached>();
  /** Zones indexed and reused by the last build. */
  stats = { indexed: 0, reused: 0 };

  buildSync(zones: readonly Zone[], serial: number): ZonesIndex {
    const steps = this.steps(zones, serial);
    for (let step = steps.next(); ; step = steps.next()) if (step.done) return step.value;
  }

  async build(zones: readonly Zone[], serial: number, sliceMs = 5): Promise<ZonesIndex> {
    const steps = this.steps(zones, serial);
    for (let sliceStart = performance.now(); ;) {
      const step = steps.next();
      if (step.done) return step.value;
      if (performance.now() - sliceStart < sliceMs) continue;
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }

  private *steps(zones: readonly Zone[], serial: number): Generator<void, ZonesIndex> {
    const index: ZonesIndex = { zones: new Map(), invalid: [] };
    const kept = new Map<string, Cached>();
    this.stats = { indexed: 0, reused: 0 };
    for (const zone of zones) {
      const hash = zoneHash(zone);
      let cached = kept.get(hash) ?? this.byHash.get(hash);
      if (cached) this.stats.reused++;
      else {
        this.stats.indexed++;
        const problems = zoneProblems(zone);
        cached = { problems, ...(problems.length === 0 && { indexed: indexZone(zone, serial) }) };
      }
      kept.set(hash, cached);
      const problems = index.zones.has(zone.name) ? [...cached.problems, "a second zone of the same apex"] : cached.problems; // prettier-ignore
      if (problems.length > 0 || !cached.indexed) index.invalid.push({ name: zone.name, problems });
      else
        index.zones.set(zone.name, cached.indexed.serial === serial ? cached.indexed : { ...cached.indexed, serial });
      yield;
    }
    this.byHash = kept;
    return index;
  }
}

/** The zone `name` falls in: the longest apex that is `name` or a suffix of it. */
export function zoneOf(zones: ReadonlyMap<string, IndexedZone>, name: string): IndexedZone | undefined {
  for (let n = name; ;) {
    const zone = zones.get(n);
    if (zone) return zone;
    const dot = n.indexOf(".");
    if (dot < 0) return zones.get("");
    n = n.slice(dot + 1);
  }
}

/** TXT text as the wire carries it: strings of at most 255 bytes. */
export const txtStrings = (text: string): string[] => {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += 255) out.push(text.slice(i, i + 255));
  return out.length > 0 ? out : [""];
};

const quote = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

function renderData(r: ZoneRecord): string {
  switch (r.type) {
    case "A":
    case "AAAA":
      return r.data;
    case "CNAME":
    case "NS":
      return `${r.data}.`;
    case "MX":
      return `${r.data.preference} ${r.data.exchange}.`;
    case "TXT":
      return txtStrings(r.data).map(quote).join(" ");
  }
}

/** The zone as an RFC 1035 master file (absolute names), with `serial` in its SOA. */
export function renderZoneFile(zone: Zone, serial: number): string {
  const { soa } = zone;
  const lines = [
    `$ORIGIN ${zone.name}.`,
    `$TTL ${zone.ttl}`,
    `${zone.name}. ${zone.ttl} IN SOA ${soa.mname}. ${soa.rname}. ${serial} ${soa.refresh} ${soa.retry} ${soa.expire} ${soa.minimum}`,
  ];
  for (const r of zone.records)
    lines.push(`${absolute(r.name, zone.name)}. ${r.ttl ?? zone.ttl} IN ${r.type} ${renderData(r)}`);
  return `${lines.join("\n")}\n`;
}
