/**
 * The network configuration (issue 17, D51): one versioned document for every gateway and host, and the signed
 * deltas that change it between anchored versions.
 *
 * - A document's identity is keccak256 of its canonical JSON (RFC 8785, `encodeDocument`); ConfigRegistry
 *   anchors that hash per version, so a node applies a document only if the chain names its hash.
 * - The document carries its own version, so one hash can never stand for two versions.
 * - Sections: `sites` (validated by gateways with the sites rules, node/roles/gateway/parseSites.ts), `zones`
 *   (customers' DNS zones the stargates serve, zones.ts, D57), `dispatch` (queue and check policy), `prices` (per
 *   usage metric), the `blocklist` (IP ranges and site paths every gateway refuses), `revoked` (Network API tokens
 *   withdrawn before their expiry) and `draining` (devices taken out of DNS answers by a rollout, D59; absent
 *   means none, so documents from before it keep their hash), and `regions` (where DNS clients are and the latency
 *   between regions, D69; absent likewise).
 * - A delta names its base version and a sequence from 1; its body is one operation. `applyDeltas` is the one
 *   implementation of what deltas do, used by nodes applying them and by the stargate folding them into the next
 *   anchored version.
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import canonicalize from "canonicalize";
import { Value } from "typebox/value";
import { type Hex, keccak256 } from "viem";

import { AddressSchema } from "./primitives";
import { ZoneSchema } from "./zones";

/** A document larger than this is refused before it is parsed (16 MiB: 10,000 sites fit in a tenth of it). */
export const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;
/** A delta body larger than this is refused before it is parsed (a site entry is well under 4 KiB). */
export const MAX_DELTA_BYTES = 16 * 1024;
export const MAX_BLOCKLIST_ENTRIES = 100_000;
export const MAX_REVOKED = 100_000;
export const MAX_DRAINING = 10_000;
/** Customers' DNS zones a document may hold. */
export const MAX_ZONES = 10_000;

/** An IPv4 or IPv6 address, or a CIDR range of either ("203.0.113.0/24", "2001:db8::/32"). */
export const IpRangeSchema = Type.String({ minLength: 2, maxLength: 64, pattern: "^[0-9a-fA-F:.]+(/\\d{1,3})?$" });
/** A path prefix refused on one site's hostname ("*" for every site). */
export const PathRuleSchema = Type.Object(
  {
    hostname: Type.String({ minLength: 1, maxLength: 253 }),
    prefix: Type.String({ minLength: 1, maxLength: 2048, pattern: "^/" }),
  },
  { additionalProperties: false },
);
export const BlocklistSchema = Type.Object(
  {
    ipRanges: Type.Array(IpRangeSchema, { maxItems: MAX_BLOCKLIST_ENTRIES }),
    paths: Type.Array(PathRuleSchema, { maxItems: MAX_BLOCKLIST_ENTRIES }),
  },
  { additionalProperties: false },
);
export const RevokedSchema = Type.Object(
  { id: Type.String({ pattern: "^0x[0-9a-f]{64}$" }), expiresAt: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);
export const DispatchPolicySchema = Type.Object(
  {
    /** Every how many content jobs one is re-fetched from the origin to check the host (0: never). */
    verifyOneIn: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    /** How long a request may wait in a gateway's queue for a host. */
    queueWaitMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 600_000 })),
  },
  { additionalProperties: false },
);
/** Price per unit of each usage metric, in wei of EDGE, as decimal strings ("cdn.requests": "1000"). */
export const PricesSchema = Type.Record(
  Type.String({ pattern: "^[a-z][a-zA-Z0-9.]{0,63}$" }),
  Type.String({ pattern: "^\\d{1,78}$" }),
);

/** Client address ranges a regions table may map. */
export const MAX_CLIENT_RANGES = 10_000;
/** Region pairs a latency table may hold (50 regions: 2,450 ordered pairs). */
export const MAX_LATENCY_PAIRS = 10_000;
const RegionKey = Type.String({ maxLength: 35, pattern: "^[A-Z]{2}/[a-z0-9][a-z0-9-]{0,31}$" });
/**
 * The regions table (issue 20, D69): which region a DNS client's address (its EDNS client subnet, else the
 * resolver's own address) is in, longest prefix first; and the measured latency between regions, which orders the
 * regions after the client's own (a pair not listed counts as farther than any listed one).
 */
