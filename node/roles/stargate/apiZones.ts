/**
 * The Network API's DNS zones (D58): PUT /api/zones/:name writes a customer's zone (a `zone.put` delta), DELETE
 * removes it (`zone.remove`), GET /api/zones lists the caller's. Like sites: scope sites:write on the caller's own
 * zones (owner = its wallet), config:publish on any; through the authority or forwarded to a peer like every write,
 * limited per subject with the other writes.
 *
 * Checked before the write: the body's schema (offchain/common/protocol/zones.ts), what a schema cannot say
 * (`zoneProblems`, the checks the DNS server makes before serving a zone) and at least two labels (no one holds a
 * top-level domain). Checked against the configuration in force under the authority's lock: an apex another owner
 * holds is 409 EDGE_NODE_ZONE_TAKEN (config:publish may overwrite it: a transfer), as is a zone inside or above
 * another owner's zone, or one holding another owner's site hostname; an owner holds at most MAX_ZONES_PER_OWNER
 * zones (a wallet is free to make, R17-2).
 */
import { Type } from "@fastify/type-provider-typebox";
import { getAddress } from "viem";

import type { TypedApp } from "../../../offchain/common/http";
import { AddressSchema, type NetworkConfig, type TokenClaims } from "../../../offchain/common/protocol";
import { DomainNameSchema, type Zone, ZoneSchema } from "../../../offchain/common/protocol/zones";
import { nodeError } from "../../errors";
import { isSubject } from "../../tokens";
import type { NetworkApi, WriteOp } from "./api";
import { zoneProblems } from "./dnsZones";
import { isPublicSuffix, sameOwner, within } from "./zoneRules";

/** Zones one owner may hold. */
export const MAX_ZONES_PER_OWNER = 100;

const ZoneParams = Type.Object({ name: DomainNameSchema }, { additionalProperties: false });
const { ttl, soa, records } = ZoneSchema.properties;
/** A zone as written through the API: the apex comes from the path, the owner defaults to the caller's wallet. */
const ZoneBody = Type.Object(
  { owner: Type.Optional(AddressSchema), ttl, soa, records },
  { additionalProperties: false },
);
export type ZoneInput = Omit<Zone, "name" | "owner"> & { owner?: string };

/** The zone.put of `input` at apex `name`, if `claims` may write it (the rest is checked under the lock). */
export function zonePut(api: NetworkApi, claims: TokenClaims, name: string, input: ZoneInput): WriteOp {
  const team = api.mayWriteAny(claims);
  const owner = input.owner ?? (team ? undefined : claims.subject);
  if (owner === undefined) throw nodeError("EDGE_NODE_ZONE_INVALID", "the zone needs an owner (an address)");
  if (!team && !isSubject(claims, owner))
    throw nodeError("EDGE_NODE_ZONE_NOT_OWNED", "a customer may only write zones it owns (owner = its wallet)");
  if (!name.includes("."))
    throw nodeError("EDGE_NODE_ZONE_INVALID", `${name}: a zone needs at least two labels (no top-level domains)`);
  if (isPublicSuffix(name))
    throw nodeError("EDGE_NODE_ZONE_PUBLIC_SUFFIX", `${name} is a public suffix: no one may hold it as a zone`);
  const zone: Zone = { name, owner: getAddress(owner), ttl: input.ttl, soa: input.soa, records: input.records };
  const problems = zoneProblems(zone);
  if (problems.length > 0)
    throw nodeError("EDGE_NODE_ZONE_INVALID", `the zone ${name} cannot be served: ${problems.join("; ")}`, {
      details: { problems },
    });
  return (current) => {
    checkPlacement(current, zone, team);
    const hold = api.apexHolds.heldFrom(name, zone.owner);
    if (hold && !team && !current.zones.some((z) => z.name === name))
      throw nodeError(
        "EDGE_NODE_ZONE_HELD",
        `${name} was removed and is held for its last owner until ${new Date(hold.until).toISOString()}`,
      );
    const held = current.zones.filter((z) => z.name !== name && sameOwner(z.owner, zone.owner));
    if (held.length >= MAX_ZONES_PER_OWNER)
      throw nodeError("EDGE_NODE_ZONE_QUOTA", `${zone.owner} holds ${held.length} zones, the most one owner may`);
    return { kind: "zone.put", zone };
  };
}

