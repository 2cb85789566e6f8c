/**
 * The map of regions' figures (console/regionsView.ts), pure: counts by region and role, averages of posted
 * scores, the APR at them (offchain/common/apr.ts, held to RewardsManager's `aprBps` here), capacity used,
 * undeclared, regions without hosts, ordering and bounds; and the catalogue's schema (console/regionSource.ts).
 */
import { expect } from "chai";
import fc from "fast-check";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

import { MAX_REGIONS, type MapEndpoint, type MapInputs, UNDECLARED, regionMap } from "../../console/regionsView";
import { CATALOGUE_MAX_ENDPOINTS, type PublicCatalogue, catalogueProblem } from "../../console/regionSource";
import type { Catalogue } from "../../node/context";
import { aprBps, yieldParamsOf } from "../../offchain/common/apr";
import { StakeType } from "../../offchain/common/stakeMap";
import { DEFAULT_YIELD_PARAMS } from "../../offchain/common/yield";
import { FC_SEED, fcRuns } from "../shared/fastcheck";
import { deployRewardsFixture } from "../shared/fixtures";

const DAY = 86_400n;
const device = (n: number) => `0x${n.toString(16).padStart(40, "0")}`;
const DE = { country: "DE", region: "eu-central" };
const US = { country: "US", region: "us-east" };
const FR = { country: "FR", region: "eu-west" };

/** Inputs where device n is admitted with stake n of `types[n]` (host unless said), scored `scores[n]`. */
function inputs(
  endpoints: MapEndpoint[],
  options: { types?: Record<number, StakeType>; scores?: Record<number, number>; epoch?: bigint | null } = {},
): MapInputs {
  const admitted = new Map(
    endpoints.map((e) => {
      const n = Number(BigInt(e.device));
      return [e.device.toLowerCase(), { stakeId: BigInt(n), stakeType: options.types?.[n] ?? StakeType.Host }];
    }),
  );
  return {
    endpoints,
    admitted: (d) => admitted.get(d),
    epoch: options.epoch === undefined ? 7n : options.epoch,
    scores: new Map(Object.entries(options.scores ?? {}).map(([id, s]) => [BigInt(id), BigInt(s)])),
    params: DEFAULT_YIELD_PARAMS,
    catalogueAtMs: 1_000,
    atMs: 2_000,
  };
}
const host = (n: number, region?: typeof DE, more: Partial<MapEndpoint> = {}): MapEndpoint => ({
  device: device(n),
  role: "host",
  healthy: true,
  ...(region ? { region } : {}),
  ...more,
});
const gateway = (n: number, region?: typeof DE, more: Partial<MapEndpoint> = {}): MapEndpoint => ({
  ...host(n, region, more),
  role: "gateway",
});
const load = (inFlight: number, capacity: number, queueDepth = 0, p99Ms = 10) => ({
  inFlight,
  capacity,
  queueDepth,
  p99Ms,
});

