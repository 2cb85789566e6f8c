import { expect } from "chai";

import { type Decision, PlacementEngine, type SiteRef } from "../../../node/placement";
import { type Region, parseRegion } from "../../../offchain/common/protocol";

const R = (key: string): Region => parseRegion(key);
const DE = R("DE/eu-central");
const FR = R("FR/eu-west");
const US = R("US/us-east");
const hostOf = (d: Decision) => ("host" in d ? d.host : "wait" in d ? "wait" : d.code);

/** An engine with hosts id -> [region key or "", capacity]. */
function engineWith(hosts: Record<string, [string, number]>): PlacementEngine {
  const e = new PlacementEngine();
  for (const [id, [key, capacity]] of Object.entries(hosts)) e.join(id, { region: key ? R(key) : undefined, capacity });
  return e;
}

describe("placement engine", function () {
  describe("no policy", function () {
    const site: SiteRef = { name: "open" };

    it("takes the host with the most free slots anywhere, undeclared included; ties to the least recently started", function () {
      const e = engineWith({ a: ["DE/eu-central", 2], b: ["", 4], c: ["US/us-east", 4] });
      // b and c have 4 free and never started: the first considered (declared regions, then undeclared) wins.
      expect(hostOf(e.decide(site, DE, 0))).to.equal("c");
      e.started("c");
      expect(hostOf(e.decide(site, DE, 0))).to.equal("b");
      e.started("b");
      // b, c: 3 free each; c started before b.
      expect(hostOf(e.decide(site, DE, 0))).to.equal("c");
      expect(e.decide(site, DE, 0, "c")).to.deep.equal({ host: "b", region: "" });
      e.started("a");
      e.started("a");
      expect(hostOf(e.decide(site, DE, 0, "c"))).to.equal("b");
    });

    it("waits while every host is busy or unhealthy, and refuses with EDGE_NODE_NO_HOSTS when none is linked", function () {
      const e = engineWith({ a: ["DE/eu-central", 1], b: ["", 1] });
      e.started("a");
      e.setHealthy("b", false);
      expect(e.decide(site, DE, 0)).to.include({ wait: true });
      e.setHealthy("b", true);
      expect(hostOf(e.decide(site, DE, 0))).to.equal("b");
      e.leave("a");
      e.leave("b");
      expect(e.decide(site, DE, 0)).to.deep.equal({
        refuse: true,
        code: "EDGE_NODE_NO_HOSTS",
        message: "no admitted host is linked",
      });
      const only = engineWith({ a: ["", 1] });
      expect(only.decide(site, DE, 0, "a")).to.include({ refuse: true, code: "EDGE_NODE_NO_HOSTS" });
    });
  });

  describe("host index", function () {
    it("tracks capacity changes, region moves, finishes after a leave, and refuses starts on unknown hosts", function () {
      const e = engineWith({ a: ["DE/eu-central", 2] });
      const site: SiteRef = { name: "s", placement: { mode: "enforced", countries: ["DE"] } };
      e.started("a");
      e.started("a");
      expect(e.decide(site, DE, 0)).to.include({ wait: true });
      e.setCapacity("a", 3);
      expect(hostOf(e.decide(site, DE, 0))).to.equal("a");
      e.setCapacity("a", 1); // below the jobs in flight: no free slot, no negative count
      expect(e.decide(site, DE, 0)).to.include({ wait: true });
      e.join("a", { region: FR, capacity: 3 }); // moved to France, its 2 jobs still in flight
      expect(e.hosts.host("a")).to.include({ inflight: 2, free: 1 });
      expect(e.decide(site, DE, 0)).to.include({ code: "EDGE_NODE_NO_ELIGIBLE_HOST" });
      expect(e.hosts.region("DE/eu-central")).to.include({ hosts: 0, healthy: 0 });
      e.leave("a");
      e.finished("a"); // a job of a host that left ends: ignored
      expect(() => e.started("a")).to.throw(RangeError, /no host a/);
      expect(() => e.join("b", { region: DE, capacity: -1 })).to.throw(RangeError, /capacity/);
    });
  });

  describe("static", function () {
    it("places only in the listed regions; waits while they are busy; refuses when none has a host", function () {
      const e = engineWith({ de: ["DE/eu-central", 1], fr: ["FR/eu-west", 5], us: ["US/us-east", 9], none: ["", 9] });
      const site: SiteRef = { name: "s", placement: { mode: "static", regions: ["DE/eu-central", "FR/eu-west"] } };
      expect(hostOf(e.decide(site, US, 0))).to.equal("fr");
      for (let i = 0; i < 5; i++) e.started("fr");
      expect(hostOf(e.decide(site, US, 0))).to.equal("de");
      e.started("de");
      expect(e.decide(site, US, 0)).to.include({ wait: true });
      const nowhere: SiteRef = { name: "t", placement: { mode: "static", regions: ["JP/ap-northeast"] } };
      expect(e.decide(nowhere, US, 0)).to.deep.equal({
        refuse: true,
        code: "EDGE_NODE_NO_ELIGIBLE_HOST",
        message: "no host the site's placement allows (static regions JP/ap-northeast) is linked to this gateway",
      });
    });

    it("with only gateways listed, any declared host serves it, never an undeclared one", function () {
      const e = engineWith({ us: ["US/us-east", 1], none: ["", 9] });
      const site: SiteRef = { name: "s", placement: { mode: "static", gateways: ["0x" + "ab".repeat(20)] } };
      expect(hostOf(e.decide(site, US, 0))).to.equal("us");
      e.started("us");
      expect(e.decide(site, US, 0)).to.include({ wait: true });
      e.leave("us");
      expect(e.decide(site, US, 0)).to.include({ code: "EDGE_NODE_NO_ELIGIBLE_HOST" });
    });
  });

  describe("enforced", function () {
    const site: SiteRef = { name: "gdpr", placement: { mode: "enforced", countries: ["DE", "FR"] } };

    it("places in any region of the listed countries, never elsewhere, however idle the rest", function () {
      const e = engineWith({ de1: ["DE/eu-central", 2], de2: ["DE/eu-north", 3], us: ["US/us-east", 100] });
      expect(hostOf(e.decide(site, US, 0))).to.equal("de2");
      for (const id of ["de2", "de1", "de2", "de2", "de1"]) e.started(id);
      expect(e.decide(site, US, 0)).to.include({ wait: true });
      e.join("fr", { region: FR, capacity: 1 });
      expect(e.decide(site, US, 0)).to.deep.equal({ host: "fr", region: "FR/eu-west" });
    });

    it("waits while its only hosts are unhealthy; refuses once they are evicted; a retry avoids the failed host", function () {
      const e = engineWith({ de: ["DE/eu-central", 2], us: ["US/us-east", 2] });
      e.setHealthy("de", false);
      expect(e.decide(site, DE, 0)).to.include({ wait: true });
      e.setHealthy("de", true);
      expect(e.decide(site, DE, 0, "de")).to.deep.equal({
        refuse: true,
        code: "EDGE_NODE_NO_ELIGIBLE_HOST",
        message:
          "no host other than the one that failed the site's placement allows (enforced DE, FR) is linked to this gateway",
      });
      e.leave("de");
      expect(e.decide(site, DE, 0)).to.include({ refuse: true, code: "EDGE_NODE_NO_ELIGIBLE_HOST" });
    });

    it("takes(): a freed host suits a waiting job only inside the policy", function () {
      const e = engineWith({ de: ["DE/eu-central", 1], us: ["US/us-east", 1], none: ["", 1] });
      expect(e.takes(site, "de", DE, 0)).to.equal(true);
      expect(e.takes(site, "us", DE, 0)).to.equal(false);
      expect(e.takes(site, "none", DE, 0)).to.equal(false);
      expect(e.takes(site, "gone", DE, 0)).to.equal(false);
      expect(e.takes({ name: "open" }, "none", DE, 0)).to.equal(true);
    });
  });

  describe("dynamic", function () {
    const placement = { mode: "dynamic", queueDepth: 10, p99Ms: 200, returnBelow: 0.5, holdMs: 1_000 } as const;
    const site: SiteRef = { name: "dyn", placement };
    const hosts = { de: ["DE/eu-central", 4], fr: ["FR/eu-west", 4], us: ["US/us-east", 4] } as Record<
      string,
      [string, number]
    >;

    function engine() {
      const e = engineWith(hosts);
      e.setLatency({ "DE/eu-central": 0, "US/us-east": 20, "FR/eu-west": 80 });
      return e;
    }

    it("uses the origin's region first, even when other regions have more free slots", function () {
      const e = engine();
      e.join("us2", { region: US, capacity: 50 });
      expect(hostOf(e.decide(site, DE, 0))).to.equal("de");
      for (let i = 0; i < 4; i++) e.started("de");
      expect(e.decide(site, DE, 0)).to.include({ wait: true }); // under threshold: it waits at home
      expect(hostOf(e.decide(site, FR, 0))).to.equal("fr");
    });

    it("spills to the next region by latency past a threshold, and returns only after holdMs below half of both", function () {
      const e = engine();
      e.observe("DE/eu-central", { queueDepth: 11, p99Ms: 50 }, 0);
      expect(e.decide(site, DE, 0)).to.deep.equal({ host: "us", region: "US/us-east" });
      e.setLatency({ "DE/eu-central": 0, "US/us-east": 90, "FR/eu-west": 80 });
      expect(hostOf(e.decide(site, DE, 10))).to.equal("fr");
      e.observe("DE/eu-central", { queueDepth: 4, p99Ms: 50 }, 100); // below half: the hold starts
      expect(hostOf(e.decide(site, DE, 1_099))).to.equal("fr");
      e.observe("DE/eu-central", { queueDepth: 5, p99Ms: 50 }, 1_050); // not below half (5 is not < 5): restarts
      e.observe("DE/eu-central", { queueDepth: 0, p99Ms: 99 }, 1_200);
      expect(hostOf(e.decide(site, DE, 2_199))).to.equal("fr");
      expect(e.spill.spilledRegions("dyn")).to.deep.equal([{ region: "DE/eu-central", since: 0 }]);
      expect(hostOf(e.decide(site, DE, 2_200))).to.equal("de");
      expect(e.spill.spilledRegions("dyn")).to.deep.equal([]);
      e.observe("DE/eu-central", { queueDepth: 0, p99Ms: 201 }, 2_300); // p99 alone spills it again
      expect(hostOf(e.decide(site, DE, 2_300))).to.equal("fr");
    });

    it("spill states are per site: another site's thresholds decide its own route", function () {
      const e = engine();
      const lax: SiteRef = { name: "lax", placement: { mode: "dynamic", queueDepth: 100, p99Ms: 1_000 } };
      e.observe("DE/eu-central", { queueDepth: 20, p99Ms: 300 }, 0);
      expect(hostOf(e.decide(site, DE, 0))).to.equal("us");
      expect(hostOf(e.decide(lax, DE, 0))).to.equal("de");
    });

    it("skips regions without a healthy host; with every region spilled, the nearest free host serves", function () {
      const e = engine();
      e.setHealthy("de", false);
      expect(hostOf(e.decide(site, DE, 0))).to.equal("us");
      e.setHealthy("de", true);
      for (const key of ["DE/eu-central", "US/us-east", "FR/eu-west"]) e.observe(key, { queueDepth: 50, p99Ms: 0 }, 0);
      expect(hostOf(e.decide(site, DE, 0))).to.equal("de");
      for (let i = 0; i < 4; i++) e.started("de");
      expect(hostOf(e.decide(site, DE, 0))).to.equal("us");
      for (const id of ["us", "us", "us", "us", "fr", "fr", "fr", "fr"]) e.started(id);
      expect(e.decide(site, DE, 0)).to.include({ wait: true });
      for (const id of ["de", "us", "fr"]) e.leave(id);
      expect(e.decide(site, DE, 0)).to.include({ refuse: true, code: "EDGE_NODE_NO_ELIGIBLE_HOST" });
    });

    it("takes(): a freed host suits a waiting job when it is in the region the site is routed to", function () {
      const e = engine();
      expect(e.takes(site, "de", DE, 0)).to.equal(true);
      expect(e.takes(site, "us", DE, 0)).to.equal(false);
      e.observe("DE/eu-central", { queueDepth: 11, p99Ms: 0 }, 0);
      expect(e.takes(site, "us", DE, 0)).to.equal(true);
    });

    it("a gateway that declared no region orders regions by latency alone", function () {
      const e = engine();
      expect(hostOf(e.decide(site, undefined, 0))).to.equal("de");
      e.setLatency({ "FR/eu-west": 1 });
      expect(hostOf(e.decide(site, undefined, 0))).to.equal("fr");
    });
  });
});