export const RegionsConfigSchema = Type.Object(
  {
    clients: Type.Array(Type.Object({ range: IpRangeSchema, region: RegionKey }, { additionalProperties: false }), {
      maxItems: MAX_CLIENT_RANGES,
    }),
    latency: Type.Array(
      Type.Object(
        { from: RegionKey, to: RegionKey, ms: Type.Integer({ minimum: 0, maximum: 60_000 }) },
        { additionalProperties: false },
      ),
      { maxItems: MAX_LATENCY_PAIRS },
    ),
  },
  { additionalProperties: false },
);
export type RegionsConfig = Static<typeof RegionsConfigSchema>;

export const NetworkConfigSchema = Type.Object(
  {
    version: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    sites: Type.Array(Type.Unknown(), { maxItems: 10_000 }),
    zones: Type.Array(ZoneSchema, { maxItems: MAX_ZONES }),
    dispatch: DispatchPolicySchema,
    prices: PricesSchema,
    blocklist: BlocklistSchema,
    revoked: Type.Array(RevokedSchema, { maxItems: MAX_REVOKED }),
    /** Gateways (and stargates) a rollout took out of DNS answers (D59), lower-case addresses. */
    draining: Type.Optional(Type.Array(AddressSchema, { maxItems: MAX_DRAINING })),
    /** Where DNS clients are and how far regions are from each other (D69); absent: no preference. */
    regions: Type.Optional(RegionsConfigSchema),
  },
  { additionalProperties: false },
);
export type NetworkConfig = Static<typeof NetworkConfigSchema>;
export type Blocklist = Static<typeof BlocklistSchema>;
export type PathRule = Static<typeof PathRuleSchema>;

const SiteIdSchema = Type.String({ pattern: "^[a-z0-9][a-z0-9-]{0,62}$" });
export const DeltaOpSchema = Type.Union([
  Type.Object({ kind: Type.Literal("blocklist.add"), ipRange: IpRangeSchema }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal("blocklist.add"), path: PathRuleSchema }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal("blocklist.remove"), ipRange: IpRangeSchema }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal("blocklist.remove"), path: PathRuleSchema }, { additionalProperties: false }),
  /** Adds or replaces the site of this id (validated by gateways like every site). */
  Type.Object({ kind: Type.Literal("site.put"), site: Type.Unknown() }, { additionalProperties: false }),
  Type.Object(
    { kind: Type.Literal("site.remove"), id: SiteIdSchema, owner: AddressSchema },
    { additionalProperties: false },
  ),
  Type.Object({ kind: Type.Literal("token.revoke"), token: RevokedSchema }, { additionalProperties: false }),
  /** Adds or replaces the zone of this apex (its owner is checked by the Network API before it is signed). */
  Type.Object({ kind: Type.Literal("zone.put"), zone: ZoneSchema }, { additionalProperties: false }),
  Type.Object(
    { kind: Type.Literal("zone.remove"), name: Type.String({ minLength: 1, maxLength: 253 }), owner: AddressSchema },
    { additionalProperties: false },
  ),
  /** Takes a device out of DNS answers (a rollout's first step for a gateway), or puts it back. */
  Type.Object({ kind: Type.Literal("node.drain"), device: AddressSchema }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal("node.undrain"), device: AddressSchema }, { additionalProperties: false }),
]);
export type DeltaOp = Static<typeof DeltaOpSchema>;

export const DeltaBodySchema = Type.Object(
  {
    base: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    seq: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    /** When the signer made it, unix milliseconds (for the enforcement-latency figures; not a validity bound). */
    issuedAt: Type.Integer({ minimum: 0 }),
    op: DeltaOpSchema,
  },
  { additionalProperties: false },
);
export type DeltaBody = Static<typeof DeltaBodySchema>;

/** The canonical JSON bytes of `value`: what is hashed, signed and sent. */
export function canonicalBytes(value: unknown): Buffer {
  const text = canonicalize(value);
  if (text === undefined) throw new Error("the value has no JSON form");
  return Buffer.from(text, "utf8");
}

export const encodeDocument = (doc: NetworkConfig): Buffer => canonicalBytes(doc);

/** keccak256 of the bytes as sent: the hash ConfigRegistry anchors for a document's version. */
export const documentHash = (bytes: Uint8Array): Hex => keccak256(bytes);

