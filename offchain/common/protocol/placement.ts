/**
 * Placement policies (issue 20, D69): where a site's jobs may run, the optional `placement` of a site entry in the
 * network configuration. Absent: any gateway and any host. Three modes (docs/scheduling.md "Placement policies"):
 *
 * - `static`: a fixed set of regions and/or gateways; only those gateways (or gateways in those regions) serve the
 *   site, and its jobs run on hosts in those regions (when regions are given; else on any declared host).
 * - `dynamic`: the nearest region first (the gateway's own, then the others by measured latency); the site spills
 *   to the next region while a region's queue depth passes `queueDepth` or its p99 passes `p99Ms`, and comes back
 *   once both stayed below `returnBelow` times those thresholds for `holdMs` (hysteresis: it does not flap).
 * - `enforced`: only hosts and gateways whose declared country is listed, never anything else: under overload the
 *   job waits and then fails with a clear error.
 *
 * A device that declared no region serves only sites without a policy. The schema holds the shape;
 * `placementProblem` adds what a schema cannot say (real country codes, no duplicates, a static list given).
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import { Value } from "typebox/value";

import { AddressSchema } from "./primitives";
import { COUNTRY_PATTERN, CountrySchema, isCountry, parseRegion } from "./regions";

/** Regions a static policy may name (a network has tens of regions). */
export const MAX_PLACEMENT_REGIONS = 256;
/** Gateways a static policy may name. */
export const MAX_PLACEMENT_GATEWAYS = 1_000;
/** Every assigned country code once. */
export const MAX_PLACEMENT_COUNTRIES = 249;
export const DEFAULT_RETURN_BELOW = 0.5;
export const DEFAULT_HOLD_MS = 10_000;

/** `DE/eu-central`: a region key (regions.ts `regionKey`). */
export const RegionKeySchema = Type.String({ maxLength: 35, pattern: "^[A-Z]{2}/[a-z0-9][a-z0-9-]{0,31}$" });

export const StaticPlacementSchema = Type.Object(
  {
    mode: Type.Literal("static"),
    regions: Type.Optional(Type.Array(RegionKeySchema, { maxItems: MAX_PLACEMENT_REGIONS })),
    gateways: Type.Optional(Type.Array(AddressSchema, { maxItems: MAX_PLACEMENT_GATEWAYS })),
  },
  { additionalProperties: false },
);
export const DynamicPlacementSchema = Type.Object(
  {
    mode: Type.Literal("dynamic"),
    /** Spill while more jobs than this wait for a host of the region. */
    queueDepth: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    /** Spill while the region's p99 job latency is over this (ms). */
    p99Ms: Type.Integer({ minimum: 1, maximum: 600_000 }),
    /** Come back once both are below this fraction of their thresholds (0 < x < 1; default 0.5) ... */
    returnBelow: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })),
    /** ... continuously for this long (ms; default 10,000). */
    holdMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
  },
  { additionalProperties: false },
);
export const EnforcedPlacementSchema = Type.Object(
  {
    mode: Type.Literal("enforced"),
    countries: Type.Array(CountrySchema, { minItems: 1, maxItems: MAX_PLACEMENT_COUNTRIES }),
  },
  { additionalProperties: false },
);
export const PlacementSchema = Type.Union([StaticPlacementSchema, DynamicPlacementSchema, EnforcedPlacementSchema]);

export type StaticPlacement = Static<typeof StaticPlacementSchema>;
export type DynamicPlacement = Static<typeof DynamicPlacementSchema>;
export type EnforcedPlacement = Static<typeof EnforcedPlacementSchema>;
export type Placement = Static<typeof PlacementSchema>;

const SCHEMAS = { static: StaticPlacementSchema, dynamic: DynamicPlacementSchema, enforced: EnforcedPlacementSchema };

/** The first entry listed twice, or undefined. */
function duplicate(items: readonly string[], key: (s: string) => string = (s) => s): string | undefined {
  const seen = new Set<string>();
  for (const item of items) {
    const k = key(item);
    if (seen.has(k)) return item;
    seen.add(k);
  }
  return undefined;
}

/** Why a mode's entry does not match its schema: the first error, with its path. */
function schemaProblem(mode: keyof typeof SCHEMAS, value: unknown): string | undefined {
  const schema = SCHEMAS[mode];
  if (Value.Check(schema, value)) return undefined;
  const first = Value.Errors(schema, value)[0] as { instancePath?: string; message?: string } | undefined;
  const at = first?.instancePath ? ` at ${first.instancePath}` : "";
  return `a ${mode} placement${at}: ${first?.message ?? "does not match its schema"}`;
}

function staticProblem(p: StaticPlacement): string | undefined {
  const regions = p.regions ?? [];
  const gateways = p.gateways ?? [];
  if (regions.length === 0 && gateways.length === 0)
    return "a static placement names at least one region or gateway (regions or gateways non-empty)";
  for (const key of regions) {
    try {
      parseRegion(key);
    } catch (error) {
      return `a static placement's region ${(error as Error).message}`;
    }
  }
  const twiceRegion = duplicate(regions);
  if (twiceRegion !== undefined) return `a static placement lists the region ${twiceRegion} twice`;
  const twiceGateway = duplicate(gateways, (g) => g.toLowerCase());
  if (twiceGateway !== undefined) return `a static placement lists the gateway ${twiceGateway} twice`;
  return undefined;
}

function enforcedProblem(p: EnforcedPlacement): string | undefined {
  const bad = p.countries.find((c) => !COUNTRY_PATTERN.test(c) || !isCountry(c));
  if (bad !== undefined)
    return `an enforced placement's "${bad}" is not an ISO 3166-1 alpha-2 country code (upper case, for example DE)`;
  const twice = duplicate(p.countries);
  if (twice !== undefined) return `an enforced placement lists the country ${twice} twice`;
  return undefined;
}

/**
 * Why `value` is not a placement policy (its shape, then its meaning: real country codes and regions, no entry
 * twice, a static list given), or undefined when it is one.
 */
export function placementProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "a placement is an object";
  const mode = (value as { mode?: unknown }).mode;
  if (mode !== "static" && mode !== "dynamic" && mode !== "enforced")
    return `a placement's mode is "static", "dynamic" or "enforced" (not ${mode === undefined ? "absent" : JSON.stringify(mode).slice(0, 40)})`;
  const shape = schemaProblem(mode, value);
  if (shape !== undefined) return shape;
  if (mode === "static") return staticProblem(value as StaticPlacement);
  if (mode === "enforced") return enforcedProblem(value as EnforcedPlacement);
  return undefined;
}

/** A dynamic policy's return fraction and hold, defaults applied. */
export function dynamicReturn(p: DynamicPlacement): { returnBelow: number; holdMs: number } {
  return { returnBelow: p.returnBelow ?? DEFAULT_RETURN_BELOW, holdMs: p.holdMs ?? DEFAULT_HOLD_MS };
}