describe("Console: the map of regions (figures)", function () {
  it("averages each region's posted scores and gives the APR of a new stake at that average", function () {
    const map = regionMap(
      inputs([host(1, DE), host(2, DE), host(3, DE), host(4, US), gateway(5, DE), gateway(6, US)], {
        types: { 5: StakeType.Gateway, 6: StakeType.Gateway },
        scores: { 1: 12_000, 2: 9_001, 4: 8_000, 5: 15_000 },
      }),
    );
    expect(map.epoch).to.equal("7");
    expect(map.regions.map((r) => r.key)).to.deep.equal(["DE/eu-central", "US/us-east"]);
    const [de, us] = map.regions;
    expect(de).to.include({ country: "DE", region: "eu-central" });
    // Hosts 1 and 2 scored (host 3 did not): floor((12000 + 9001) / 2) = 10500; 10% base at 1.05 = 10.50%.
    expect(de.host).to.include({ admitted: 3, healthy: 3, scored: 2, averageScore: 10_500, aprBps: 1_050 });
    expect(de.gateway).to.include({ admitted: 1, scored: 1, averageScore: 15_000, aprBps: 2_250 }); // 15% x 1.5
    expect(us.host).to.include({ admitted: 1, scored: 1, averageScore: 8_000, aprBps: 800 });
    expect(us.gateway).to.include({ admitted: 1, scored: 0, averageScore: null, aprBps: null });
    expect(map.totals.host).to.include({ admitted: 4, scored: 3, averageScore: 9_667, aprBps: 966 });
    expect(map.totals.gateway).to.include({ admitted: 2, scored: 1, averageScore: 15_000 });
  });

  it("counts only admitted devices in their own role, once each, and skips scores the contract skips", function () {
    const base = inputs(
      [
        host(1, DE),
        host(1, US), // the same device again: counted once, where first seen
        host(2, DE), // backed by a gateway stake: not a host
        gateway(3, DE), // backed by a host stake: not a gateway
        host(4, DE, { healthy: false }),
        host(5, DE), // not admitted
        { device: device(6), role: "stargate", healthy: true, region: DE }, // stargates are not on the map
        host(7, DE),
      ],
      { types: { 2: StakeType.Gateway, 6: StakeType.Stargate }, scores: { 1: 10_000, 4: 20_001, 7: 20_000 } },
    );
    const map = regionMap({ ...base, admitted: (d) => (d === device(5) ? undefined : base.admitted(d)) });
    expect(map.regions.map((r) => r.key)).to.deep.equal(["DE/eu-central"]);
    const de = map.regions[0];
    expect(de.host).to.include({ admitted: 3, healthy: 2, scored: 2, averageScore: 15_000 });
    expect(de.gateway.admitted).to.equal(0);
  });

  it("puts undeclared last and orders regions by a new host's APR, then score, then name; no hosts: no APR", function () {
    const map = regionMap(
      inputs([host(1), host(2, FR), host(3, US), host(4, DE), gateway(5, { country: "JP", region: "ap-east" })], {
        types: { 5: StakeType.Gateway },
        scores: { 1: 20_000, 2: 9_000, 3: 11_000, 4: 9_000 },
      }),
    );
    expect(map.regions.map((r) => r.key)).to.deep.equal([
      "US/us-east",
      "DE/eu-central",
      "FR/eu-west",
      "JP/ap-east", // a gateway, no hosts: no host APR, after every region with one
      UNDECLARED, // the best score, but no place to add a host: last
    ]);
    const jp = map.regions[3];
    expect(jp.country).to.equal("JP");
    expect(jp.host).to.deep.equal({
      admitted: 0,
      healthy: 0,
      scored: 0,
      averageScore: null,
      aprBps: null,
      load: { reporting: 0, inFlight: 0, capacity: 0, queueDepth: 0, usedBps: null, maxP99Ms: null },
    });
    expect(map.regions[4]).to.not.have.property("country");
    expect(map.regions[4].host.aprBps).to.equal(2_000);
  });

  it("sums the capacity used by those reporting their load; none reporting: unknown", function () {
    const map = regionMap(
      inputs([
        host(1, DE, { load: load(3, 8, 1, 40) }),
        host(2, DE, { load: load(5, 8, 4, 90) }),
        host(3, DE), // no load known
        host(4, US),
        host(5, FR, { load: load(0, 0) }),
      ]),
    );
    const de = map.regions.find((r) => r.key === "DE/eu-central")!;
    expect(de.host.load).to.deep.equal({
      reporting: 2,
      inFlight: 8,
      capacity: 16,
      queueDepth: 5,
      usedBps: 5_000,
      maxP99Ms: 90,
    });
    expect(map.regions.find((r) => r.key === "US/us-east")!.host.load).to.include({ reporting: 0, usedBps: null });
    expect(map.regions.find((r) => r.key === "FR/eu-west")!.host.load).to.include({ reporting: 1, usedBps: null });
    expect(map.totals.host.load).to.include({ reporting: 3, inFlight: 8, capacity: 16, usedBps: 5_000 });
  });

  it("is empty before any catalogue or score, and bounded however many regions the catalogue names", function () {
    const empty = regionMap(inputs([], { epoch: null }));
    expect(empty).to.deep.include({ epoch: null, regions: [], regionCount: 0, truncated: false });
    expect(empty.totals.host.admitted).to.equal(0);

    const many = Array.from({ length: MAX_REGIONS + 20 }, (_, i) =>
      host(i + 1, { country: "DE", region: `r${i}` }, {}),
    );
    const map = regionMap(inputs(many, { scores: { 1: 5_000 } }));
    expect(map.regions.length).to.equal(MAX_REGIONS);
    expect(map).to.include({ regionCount: MAX_REGIONS + 20, truncated: true });
    expect(map.regions[0].key).to.equal("DE/r0"); // the only scored one comes first
    expect(map.totals.host.admitted).to.equal(MAX_REGIONS + 20); // totals count every region
  });

  it("APR: the shared formula is RewardsManager's aprBps, to the basis point", async function () {
    const f = await loadFixture(deployRewardsFixture);
    const params = yieldParamsOf(await f.rewards.yieldParams());
    expect(params).to.deep.equal(DEFAULT_YIELD_PARAMS);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(StakeType.Host, StakeType.Gateway, StakeType.Stargate),
        fc.bigInt({ min: 0n, max: 1_000n * DAY }),
        fc.bigInt({ min: 0n, max: 20_000n }),
        async (type, activeTime, score) => {
          expect(aprBps(params, type, activeTime, score)).to.equal(await f.rewards.aprBps(type, activeTime, score));
        },
      ),
      { seed: FC_SEED, numRuns: fcRuns(60) },
    );
  });

  describe("the catalogue's schema", function () {
    // The stargates' own catalogue type (node/context.ts, with D71's load) is one the map reads: this stops compiling
    // if a field the map reads changes shape.
    const readable = (catalogue: Catalogue): PublicCatalogue => catalogue;

    const good = {
      atMs: 1,
      endpoints: [
        { device: device(1), role: "host", url: "http://127.0.0.1:1", healthy: true, version: 1, region: DE },
        { device: device(2), role: "gateway", url: "http://127.0.0.1:2", healthy: false, version: 0, load: load(1, 2) },
      ],
      extra: "newer stargates may add fields",
    };

    it("takes a catalogue, with or without regions and loads", function () {
      expect(catalogueProblem(good)).to.equal(undefined);
      expect(catalogueProblem(readable(good as Catalogue))).to.equal(undefined);
      expect(catalogueProblem({ atMs: 0, endpoints: [] })).to.equal(undefined);
    });

    it("refuses malformed ones with the first problem's path", function () {
      const endpoint = good.endpoints[0];
      const bad = (change: object) => catalogueProblem({ atMs: 1, endpoints: [{ ...endpoint, ...change }] });
      expect(catalogueProblem(null)).to.be.a("string");
      expect(catalogueProblem([])).to.be.a("string");
      expect(catalogueProblem({ atMs: 1 })).to.be.a("string");
      expect(bad({ device: "0x12" })).to.match(/^at \/endpoints\/0\/device/);
      expect(bad({ healthy: "yes" })).to.match(/^at \/endpoints\/0\/healthy/);
      expect(bad({ region: { country: "de", region: "x" } })).to.match(/^at \/endpoints\/0\/region/);
      expect(bad({ load: { ...load(1, 2), inFlight: -1 } })).to.match(/^at \/endpoints\/0\/load/);
      expect(bad({ load: { inFlight: 1 } })).to.match(/^at \/endpoints\/0\/load/);
      expect(bad({ url: "x".repeat(3_000) })).to.match(/^at \/endpoints\/0\/url/);
    });

    it("refuses more than the endpoints allowed", function () {
      const endpoints = Array.from({ length: CATALOGUE_MAX_ENDPOINTS + 1 }, () => good.endpoints[0]);
      expect(catalogueProblem({ atMs: 1, endpoints })).to.match(/^at \/endpoints/);
    });
  });
});
