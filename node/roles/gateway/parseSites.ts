/**
 * The rules of a sites document (docs/cdn.md "Sites file", D46): `parseSites` is the one validator, for the file
 * (sites.ts) and for a pushed configuration later, and names every problem at once; `normalizeHost` maps a Host
 * header to the hostname a site is stored under. Site ids become metric labels: they come from this document,
 * never from request input.
 */
import { isIP } from "node:net";
import { Type } from "@fastify/type-provider-typebox";
import { Value } from "typebox/value";
import { type Address, getAddress } from "viem";

import { AddressSchema, placementProblem } from "../../../offchain/common/protocol";
import type { Placement } from "../../../offchain/common/protocol/placement";
import { compilePolicy } from "../../placement";

const compiled = (placement: Placement): Placement => (compilePolicy(placement), placement);
import { nodeError } from "../../errors";

export interface CacheRules {
  /** Freshness of a response whose headers give none (0: revalidate or refetch every time). */
  defaultTtlSeconds: number;
  /** Larger responses are passed through, never cached. */
  maxObjectBytes: number;
}

export interface Site {
  id: string;
  hostname: string;
  owner: Address /* checksummed */;
  origin: string /* no trailing slash */;
  cache: CacheRules;
  /** Where its jobs may run (D69); absent: any gateway, any host. */
  placement?: Placement;
}

export const MAX_SITES = 10_000;
export const DEFAULT_MAX_OBJECT_BYTES = 10 * 1024 * 1024;
export const MAX_OBJECT_BYTES = 100 * 1024 * 1024;
/** A year: longer defaults are a typo more often than a wish. */
export const MAX_DEFAULT_TTL_SECONDS = 365 * 24 * 3600;
export const SITE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** At most this many problems are listed (a 10,000-site file with one systematic mistake stays readable). */
const MAX_PROBLEMS = 50;

