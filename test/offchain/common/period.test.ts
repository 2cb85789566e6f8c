import { expect } from "chai";

import { PeriodFormatError, monthOf, periodIndex } from "../../../offchain/common/period";
import { toBatches } from "../../../offchain/common/batches";

describe("offchain/common/period", function () {
  it("maps UTC months to consecutive indexes", function () {
    expect(periodIndex("1970-01")).to.equal(0);
    expect(periodIndex("2026-11")).to.equal((2026 - 1970) * 12 + 10);
    expect(periodIndex("2026-12") + 1).to.equal(periodIndex("2027-01"));
  });

  it("takes a plain index for custom periods", function () {
    expect(periodIndex("42")).to.equal(42);
    expect(periodIndex("4294967295")).to.equal(2 ** 32 - 1);
  });

  it("rejects anything else with a message", function () {
    for (const bad of ["2026-13", "2026-1", "26-01", "-1", "4294967296", "", "abc"]) {
      expect(() => periodIndex(bad), bad).to.throw(PeriodFormatError, /neither a UTC month/);
    }
  });

  it("names the month of a time", function () {
    expect(monthOf(Date.UTC(2026, 10, 30, 23, 59, 59))).to.equal("2026-11");
    expect(monthOf(Date.UTC(2027, 0, 1))).to.equal("2027-01");
  });

  it("splits batches deterministically", function () {
    expect(toBatches([1, 2, 3, 4, 5], 2)).to.deep.equal([[1, 2], [3, 4], [5]]);
    expect(toBatches([], 3)).to.deep.equal([]);
    expect(() => toBatches([1], 0)).to.throw(RangeError);
  });
});
