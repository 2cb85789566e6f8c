/**
 * Dynamic sites spill between regions in Edge DNS answers by their gateways' reported load, and come back after
 * the hold (issue 20, D71); the load report a node sends with /ready and the stargate's probes read; the window
 * its p99 comes from.
 */
import { expect } from "chai";
import type { Address } from "viem";

import type { NetworkConfig } from "../../offchain/common/protocol";
import type { Catalogue } from "../../node/context";
import { LatencyWindow } from "../../node/latencyWindow";
import { type LoadReport, formatLoadHeader, parseLoadHeader } from "../../node/loadReport";
import { RCODE, answer } from "../../node/roles/stargate/dnsAnswer";
import { DnsIndexer, servingEndpoints } from "../../node/roles/stargate/dnsIndex";
import { DnsSpill } from "../../node/roles/stargate/dnsSpill";
import { gateway, networkConfig } from "./dnsFixture";

const DE = { country: "DE", region: "eu-central" };
const US = { country: "US", region: "us-east" };
const FR = { country: "FR", region: "eu-west" };
const DYNAMIC = "fast.edge.test";
const REGIONS: NetworkConfig["regions"] = {
  clients: [{ range: "127.0.1.0/24", region: "DE/eu-central" }],
  latency: [
    { from: "DE/eu-central", to: "FR/eu-west", ms: 10 },
    { from: "DE/eu-central", to: "US/us-east", ms: 90 },
  ],
};
// gateway 1 (127.0.0.11) in DE, 2 (.12) in US, 3 (.13) in FR, 4 (.14) in DE too.
const catalogue: Catalogue = {
  atMs: 1,
  endpoints: [
    { ...gateway(1), region: DE },
    { ...gateway(2), region: US },
    { ...gateway(3), region: FR },
    { ...gateway(4), region: DE },
  ],
};
const config = (holdMs = 5_000): NetworkConfig => {
  const base = networkConfig(7, { regions: REGIONS });
  const placement = { mode: "dynamic" as const, queueDepth: 10, p99Ms: 500, returnBelow: 0.5, holdMs };
  return { ...base, sites: [...base.sites, { id: "fast", hostname: DYNAMIC, placement }] };
};
const load = (queueDepth: number, p99Ms = 0): LoadReport => ({ inFlight: 0, capacity: 8, queueDepth, p99Ms });