const CacheSchema = Type.Object(
  {
    defaultTtlSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_DEFAULT_TTL_SECONDS })),
    maxObjectBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_OBJECT_BYTES })),
  },
  { additionalProperties: false },
);
const SiteSchema = Type.Object(
  {
    id: Type.String({ pattern: SITE_ID_PATTERN.source }),
    hostname: Type.String({ minLength: 1, maxLength: 253 }),
    owner: AddressSchema,
    origin: Type.String({ minLength: 1, maxLength: 2048 }),
    cache: Type.Optional(CacheSchema),
    /** Checked by placementProblem (its own messages). */
    placement: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
);
export const SitesDocumentSchema = Type.Object(
  { sites: Type.Array(SiteSchema, { maxItems: MAX_SITES }) },
  { additionalProperties: false },
);

/** Readable phrases for the schema's pattern failures, by field. */
const EXPECT: Record<string, string> = {
  id: 'must be 1 to 63 characters of a-z, 0-9 and "-", starting with a letter or digit',
  owner: "must be an address (0x and 40 hex digits)",
};

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why `name` is not a site hostname (a lower-case DNS name, no port, no trailing dot, not an IP), or undefined. */
export function hostnameProblem(name: string): string | undefined {
  if (name.length === 0) return "must not be empty";
  if (name.length > 253) return "must be at most 253 characters";
  if (name !== name.toLowerCase()) return "must be lower-case";
  if (isIP(name) !== 0 || name.startsWith("[")) return "must be a DNS name, not an IP address";
  if (name.includes(":")) return "must not carry a port";
  if (name.endsWith(".")) return "must not end with a dot";
  const labels = name.split(".");
  const bad = labels.find((l) => !LABEL.test(l));
  if (bad !== undefined)
    return `has an invalid label "${bad.slice(0, 70)}" (1 to 63 of a-z, 0-9 and "-", not starting or ending with "-")`;
  if (/^\d+$/.test(labels[labels.length - 1])) return "must not end in a numeric label (an IP address?)";
  return undefined;
}

/**
 * The site hostname a Host header names: lower-cased, a `:port` and one trailing dot removed. IPv6 literals, IP
 * addresses, bad ports and anything else that is no valid DNS name give undefined.
 */
export function normalizeHost(hostHeader: string | undefined): string | undefined {
  if (hostHeader === undefined || hostHeader.length === 0 || hostHeader.length > 260) return undefined;
  if (hostHeader.startsWith("[")) return undefined;
  let host = hostHeader.toLowerCase();
  const colon = host.indexOf(":");
  if (colon >= 0) {
    const port = host.slice(colon + 1);
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return undefined;
    host = host.slice(0, colon);
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  return hostnameProblem(host) === undefined ? host : undefined;
}

/** The origin's canonical form (no trailing slash), or the problem with it. */
function parseOrigin(text: string): { origin: string } | { problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: "must be an absolute http or https URL" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { problem: "must be an http or https URL" };
  if (url.username !== "" || url.password !== "") return { problem: "must not carry credentials" };
  if (text.includes("?")) return { problem: "must not have a query" };
  if (text.includes("#")) return { problem: "must not have a fragment" };
  return { origin: `${url.origin}${url.pathname.replace(/\/+$/, "")}` };
}

/** "/sites/3/cache/maxObjectBytes" -> 'sites[3] ("docs").cache.maxObjectBytes'. */
function where(path: string, items: unknown[]): string {
  const parts = path.split("/").filter(Boolean);
  if (parts.length === 0) return "the document";
  if (parts[0] !== "sites" || parts.length < 2) return parts.join(".");
  const item = items[Number(parts[1])] as { id?: unknown } | undefined;
  const id = typeof item?.id === "string" && SITE_ID_PATTERN.test(item.id) ? ` ("${item.id}")` : "";
  return [`sites[${parts[1]}]${id}`, ...parts.slice(2)].join(".");
}

function schemaProblems(json: unknown, items: unknown[]): string[] {
  const problems: string[] = [];
  for (const e of Value.Errors(SitesDocumentSchema, json) as Iterable<{
    keyword: string;
    instancePath: string;
    message: string;
  }>) {
    if (e.keyword === "additionalProperties") continue; // each unknown property is reported on its own path
    const field = e.instancePath.split("/").pop() ?? "";
    if (e.keyword === "boolean") problems.push(`${where(e.instancePath, items)}: unknown property`);
    else if (e.keyword === "pattern" && EXPECT[field])
      problems.push(`${where(e.instancePath, items)} ${EXPECT[field]}`);
    else if (e.instancePath === "" && e.keyword === "type")
      problems.push('the document must be an object with a "sites" array');
    else problems.push(`${where(e.instancePath, items)}: ${e.message}`);
  }
  return problems;
}

/** The checks a schema cannot express: hostnames, origins, checksums, unique ids and hostnames. */
function siteProblems(items: unknown[], problems: string[]): Site[] {
  const sites: Site[] = [];
  const ids = new Map<string, number>();
  const hosts = new Map<string, number>();
  items.forEach((raw, i) => {
    if (typeof raw !== "object" || raw === null) return;
    const item = raw as Record<string, unknown>;
    const at = (field: string) => where(`/sites/${i}/${field}`, items);
    if (typeof item.id === "string") {
      const first = ids.get(item.id);
      if (first !== undefined) problems.push(`${at("id")} repeats the id of sites[${first}]`);
      else ids.set(item.id, i);
    }
    // The schema reports an empty or over-long name.
    if (typeof item.hostname === "string" && item.hostname.length > 0 && item.hostname.length <= 253) {
      const problem = hostnameProblem(item.hostname);
      const first = hosts.get(item.hostname);
      if (problem) problems.push(`${at("hostname")} "${item.hostname.slice(0, 80)}" ${problem}`);
      else if (first !== undefined) problems.push(`${at("hostname")} repeats the hostname of sites[${first}]`);
      else hosts.set(item.hostname, i);
    }
    const placement = item.placement === undefined ? undefined : placementProblem(item.placement);
    if (placement !== undefined) problems.push(`${at("placement")} ${placement}`);
    const origin = typeof item.origin === "string" ? parseOrigin(item.origin) : undefined;
    if (origin && "problem" in origin) problems.push(`${at("origin")} ${origin.problem}`);
    let owner: Address | undefined;
    if (typeof item.owner === "string" && /^0x[0-9a-fA-F]{40}$/.test(item.owner)) {
      const hex = item.owner.slice(2);
      owner = getAddress(item.owner.toLowerCase());
      // EIP-55: a mixed-case address must carry the right checksum (a wrong one is a typo); one case is unchecked.
      if (/[a-f]/.test(hex) && /[A-F]/.test(hex) && owner !== item.owner) {
        problems.push(`${at("owner")} has a bad EIP-55 checksum (a typo?)`);
      }
    }
    if (owner && origin && "origin" in origin) {
      const cache = (item.cache ?? {}) as Partial<CacheRules>;
      sites.push({
        id: item.id as string,
        hostname: item.hostname as string,
        owner,
        origin: origin.origin,
        cache: {
          defaultTtlSeconds: cache.defaultTtlSeconds ?? 0,
          maxObjectBytes: cache.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES,
        },
        // Compiled now (cached per policy object, D69): no request pays for it.
        ...(item.placement === undefined ? {} : { placement: compiled(item.placement as Placement) }),
      });
    }
  });
  return sites;
}

/**
 * Validates a sites document (parsed JSON) and returns its sites with defaults filled, owners checksummed and
 * origins canonical. Throws EDGE_NODE_SITES_INVALID whose message names every problem (at most 50) on one line.
 */
export function parseSites(json: unknown): Site[] {
  const items =
    typeof json === "object" && json !== null && Array.isArray((json as { sites?: unknown }).sites)
      ? (json as { sites: unknown[] }).sites
      : [];
  const problems = schemaProblems(json, items);
  const sites = items.length <= MAX_SITES ? siteProblems(items, problems) : [];
  if (problems.length > 0) {
    const listed = problems.slice(0, MAX_PROBLEMS);
    if (problems.length > MAX_PROBLEMS) listed.push(`and ${problems.length - MAX_PROBLEMS} more problems`);
    throw nodeError("EDGE_NODE_SITES_INVALID", `invalid sites: ${listed.join("; ")}`, {
      details: { problems: listed },
    });
  }
  return sites.map((s) => Object.freeze({ ...s, cache: Object.freeze(s.cache) }));
}
