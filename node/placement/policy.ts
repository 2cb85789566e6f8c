/**
 * Placement policy checks (D69): whether a gateway or host may serve a site under its policy
 * (offchain/common/protocol/placement.ts). Rules:
 *
 * - no policy: anything, including devices that declared no region;
 * - any policy: a device that declared no region never passes (it serves only sites without a policy);
 * - static: a gateway passes when listed by address or when its region is listed; a host passes when its region
 *   is listed, or, when the policy lists only gateways, whatever its (declared) region;
 * - dynamic: any declared device (the policy orders regions, engine.ts; it excludes none);
 * - enforced: a device passes only when its declared country is listed.
 *
 * A policy is compiled once (sets for O(1) membership) and the compiled form kept per policy object, so callers
 * pass the site's parsed policy as is. Compiling checks it with `placementProblem`: a bad policy throws.
 */
import {
  type DynamicPlacement,
  type Placement,
  dynamicReturn,
  placementProblem,
} from "../../offchain/common/protocol/placement";
import { type Region, regionKey } from "../../offchain/common/protocol/regions";

export type Role = "gateway" | "host";

/** The error codes a placement refusal carries (node/errors.ts: 503 and 421). */
export type PlacementErrorCode = "EDGE_NODE_NO_HOSTS" | "EDGE_NODE_NO_ELIGIBLE_HOST" | "EDGE_NODE_PLACEMENT";

export interface Refusal {
  refuse: true;
  code: PlacementErrorCode;
  message: string;
}

export interface CompiledDynamic {
  queueDepth: number;
  p99Ms: number;
  returnBelow: number;
  holdMs: number;
}

export interface CompiledPolicy {
  readonly mode: "any" | "static" | "dynamic" | "enforced";
  /** static: the region keys listed (empty: hosts anywhere declared). */
  readonly regions: readonly string[];
  readonly regionSet: ReadonlySet<string>;
  /** static: the gateways listed, lower-case. */
  readonly gateways: ReadonlySet<string>;
  /** enforced: the countries listed. */
  readonly countries: readonly string[];
  readonly countrySet: ReadonlySet<string>;
  readonly dynamic?: CompiledDynamic;
  /** A short description for messages ("enforced DE, FR"). */
  readonly label: string;
}

const NONE: ReadonlySet<string> = new Set();
const ANY: CompiledPolicy = {
  mode: "any",
  regions: [],
  regionSet: NONE,
  gateways: NONE,
  countries: [],
  countrySet: NONE,
  label: "no policy",
};
const compiled = new WeakMap<Placement, CompiledPolicy>();

function listed(items: readonly string[], max = 5): string {
  return items.length <= max ? items.join(", ") : `${items.slice(0, max).join(", ")} and ${items.length - max} more`;
}

function compileFresh(p: Placement): CompiledPolicy {
  const problem = placementProblem(p);
  if (problem !== undefined) throw new RangeError(`bad placement policy: ${problem}`);
  if (p.mode === "static") {
    const regions = [...(p.regions ?? [])];
    const gateways = (p.gateways ?? []).map((g) => g.toLowerCase());
    const parts = [
      regions.length ? `regions ${listed(regions)}` : "",
      gateways.length ? `gateways ${listed(gateways)}` : "",
    ];
    const label = `static ${parts.filter(Boolean).join("; ")}`;
    return { ...ANY, mode: "static", regions, regionSet: new Set(regions), gateways: new Set(gateways), label };
  }
  if (p.mode === "enforced") {
    const countries = [...p.countries];
    return {
      ...ANY,
      mode: "enforced",
      countries,
      countrySet: new Set(countries),
      label: `enforced ${listed(countries)}`,
    };
  }
  const d: DynamicPlacement = p;
  const dynamic = { queueDepth: d.queueDepth, p99Ms: d.p99Ms, ...dynamicReturn(d) };
  return { ...ANY, mode: "dynamic", dynamic, label: `dynamic (queue ${d.queueDepth}, p99 ${d.p99Ms} ms)` };
}

/** `policy` compiled (cached per object); no policy is "any". Throws a RangeError for a bad policy. */
export function compilePolicy(policy: Placement | undefined): CompiledPolicy {
  if (policy === undefined) return ANY;
  let c = compiled.get(policy);
  if (c === undefined) {
    c = compileFresh(policy);
    compiled.set(policy, c);
  }
  return c;
}

/** Whether a device in `region` (undefined: declared none) may serve a site with `policy` in `role`. */
export function allows(
  policy: Placement | CompiledPolicy | undefined,
  region: Region | undefined,
  device: string,
  role: Role = "host",
): boolean {
  const c = policy !== undefined && "label" in policy ? policy : compilePolicy(policy);
  if (c.mode === "any") return true;
  if (region === undefined) return false;
  switch (c.mode) {
    case "dynamic":
      return true;
    case "enforced":
      return c.countrySet.has(region.country);
    case "static":
      if (role === "gateway" && c.gateways.has(device.toLowerCase())) return true;
      if (c.regionSet.has(regionKey(region))) return true;
      return role === "host" && c.regions.length === 0;
  }
}

/**
 * Whether this gateway (its address and declared region) may serve a site with `policy`: undefined when it may,
 * else the refusal a front door answers (421 EDGE_NODE_PLACEMENT: another gateway serves it).
 */
export function gatewayRefusal(
  policy: Placement | undefined,
  region: Region | undefined,
  device: string,
): Refusal | undefined {
  const c = compilePolicy(policy);
  if (allows(c, region, device, "gateway")) return undefined;
  const where = region ? `in ${regionKey(region)}` : "that declared no region";
  return {
    refuse: true,
    code: "EDGE_NODE_PLACEMENT",
    message: `this gateway (${where}) does not serve the site: its placement is ${c.label}`,
  };
}
