import { expect } from "chai";
import fc from "fast-check";

import { HostIndex } from "../../../offchain/oracle/hostIndex";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";

const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => `0x${Buffer.from(b).toString("hex")}`);

describe("oracle HostIndex", function () {
  it("finds exactly the indexed names, in any case, as a Map would", function () {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.oneof({ weight: 9, arbitrary: address }, { weight: 1, arbitrary: fc.string() }), {
          selector: (s) => s.toLowerCase(),
          maxLength: 300,
        }),
        fc.array(address, { maxLength: 50 }),
        (names, probes) => {
          const lower = names.map((n) => n.toLowerCase());
          const index = new HostIndex(lower);
          const map = new Map(lower.map((n, id) => [n, id]));
          lower.forEach((name, id) => {
            expect(index.get(name)).to.equal(id);
            expect(index.get(name.toUpperCase().replace(/^0X/, "0x"))).to.equal(id);
          });
          for (const probe of probes) expect(index.get(probe)).to.equal(map.get(probe));
        },
      ),
      { seed: FC_SEED, numRuns: fcRuns(100) },
    );
  });

  it("tells near misses apart: one digit off, wrong length, non-hex", function () {
    const name = `0x${"ab".repeat(20)}`;
    const index = new HostIndex([name, `0x${"00".repeat(20)}`]);
    expect(index.get(name)).to.equal(0);
    expect(index.get(`0x${"00".repeat(20)}`)).to.equal(1);
    for (let i = 2; i < 42; i++) {
      const off = name.slice(0, i) + (name[i] === "a" ? "b" : "a") + name.slice(i + 1);
      expect(index.get(off), off).to.equal(undefined);
    }
    for (const bad of [name.slice(0, 41), `${name}0`, `0x${"ag".repeat(20)}`, `1x${"ab".repeat(20)}`, ""]) {
      expect(index.get(bad), bad).to.equal(undefined);
    }
    expect(new HostIndex([]).get(name)).to.equal(undefined);
  });
});
