/**
 * The Network API's map of regions (issue 20, D68): GET /api/regions groups the stargates' catalogue by the region
 * each endpoint signed into its hello (`DE/eu-central`), and those that declared none under "undeclared". Per
 * region and role (gateway, host, stargate): how many endpoints the chain admits, how many of them are healthy by
 * the stargates' majority rule, and the endpoints themselves (device, url, healthy; by device), at most `limit`
 * per group (`truncated` says some were left out): the answer is bounded whatever the catalogue holds. Endpoints the
 * chain does not admit now are left out.
 *
 * Any valid token reads it (no scope), as GET /api/sites and /api/whoami: the Network API answers nothing without a
 * token (failed checks are limited per client, R17-11), and a token is free to any wallet, so every tool can read
 * the map. The same endpoints, ungrouped, are at the stargate's public GET /health/catalogue.
 */
import { Type } from "@fastify/type-provider-typebox";
import type { Address } from "viem";

import type { TypedApp } from "../../../offchain/common/http";
import { regionKey } from "../../../offchain/common/protocol";
import { StakeType } from "../../../offchain/common/stakeMap";
import type { Catalogue, CatalogueEndpoint } from "../../context";
import type { NetworkApi } from "./api";

export const UNDECLARED = "undeclared";
export const DEFAULT_REGION_LIMIT = 100;
export const MAX_REGION_LIMIT = 1_000;

const ROLES = ["gateway", "host", "stargate"] as const;
const STAKE: Record<CatalogueEndpoint["role"], StakeType> = {
  gateway: StakeType.Gateway,
  host: StakeType.Host,
  stargate: StakeType.Stargate,
};

const RegionsQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_REGION_LIMIT })) },
  { additionalProperties: false },
);

export interface RoleGroup {
  /** Admitted endpoints of this role in the region. */
  count: number;
  healthy: number;
  endpoints: { device: Address; url: string; healthy: boolean }[];
  truncated: boolean;
}

export interface RegionGroup {
  /** The region's country and name; absent for "undeclared". */
  country?: string;
  region?: string;
  gateway: RoleGroup;
  host: RoleGroup;
  stargate: RoleGroup;
}

export interface RegionsView {
  /** When the catalogue was built (0: none yet). */
  atMs: number;
  /** By region key (`DE/eu-central`), sorted, "undeclared" last. */
  regions: Record<string, RegionGroup>;
}

const emptyRole = (): RoleGroup => ({ count: 0, healthy: 0, endpoints: [], truncated: false });

/** The catalogue's admitted endpoints grouped by region and role, at most `limit` listed per group. */
export function regionsView(
  catalogue: Catalogue | undefined,
  admits: (device: Address, type: StakeType) => boolean,
  limit = DEFAULT_REGION_LIMIT,
): RegionsView {
  const groups = new Map<string, RegionGroup>();
  const endpoints = [...(catalogue?.endpoints ?? [])].sort((a, b) => a.device.localeCompare(b.device));
  for (const e of endpoints) {
    if (!ROLES.includes(e.role) || !admits(e.device, STAKE[e.role])) continue;
    const key = e.region ? regionKey(e.region) : UNDECLARED;
    let group = groups.get(key);
    if (!group) {
      const where = e.region ? { country: e.region.country, region: e.region.region } : {};
      groups.set(key, (group = { ...where, gateway: emptyRole(), host: emptyRole(), stargate: emptyRole() }));
    }
    const role = group[e.role];
    role.count += 1;
    if (e.healthy) role.healthy += 1;
    if (role.endpoints.length < limit) role.endpoints.push({ device: e.device, url: e.url, healthy: e.healthy });
    else role.truncated = true;
  }
  const keys = [...groups.keys()].filter((k) => k !== UNDECLARED).sort();
  if (groups.has(UNDECLARED)) keys.push(UNDECLARED);
  return { atMs: catalogue?.atMs ?? 0, regions: Object.fromEntries(keys.map((k) => [k, groups.get(k)!])) };
}

export function registerRegionApiRoutes(app: TypedApp, api: NetworkApi): void {
  app.get("/api/regions", { schema: { querystring: RegionsQuery } }, async (request) => {
    await api.verifier.authenticate(request.headers.authorization, request.ip);
    const limit = (request.query as { limit?: number }).limit ?? DEFAULT_REGION_LIMIT;
    return regionsView(api.catalogue(), api.chainAdmits, limit);
  });
}
