/**
 * The map of regions (issue 20 item 4): per region (`DE/eu-central`, and "undeclared"), the hosts and gateways the
 * chain admits, their average posted score in the latest scored epoch, the APR a new stake of that role earns
 * there at that score, and the capacity they use; sorted so the region where a new host earns most comes first.
 * Pure: the Console server (regionSource.ts) gathers the inputs, GET /api/regions serves the result, and the page
 * (web/regions.ts) draws it. No DOM, no network.
 *
 * - **Admitted**: an endpoint counts when the chain admits its device now with a stake of its role's type (a host
 *   endpoint backed by a gateway stake does not count). Each device counts once.
 * - **Average score**: the mean (rounded down) of the scores the region's admitted devices' current stakes got in
 *   the latest epoch with a posted batch, in basis points of the peer average; devices without one there are not
 *   in the mean (`scored` says how many are). Entries over 20,000 are skipped by the contract and here.
 * - **APR**: RewardsManager's `aprBps` (offchain/common/apr.ts) for the role's stake type at that average score and
 *   no tenure: what a new stake there would earn if it scored like its neighbours (tenure adds up to
 *   `maxTenureBonusBps` over time). Null before any score.
 * - **Load**: sums over the endpoints whose catalogue entry carries `load` (from the stargates' health probe);
 *   `reporting` says how many; `usedBps` = in flight / capacity. With none reporting, the load is unknown.
 */
import { aprBps } from "../offchain/common/apr";
import { StakeType } from "../offchain/common/stakeMap";
import { MAX_SCORE, type YieldParams } from "../offchain/common/yield";

export const UNDECLARED = "undeclared";
/** Regions listed at most (the rest are counted in `regionCount`, `truncated` says so). */
export const MAX_REGIONS = 500;

export interface EndpointLoad {
  inFlight: number;
  capacity: number;
  queueDepth: number;
  p99Ms: number;
}

/** A catalogue endpoint, as much of it as the map reads. */
export interface MapEndpoint {
  device: string;
  role: string;
  healthy: boolean;
  region?: { country: string; region: string };
  load?: EndpointLoad;
}

/** A device the chain admits now: its stake. */
export interface Admission {
  stakeId: bigint;
  stakeType: StakeType;
}

export interface MapInputs {
  endpoints: readonly MapEndpoint[];
  /** The admitted device's stake, or undefined when the chain does not admit it now. */
  admitted: (device: string) => Admission | undefined;
  /** The latest epoch with a posted batch (null: none yet) and its scores by stake id. */
  epoch: bigint | null;
  scores: ReadonlyMap<bigint, bigint>;
  params: YieldParams;
  /** When the catalogue was built (its `atMs`) and when the map was. */
  catalogueAtMs: number;
  atMs: number;
}

export interface LoadFigures {
  /** Endpoints whose load is known (0: the load is unknown). */
  reporting: number;
  inFlight: number;
  capacity: number;
  queueDepth: number;
  /** inFlight / capacity in basis points (null: unknown or no capacity). */
  usedBps: number | null;
  /** The highest p99 latency reported (null: unknown). */
  maxP99Ms: number | null;
}

export interface RoleFigures {
  admitted: number;
  healthy: number;
  /** Admitted devices with a score in the epoch. */
  scored: number;
  /** Basis points of the peer average (10,000 = average); null: none scored. */
  averageScore: number | null;
  /** The APR of a new stake of this role at `averageScore` (basis points); null: none scored. */
  aprBps: number | null;
  load: LoadFigures;
}

export interface RegionFigures {
  /** `DE/eu-central`, or "undeclared". */
  key: string;
  country?: string;
  region?: string;
  host: RoleFigures;
  gateway: RoleFigures;
}

export interface RegionMap {
  atMs: number;
  catalogueAtMs: number;
  /** The latest scored epoch (a decimal string), or null before any batch is posted. */
  epoch: string | null;
  /** Best first: by the host APR (highest first, none last), then the host average score, then key. Undeclared last. */
  regions: RegionFigures[];
  /** Regions in all (`regions` lists at most MAX_REGIONS). */
  regionCount: number;
  truncated: boolean;
  /** Every region together. */
  totals: { host: RoleFigures; gateway: RoleFigures };
}

const ROLE_TYPE = { host: StakeType.Host, gateway: StakeType.Gateway } as const;
type MapRole = keyof typeof ROLE_TYPE;

class RoleTally {
  admitted = 0;
  healthy = 0;
  scored = 0;
  scoreSum = 0n;
  reporting = 0;
  inFlight = 0;
  capacity = 0;
  queueDepth = 0;
  maxP99Ms: number | null = null;