/** The zone.remove of apex `name`, if it exists and `claims` may write it (checked under the authority's lock). */
export function zoneRemove(api: NetworkApi, claims: TokenClaims, name: string): WriteOp {
  const team = api.mayWriteAny(claims);
  return (current) => {
    const existing = current.zones.find((z) => z.name === name);
    if (!existing) throw nodeError("EDGE_NODE_UNKNOWN_ZONE", `no zone ${name}`);
    if (!team && !isSubject(claims, existing.owner))
      throw nodeError("EDGE_NODE_ZONE_NOT_OWNED", `the zone ${name} belongs to another owner`);
    api.apexHolds.hold(name, existing.owner);
    return { kind: "zone.remove", name, owner: getAddress(existing.owner) };
  };
}

/** The zones `claims` may see: their own (a wallet's), or all of them with config:publish. */
export function zonesOf(current: NetworkConfig | undefined, claims: TokenClaims): Zone[] {
  const zones = current?.zones ?? [];
  if (claims.scopes.includes("config:publish")) return zones;
  return zones.filter((z) => isSubject(claims, z.owner));
}

/** No other owner's apex (unless `team` overwrites it), zone above or below, or site hostname inside the zone. */
function checkPlacement(current: NetworkConfig, zone: Zone, team: boolean): void {
  for (const other of current.zones) {
    if (sameOwner(other.owner, zone.owner)) continue;
    if (other.name === zone.name) {
      if (team) continue;
      throw nodeError("EDGE_NODE_ZONE_TAKEN", `the zone ${zone.name} belongs to another owner`);
    }
    if (within(zone.name, other.name))
      throw nodeError("EDGE_NODE_ZONE_TAKEN", `${zone.name} is inside ${other.name}, another owner's zone`);
    if (within(other.name, zone.name))
      throw nodeError("EDGE_NODE_ZONE_TAKEN", `${zone.name} would hold ${other.name}, another owner's zone`);
  }
  for (const site of current.sites as Array<{ hostname?: unknown; owner?: unknown }>) {
    if (typeof site.hostname !== "string" || typeof site.owner !== "string") continue;
    if (!sameOwner(site.owner, zone.owner) && within(site.hostname.toLowerCase(), zone.name))
      throw nodeError("EDGE_NODE_ZONE_TAKEN", `${zone.name} would hold ${site.hostname}, another owner's site`);
  }
}

export function registerZoneApiRoutes(
  app: TypedApp,
  api: NetworkApi,
  write: (request: never, reply: { code(n: number): unknown }, claims: TokenClaims, op: WriteOp) => Promise<unknown>,
): void {
  app.get("/api/zones", async (request) => {
    const claims = await api.verifier.authenticate(request.headers.authorization, request.ip);
    return { zones: zonesOf(api.currentConfig(), claims) };
  });
  app.put("/api/zones/:name", { schema: { params: ZoneParams, body: ZoneBody } }, async (request, reply) => {
    const claims = await api.verifier.authenticate(request.headers.authorization, request.ip);
    const op = zonePut(api, claims, request.params.name, request.body as ZoneInput);
    return write(request as never, reply, claims, op);
  });
  app.delete("/api/zones/:name", { schema: { params: ZoneParams } }, async (request, reply) => {
    const claims = await api.verifier.authenticate(request.headers.authorization, request.ip);
    return write(request as never, reply, claims, zoneRemove(api, claims, request.params.name));
  });
}
