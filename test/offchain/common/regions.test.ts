import { expect } from "chai";
import { Value } from "typebox/value";

import {
  RegionSchema,
  countryCodes,
  isCountry,
  parseRegion,
  regionKey,
  regionProblem,
} from "../../../offchain/common/protocol";

describe("regions (D68)", function () {
  it("knows the 249 ISO 3166-1 alpha-2 country codes", function () {
    const codes = countryCodes();
    expect(codes.size).to.equal(249);
    for (const code of ["DE", "US", "FR", "GB", "JP", "BR", "AQ", "AX", "SS", "CW", "BQ", "TW", "PS"])
      expect(isCountry(code), code).to.equal(true);
    for (const code of codes) expect(code).to.match(/^[A-Z]{2}$/);
  });

  it("refuses groupings, reserved, withdrawn and user-assigned codes and lower case", function () {
    for (const code of ["EU", "EZ", "UN", "ZZ", "UK", "XK", "XA", "QO", "SU", "YU", "AN", "de", "D", "DEU", ""])
      expect(isCountry(code), code).to.equal(false);
  });

  it("parses COUNTRY/name and gives its key back", function () {
    const region = parseRegion("DE/eu-central");
    expect(region).to.deep.equal({ country: "DE", region: "eu-central" });
    expect(regionKey(region)).to.equal("DE/eu-central");
    expect(Value.Check(RegionSchema, region)).to.equal(true);
    expect(regionProblem(region)).to.equal(undefined);
    expect(parseRegion("US/1").region).to.equal("1");
  });

  it("says why a region does not parse", function () {
    const cases: [string, RegExp][] = [
      ["DE", /"DE" is not COUNTRY\/region/],
      ["DE/eu/central", /is not COUNTRY\/region/],
      ["EU/eu-central", /"EU" is not an ISO 3166-1 alpha-2 country code/],
      ["ZZ/x", /"ZZ" is not an ISO 3166-1/],
      ["de/eu-central", /"de" is not an ISO 3166-1/],
      ["XK/pristina", /"XK" is not an ISO 3166-1/],
      ["DE/", /"" is not a region name/],
      ["DE/Eu-Central", /"Eu-Central" is not a region name/],
      ["DE/-east", /is not a region name/],
      ["DE/" + "a".repeat(33), /is not a region name/],
    ];
    for (const [text, reason] of cases) expect(() => parseRegion(text), text).to.throw(reason);
  });

  it("checks the schema's shape and the country's assignment apart", function () {
    expect(Value.Check(RegionSchema, { country: "de", region: "x" })).to.equal(false);
    expect(Value.Check(RegionSchema, { country: "DE", region: "x", extra: 1 })).to.equal(false);
    expect(Value.Check(RegionSchema, { country: "EU", region: "x" })).to.equal(true);
    expect(regionProblem({ country: "EU", region: "x" })).to.match(/"EU" is not an ISO 3166-1/);
  });
});