describe("dynamic sites' spill in Edge DNS (issue 20, D71)", function () {
  let now: number;
  let loads: Map<string, LoadReport>;
  let spill: DnsSpill;
  let indexer: DnsIndexer;
  let cfg: NetworkConfig;

  const setup = (holdMs?: number) => {
    now = 1_000_000;
    loads = new Map();
    spill = new DnsSpill(() => now);
    indexer = new DnsIndexer({ siteTtl: 5, nameserver: "ns.edge.test", log: { warn: () => undefined }, spill });
    cfg = config(holdMs);
  };
  const report = (n: number, value: LoadReport | undefined) => {
    const device = gateway(n).device.toLowerCase();
    if (value) loads.set(device, value);
    else loads.delete(device);
  };
  const observe = () =>
    spill.observe(servingEndpoints(catalogue, cfg.draining), (device: Address) => loads.get(device.toLowerCase()));
  const addresses = (client: string | undefined, name = DYNAMIC) => {
    const reply = answer(indexer.current(cfg, catalogue)!, name, "A", 0, client);
    return reply.rcode === RCODE.NOERROR ? reply.answers.map((a) => (a as { data: string }).data).sort() : reply.rcode;
  };

  beforeEach(() => setup());

  it("answers the nearest region until its gateways' median queue passes the threshold, then the next by latency", () => {
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.11", "127.0.0.14"]);
    // One DE gateway over, the region (the lower median of 15 and 0, R20-1) is not: no spill.
    report(1, load(15));
    report(4, load(0));
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.11", "127.0.0.14"]);
    // Both over (the lower median 11 > 10): DE's clients go to FR (10 ms), not US (90 ms).
    report(4, load(11));
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.13"]);
    expect(spill.status().spilled).to.deep.equal([{ site: DYNAMIC, region: "DE/eu-central", since: now }]);
    // Other sites and other regions' clients are not moved.
    expect(addresses("DE/eu-central", "cdn.edge.test")).to.deep.equal(["127.0.0.11", "127.0.0.14"]);
    expect(addresses("US/us-east")).to.deep.equal(["127.0.0.12"]);
    // p99 alone spills as well: FR's gateway over 500 ms sends DE's clients on to US.
    report(3, load(0, 800));
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.12"]);
  });

  it("comes back only after the load stayed below returnBelow x the thresholds for holdMs: no flapping", () => {
    report(1, load(30));
    report(4, load(30));
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.13"]);
    // Below the threshold (8 < 10) but not below the return level (5): stays spilled however long.
    report(1, load(8));
    report(4, load(8));
    for (let i = 0; i < 10; i++) {
      now += 1_000;
      observe();
      expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.13"]);
    }
    // Below the return level: held for 5 s, one sample back above restarts the hold.
    report(1, load(2));
    report(4, load(2));
    observe();
    now += 4_000;
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.13"]);
    report(1, load(12));
    report(4, load(12));
    observe();
    report(1, load(2));
    report(4, load(2));
    now += 1_000;
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.13"]);
    now += 4_999;
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.13"]);
    now += 1;
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.11", "127.0.0.14"]);
    expect(spill.status().spilled).to.deep.equal([]);
  });

  it("serves the nearest region when every region is over; counts gateways without a report as idle", () => {
    for (const n of [1, 2, 3, 4]) report(n, load(50));
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.11", "127.0.0.14"]);
    // DE's gateways stop reporting (their probes fail to read a header): DE is observed idle, so it is home.
    setup();
    report(2, load(50));
    report(3, load(50));
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.11", "127.0.0.14"]);
  });

  it("forgets a site's spill when the site leaves the configuration", () => {
    report(1, load(30));
    report(4, load(30));
    observe();
    expect(addresses("DE/eu-central")).to.deep.equal(["127.0.0.13"]);
    cfg = { ...cfg, version: 8, sites: cfg.sites.filter((s) => (s as { hostname: string }).hostname !== DYNAMIC) };
    indexer.current(cfg, catalogue);
    expect(spill.status().spilled).to.deep.equal([]);
  });

  describe("the load report (x-edge-load)", () => {
    it("round-trips and clamps what it formats", () => {
      const report = { inFlight: 3, capacity: 64, queueDepth: 12, p99Ms: 45 };
      expect(formatLoadHeader(report)).to.equal("inflight=3;capacity=64;queue=12;p99=45");
      expect(parseLoadHeader(formatLoadHeader(report))).to.deep.equal(report);
      expect(parseLoadHeader(formatLoadHeader({ inFlight: -5, capacity: 1e12, queueDepth: 0.6, p99Ms: 0 }))).to.deep.equal({ inFlight: 0, capacity: 1_000_000_000, queueDepth: 1, p99Ms: 0 }); // prettier-ignore
    });

    it("takes nothing from a malformed, partial, duplicated, oversized or prototype-named header", () => {
      for (const bad of [
        undefined,
        ["inflight=1;capacity=1;queue=1;p99=1", "inflight=1;capacity=1;queue=1;p99=1"],
        "",
        "inflight=1;capacity=1;queue=1",
        "inflight=1;capacity=1;queue=1;p99=1;extra=2",
        "inflight=1;inflight=1;queue=1;p99=1",
        "inflight=-1;capacity=1;queue=1;p99=1",
        "inflight=1.5;capacity=1;queue=1;p99=1",
        "inflight=1;capacity=1;queue=1;p99=1000000001",
        "constructor=1;capacity=1;queue=1;p99=1",
        "__proto__=1;capacity=1;queue=1;p99=1",
        `inflight=1;capacity=1;queue=1;p99=${"1".padStart(200, "0")}`,
      ])
        expect(parseLoadHeader(bad), JSON.stringify(bad)).to.equal(undefined);
      expect(parseLoadHeader(" inflight=1 ; capacity=2;queue=3 ;p99=4")).to.deep.equal({ inFlight: 1, capacity: 2, queueDepth: 3, p99Ms: 4 }); // prettier-ignore
    });
  });

  describe("the latency window", () => {
    it("gives the nearest-rank p99 of the samples within its window, in fixed memory", () => {
      let t = 0;
      const window = new LatencyWindow({ size: 200, windowMs: 1_000, cacheMs: 0, now: () => t });
      expect(window.p99()).to.equal(0);
      for (let i = 1; i <= 100; i++) window.record(i);
      expect(window.p99()).to.equal(99);
      window.record(-1);
      window.record(Number.NaN);
      expect(window.p99()).to.equal(99);
      // 300 more samples: only the last 200 are kept (101..300 of values 1000+).
      for (let i = 1; i <= 300; i++) window.record(1_000 + i);
      expect(window.p99()).to.equal(1_298);
      t = 1_001;
      expect(window.p99()).to.equal(0); // all older than the window
    });
  });
});