/** An empty document of `version`: the base a network starts from. */
export function emptyConfig(version: number): NetworkConfig {
  return {
    version,
    sites: [],
    zones: [],
    dispatch: {},
    prices: {},
    blocklist: { ipRanges: [], paths: [] },
    revoked: [],
  };
}

/**
 * Parses bytes claimed to be a document. Returns the document, or the reason it is not one (too large, not
 * JSON, not canonical, not the schema). Canonical form is required so the bytes hashed are the only encoding.
 */
export function parseDocument(bytes: Uint8Array): NetworkConfig | string {
  return parseCanonical(bytes, MAX_DOCUMENT_BYTES, NetworkConfigSchema, "document");
}

/** Parses a delta body as `parseDocument` parses a document. */
export function parseDeltaBody(bytes: Uint8Array): DeltaBody | string {
  return parseCanonical(bytes, MAX_DELTA_BYTES, DeltaBodySchema, "delta");
}

function parseCanonical<T>(
  bytes: Uint8Array,
  max: number,
  schema: typeof NetworkConfigSchema | typeof DeltaBodySchema,
  what: string,
): T | string {
  if (bytes.length > max) return `the ${what} is ${bytes.length} bytes, over the ${max} allowed`;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return `the ${what} is not JSON`;
  }
  if (!Value.Check(schema, value)) {
    const first = Value.Errors(schema, value)[0];
    return `the ${what} does not match its schema${first ? ` at ${first.instancePath || "/"}: ${first.message}` : ""}`;
  }
  let canonical: Buffer;
  try {
    canonical = canonicalBytes(value);
  } catch {
    // A string escaping a lone UTF-16 surrogate ("\ud800") has no canonical form (R17-9).
    return `the ${what} has a string that is not well-formed Unicode`;
  }
  if (!canonical.equals(Buffer.from(bytes))) return `the ${what} is not in canonical JSON (RFC 8785)`;
  return value as T;
}

const sameRule = (a: PathRule, b: PathRule) => a.hostname === b.hostname && a.prefix === b.prefix;

/**
 * The configuration after `deltas` (in sequence order) on top of `doc`; `doc` is not changed. Adding what is
 * there or removing what is not changes nothing (a delta applied twice is harmless). Revocations past `nowSec`
 * are dropped, so the list only holds tokens that could still be used.
 */
export function applyDeltas(doc: NetworkConfig, deltas: readonly DeltaBody[], nowSec?: number): NetworkConfig {
  const next: NetworkConfig = structuredClone(doc);
  for (const { op } of deltas) applyOp(next, op);
  if (nowSec !== undefined) next.revoked = next.revoked.filter((r) => r.expiresAt > nowSec);
  return next;
}

function applyOp(doc: NetworkConfig, op: DeltaOp): void {
  const list = doc.blocklist;
  switch (op.kind) {
    case "blocklist.add":
      if ("ipRange" in op) {
        if (!list.ipRanges.includes(op.ipRange)) list.ipRanges.push(op.ipRange);
      } else if (!list.paths.some((p) => sameRule(p, op.path))) list.paths.push(op.path);
      return;
    case "blocklist.remove":
      if ("ipRange" in op) list.ipRanges = list.ipRanges.filter((r) => r !== op.ipRange);
      else list.paths = list.paths.filter((p) => !sameRule(p, op.path));
      return;
    case "site.put": {
      const id = (op.site as { id?: unknown } | null)?.id;
      doc.sites = doc.sites.filter((s) => (s as { id?: unknown } | null)?.id !== id);
      doc.sites.push(op.site);
      return;
    }
    case "site.remove":
      doc.sites = doc.sites.filter((s) => (s as { id?: unknown } | null)?.id !== op.id);
      return;
    case "token.revoke":
      if (!doc.revoked.some((r) => r.id === op.token.id)) doc.revoked.push(op.token);
      return;
    case "zone.put":
      doc.zones = doc.zones.filter((z) => z.name !== op.zone.name);
      doc.zones.push(op.zone);
      return;
    case "zone.remove":
      doc.zones = doc.zones.filter((z) => z.name !== op.name);
      return;
    case "node.drain": {
      const device = op.device.toLowerCase();
      if (!(doc.draining ?? []).includes(device)) doc.draining = [...(doc.draining ?? []), device];
      return;
    }
    case "node.undrain": {
      const device = op.device.toLowerCase();
      const left = (doc.draining ?? []).filter((d) => d !== device);
      if (left.length > 0) doc.draining = left;
      else delete doc.draining;
      return;
    }
  }
}
