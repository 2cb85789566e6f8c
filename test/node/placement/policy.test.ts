import { expect } from "chai";

import { allows, compilePolicy, gatewayRefusal } from "../../../node/placement";
import { type Placement, PlacementSchema, placementProblem } from "../../../offchain/common/protocol";
import { Value } from "typebox/value";

const DE = { country: "DE", region: "eu-central" };
const FR = { country: "FR", region: "eu-west" };
const US = { country: "US", region: "us-east" };
const GW = "0x" + "ab".repeat(20);
const OTHER = "0x" + "cd".repeat(20);

describe("placement policies", function () {
  describe("placementProblem", function () {
    it("accepts each mode, with the dynamic defaults optional", function () {
      const good: Placement[] = [
        { mode: "static", regions: ["DE/eu-central"] },
        { mode: "static", gateways: [GW] },
        { mode: "static", regions: ["DE/eu-central", "FR/eu-west"], gateways: [GW, OTHER] },
        { mode: "dynamic", queueDepth: 10, p99Ms: 200 },
        { mode: "dynamic", queueDepth: 1, p99Ms: 1, returnBelow: 0.25, holdMs: 0 },
        { mode: "enforced", countries: ["DE", "FR"] },
      ];
      for (const p of good) {
        expect(placementProblem(p), JSON.stringify(p)).to.equal(undefined);
        expect(Value.Check(PlacementSchema, p)).to.equal(true);
      }
    });

    it("refuses bad policies with a message that says what is wrong", function () {
      const bad: [unknown, RegExp][] = [
        [null, /is an object/],
        [["static"], /is an object/],
        [{ mode: "nearest" }, /mode is "static", "dynamic" or "enforced" \(not "nearest"\)/],
        [{ regions: ["DE/eu-central"] }, /\(not absent\)/],
        [{ mode: "static" }, /at least one region or gateway/],
        [{ mode: "static", regions: [], gateways: [] }, /at least one region or gateway/],
        [{ mode: "static", regions: ["ZZ/eu"] }, /"ZZ" is not an ISO 3166-1 alpha-2/],
        [{ mode: "static", regions: ["de/eu-central"] }, /static placement at \/regions\/0/],
        [{ mode: "static", regions: ["DE/eu-central", "DE/eu-central"] }, /region DE\/eu-central twice/],
        [{ mode: "static", gateways: [GW, GW.toUpperCase().replace("0X", "0x")] }, /gateway .* twice/],
        [{ mode: "static", gateways: ["0x12"] }, /static placement at \/gateways\/0/],
        [{ mode: "static", regions: Array(257).fill("DE/eu-central") }, /at \/regions/],
        [{ mode: "static", regions: ["DE/eu-central"], extra: 1 }, /static placement/],
        [{ mode: "dynamic", queueDepth: 0, p99Ms: 100 }, /at \/queueDepth/],
        [{ mode: "dynamic", queueDepth: 5 }, /dynamic placement/],
        [{ mode: "dynamic", queueDepth: 5, p99Ms: 100, returnBelow: 1 }, /at \/returnBelow/],
        [{ mode: "dynamic", queueDepth: 5, p99Ms: 100, returnBelow: 0 }, /at \/returnBelow/],
        [{ mode: "dynamic", queueDepth: 5, p99Ms: 100, holdMs: -1 }, /at \/holdMs/],
        [{ mode: "dynamic", queueDepth: 1.5, p99Ms: 100 }, /at \/queueDepth/],
        [{ mode: "enforced", countries: [] }, /enforced placement at \/countries/],
        [{ mode: "enforced", countries: ["EU"] }, /"EU" is not an ISO 3166-1 alpha-2 country code/],
        [{ mode: "enforced", countries: ["ZZ"] }, /"ZZ" is not an ISO 3166-1/],
        [{ mode: "enforced", countries: ["de"] }, /at \/countries\/0/],
        [{ mode: "enforced", countries: ["DE", "DE"] }, /country DE twice/],
        [{ mode: "enforced", countries: Array(250).fill("DE") }, /at \/countries/],
        [{ mode: "enforced", countries: ["DE"], regions: ["DE/eu-central"] }, /enforced placement/],
      ];
      for (const [p, message] of bad) expect(placementProblem(p), JSON.stringify(p)?.slice(0, 80)).to.match(message);
    });

    it("compiling a bad policy throws with its problem; a good one is compiled once per object", function () {
      expect(() => compilePolicy({ mode: "enforced", countries: ["XX"] })).to.throw(RangeError, /not an ISO/);
      const p: Placement = { mode: "enforced", countries: ["DE"] };
      expect(compilePolicy(p)).to.equal(compilePolicy(p));
      expect(compilePolicy(undefined).mode).to.equal("any");
    });
  });

  describe("allows", function () {
    it("no policy: every device, declared or not", function () {
      for (const role of ["host", "gateway"] as const) {
        expect(allows(undefined, undefined, GW, role)).to.equal(true);
        expect(allows(undefined, US, GW, role)).to.equal(true);
      }
    });

    it("a device that declared no region never passes a policy", function () {
      const policies: Placement[] = [
        { mode: "static", regions: ["DE/eu-central"], gateways: [GW] },
        { mode: "static", gateways: [GW] },
        { mode: "dynamic", queueDepth: 5, p99Ms: 100 },
        { mode: "enforced", countries: ["DE"] },
      ];
      for (const p of policies)
        for (const role of ["host", "gateway"] as const) expect(allows(p, undefined, GW, role), p.mode).to.equal(false);
    });

    it("static: gateways listed or in a listed region; hosts in a listed region, anywhere when only gateways", function () {
      const both: Placement = {
        mode: "static",
        regions: ["DE/eu-central"],
        gateways: [GW.toUpperCase().replace("0X", "0x")],
      };
      expect(allows(both, US, GW, "gateway")).to.equal(true);
      expect(allows(both, DE, OTHER, "gateway")).to.equal(true);
      expect(allows(both, FR, OTHER, "gateway")).to.equal(false);
      expect(allows(both, DE, OTHER, "host")).to.equal(true);
      expect(allows(both, US, GW, "host")).to.equal(false);
      const onlyGateways: Placement = { mode: "static", gateways: [GW] };
      expect(allows(onlyGateways, US, GW, "gateway")).to.equal(true);
      expect(allows(onlyGateways, US, OTHER, "gateway")).to.equal(false);
      expect(allows(onlyGateways, US, OTHER, "host")).to.equal(true);
      // The same region name in another country is another region.
      expect(allows(both, { country: "AT", region: "eu-central" }, OTHER, "host")).to.equal(false);
    });

    it("enforced: only listed countries, whatever the region name", function () {
      const p: Placement = { mode: "enforced", countries: ["DE", "FR"] };
      expect(allows(p, DE, GW)).to.equal(true);
      expect(allows(p, { country: "FR", region: "anything" }, GW, "gateway")).to.equal(true);
      expect(allows(p, US, GW)).to.equal(false);
      expect(allows(p, { country: "US", region: "eu-central" }, GW)).to.equal(false);
    });

    it("dynamic: any declared device", function () {
      expect(allows({ mode: "dynamic", queueDepth: 5, p99Ms: 100 }, US, GW, "gateway")).to.equal(true);
    });
  });

  describe("gatewayRefusal", function () {
    it("a gateway outside the policy is told 421 EDGE_NODE_PLACEMENT with the policy in the message", function () {
      const p: Placement = { mode: "enforced", countries: ["DE", "FR"] };
      expect(gatewayRefusal(p, DE, GW)).to.equal(undefined);
      expect(gatewayRefusal(undefined, undefined, GW)).to.equal(undefined);
      const refusal = gatewayRefusal(p, US, GW)!;
      expect(refusal.code).to.equal("EDGE_NODE_PLACEMENT");
      expect(refusal.message).to.equal(
        "this gateway (in US/us-east) does not serve the site: its placement is enforced DE, FR",
      );
      expect(gatewayRefusal(p, undefined, GW)!.message).to.match(/that declared no region/);
    });
  });
});
