/**
 * Edge DNS zones (issue 18, D57): a customer's zone as the network configuration carries it (`zones` section) and
 * as the stargates serve it. The schema holds the shape; `zoneProblems` (node/roles/stargate/dnsZones.ts) holds
 * what a schema cannot say (names inside the zone, addresses, a CNAME alone at its name).
 *
 * - `name` is the zone's apex: lower-case, no trailing dot ("example.com").
 * - A record's `name` is relative to the apex ("@" for the apex itself, "www", "a.b"); no wildcards.
 * - The SOA's serial is the network configuration's version, so a new version is a new serial.
 * - `owner` is the customer billed for the zone's queries (`dns.queries`).
 */
import { type Static, Type } from "@fastify/type-provider-typebox";

import { AddressSchema } from "./primitives";

export const MAX_ZONE_RECORDS = 10_000;
/** A DNS name without its trailing dot: labels of 1-63 letters, digits, hyphens or underscores, 253 at most. */
export const DomainNameSchema = Type.String({
  minLength: 1,
  maxLength: 253,
  pattern: "^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$",
});
/** A record's name relative to the zone's apex: "@" or labels. */
export const RelativeNameSchema = Type.Union([
  Type.Literal("@"),
  Type.String({
    minLength: 1,
    maxLength: 253,
    pattern: "^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$",
  }),
]);
const Ttl = Type.Integer({ minimum: 0, maximum: 604_800 });

const base = { name: RelativeNameSchema, ttl: Type.Optional(Ttl) };
const closed = { additionalProperties: false } as const;

export const ZoneRecordSchema = Type.Union([
  Type.Object(
    {
      ...base,
      type: Type.Literal("A"),
      data: Type.String({ minLength: 7, maxLength: 15, pattern: "^\\d{1,3}(\\.\\d{1,3}){3}$" }),
    },
    closed,
  ),
  Type.Object(
    {
      ...base,
      type: Type.Literal("AAAA"),
      data: Type.String({ minLength: 2, maxLength: 45, pattern: "^[0-9a-f:.]+$" }),
    },
    closed,
  ),
  Type.Object({ ...base, type: Type.Literal("CNAME"), data: DomainNameSchema }, closed),
  Type.Object({ ...base, type: Type.Literal("NS"), data: DomainNameSchema }, closed),
  /** Printable text; split into 255-byte strings on the wire. */
  Type.Object({ ...base, type: Type.Literal("TXT"), data: Type.String({ maxLength: 4000 }) }, closed),
  Type.Object(
    {
      ...base,
      type: Type.Literal("MX"),
      data: Type.Object(
        { preference: Type.Integer({ minimum: 0, maximum: 65535 }), exchange: DomainNameSchema },
        closed,
      ),
    },
    closed,
  ),
]);
export type ZoneRecord = Static<typeof ZoneRecordSchema>;

export const SoaSchema = Type.Object(
  {
    /** The primary name server and the responsible mailbox (as a name: "hostmaster.example.com"). */
    mname: DomainNameSchema,
    rname: DomainNameSchema,
    refresh: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }),
    retry: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }),
    expire: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }),
    /** The negative-caching TTL (RFC 2308): how long NXDOMAIN and NODATA answers may be cached. */
    minimum: Ttl,
  },
  { additionalProperties: false },
);

export const ZoneSchema = Type.Object(
  {
    name: DomainNameSchema,
    owner: AddressSchema,
    /** The TTL of records that name none. */
    ttl: Ttl,
    soa: SoaSchema,
    records: Type.Array(ZoneRecordSchema, { maxItems: MAX_ZONE_RECORDS }),
  },
  { additionalProperties: false },
);
export type Zone = Static<typeof ZoneSchema>;