  add(endpoint: MapEndpoint, score: bigint | undefined): void {
    this.admitted += 1;
    if (endpoint.healthy) this.healthy += 1;
    if (score !== undefined && score <= MAX_SCORE) {
      this.scored += 1;
      this.scoreSum += score;
    }
    const load = endpoint.load;
    if (load) {
      this.reporting += 1;
      this.inFlight += load.inFlight;
      this.capacity += load.capacity;
      this.queueDepth += load.queueDepth;
      this.maxP99Ms = Math.max(this.maxP99Ms ?? 0, load.p99Ms);
    }
  }

  merge(other: RoleTally): void {
    this.admitted += other.admitted;
    this.healthy += other.healthy;
    this.scored += other.scored;
    this.scoreSum += other.scoreSum;
    this.reporting += other.reporting;
    this.inFlight += other.inFlight;
    this.capacity += other.capacity;
    this.queueDepth += other.queueDepth;
    if (other.maxP99Ms !== null) this.maxP99Ms = Math.max(this.maxP99Ms ?? 0, other.maxP99Ms);
  }

  figures(role: MapRole, params: YieldParams): RoleFigures {
    const average = this.scored > 0 ? this.scoreSum / BigInt(this.scored) : null;
    const known = this.reporting > 0;
    return {
      admitted: this.admitted,
      healthy: this.healthy,
      scored: this.scored,
      averageScore: average === null ? null : Number(average),
      aprBps: average === null ? null : Number(aprBps(params, ROLE_TYPE[role], 0n, average)),
      load: {
        reporting: this.reporting,
        inFlight: known ? this.inFlight : 0,
        capacity: known ? this.capacity : 0,
        queueDepth: known ? this.queueDepth : 0,
        usedBps: known && this.capacity > 0 ? Math.floor((this.inFlight * 10_000) / this.capacity) : null,
        maxP99Ms: this.maxP99Ms,
      },
    };
  }
}

interface RegionTally {
  key: string;
  country?: string;
  region?: string;
  host: RoleTally;
  gateway: RoleTally;
}

/** Sorting: the best place for a new host first; "undeclared" is no place, so it is always last. */
function compareRegions(a: RegionFigures, b: RegionFigures): number {
  if ((a.key === UNDECLARED) !== (b.key === UNDECLARED)) return a.key === UNDECLARED ? 1 : -1;
  const apr = (b.host.aprBps ?? -1) - (a.host.aprBps ?? -1);
  if (apr !== 0) return apr;
  const score = (b.host.averageScore ?? -1) - (a.host.averageScore ?? -1);
  if (score !== 0) return score;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The map: the catalogue's admitted hosts and gateways grouped by region, with their figures. */
export function regionMap(inputs: MapInputs): RegionMap {
  const tallies = new Map<string, RegionTally>();
  const seen = new Set<string>();
  for (const endpoint of inputs.endpoints) {
    if (endpoint.role !== "host" && endpoint.role !== "gateway") continue;
    const device = endpoint.device.toLowerCase();
    if (seen.has(device)) continue;
    const admission = inputs.admitted(device);
    if (!admission || admission.stakeType !== ROLE_TYPE[endpoint.role]) continue;
    seen.add(device);
    const key = endpoint.region ? `${endpoint.region.country}/${endpoint.region.region}` : UNDECLARED;
    let tally = tallies.get(key);
    if (!tally) {
      const where = endpoint.region ? { country: endpoint.region.country, region: endpoint.region.region } : {};
      tally = { key, ...where, host: new RoleTally(), gateway: new RoleTally() };
      tallies.set(key, tally);
    }
    tally[endpoint.role].add(endpoint, inputs.scores.get(admission.stakeId));
  }
  const totals = { host: new RoleTally(), gateway: new RoleTally() };
  const regions: RegionFigures[] = [];
  for (const tally of tallies.values()) {
    totals.host.merge(tally.host);
    totals.gateway.merge(tally.gateway);
    const where = tally.country === undefined ? {} : { country: tally.country, region: tally.region };
    regions.push({
      key: tally.key,
      ...where,
      host: tally.host.figures("host", inputs.params),
      gateway: tally.gateway.figures("gateway", inputs.params),
    });
  }
  regions.sort(compareRegions);
  return {
    atMs: inputs.atMs,
    catalogueAtMs: inputs.catalogueAtMs,
    epoch: inputs.epoch === null ? null : inputs.epoch.toString(),
    regions: regions.slice(0, MAX_REGIONS),
    regionCount: regions.length,
    truncated: regions.length > MAX_REGIONS,
    totals: {
      host: totals.host.figures("host", inputs.params),
      gateway: totals.gateway.figures("gateway", inputs.params),
    },
  };
}
