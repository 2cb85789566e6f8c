import { expect } from "chai";

import { LagWatch } from "../../node/configLag";

/** A watch on a fake clock: `state` says what the chain anchors and what the stream delivered. */
function watch(state: { latest: number | Error; delivered: number | undefined }, maxBehindMs = 1_000) {
  let now = 0;
  const drops: string[] = [];
  const lag = new LagWatch({
    latest: async () => {
      if (state.latest instanceof Error) throw state.latest;
      return state.latest;
    },
    delivered: () => state.delivered,
    drop: (reason) => drops.push(reason),
    maxBehindMs,
    now: () => now,
  });
  return { lag, drops, advance: (ms: number) => (now += ms) };
}

describe("node/configLag (R17-8: a stargate withholding anchored versions)", function () {
  it("R17-8: a stream behind the chain's latest version for maxBehindMs is dropped, once, with the versions named", async function () {
    const state: { latest: number | Error; delivered: number | undefined } = { latest: 3, delivered: 2 };
    const { lag, drops, advance } = watch(state);
    await lag.check();
    advance(999);
    await lag.check();
    expect(drops).to.deep.equal([]);
    advance(1);
    await lag.check();
    expect(drops).to.deep.equal(["behind: the chain anchors version 3, this stargate delivered 2 for 1000 ms"]);
    await lag.check();
    expect(drops).to.have.length(1); // the clock starts again for the next stream
  });

  it("R17-8: catching up, no stream, or a version the role refused but the stream delivered reset the clock; a failed chain read changes nothing", async function () {
    const state: { latest: number | Error; delivered: number | undefined } = { latest: 3, delivered: 2 };
    const { lag, drops, advance } = watch(state);
    await lag.check();
    advance(600);
    state.delivered = 3; // delivered (applied or NACKed by the role: not the stargate's fault)
    await lag.check();
    advance(600);
    state.latest = 4;
    state.delivered = 3;
    await lag.check(); // behind again from here
    advance(600);
    state.latest = new Error("rpc down");
    await lag.check(); // keeps the clock: the chain's answer is unknown
    advance(400);
    state.latest = 4;
    await lag.check();
    expect(drops).to.have.length(1);
    state.delivered = undefined; // the stream went down: nothing to judge
    advance(5_000);
    await lag.check();
    state.delivered = 3;
    await lag.check();
    expect(drops).to.have.length(1);
  });
});
