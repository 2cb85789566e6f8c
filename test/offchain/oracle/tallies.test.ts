import { expect } from "chai";
import { Value } from "typebox/value";
import { hashTypedData } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import {
  HostTallySchema,
  JobReportBodySchema,
  MESSAGE_TYPES,
  hostTallyDigest,
  messageDomain,
  signHostTally,
  signJobReport,
  verifyHostTally,
  verifyJobReport,
} from "../../../offchain/common/protocol";
import { EdgeError } from "../../../offchain/common/errors";
import { TallyVerifier, type TallyEntry } from "../../../offchain/oracle/tallies";

const CHAIN = 31337;
const key = (n: number) => `0x${n.toString(16).padStart(64, "0")}` as const;
const [G1, G2, H1, H2, H3] = [1, 2, 3, 4, 5].map((n) => privateKeyToAccount(key(0x7a11e000 + n)));
const low = (a: { address: string }) => a.address.toLowerCase();

/** A report entry carrying the tally `host` signed for (gateway, epoch, attested, sequence). */
async function entry(
  host: typeof H1,
  jobs: bigint,
  tally: { gateway?: typeof G1; epoch?: bigint; attested?: bigint; sequence?: bigint } = {},
): Promise<TallyEntry> {
  const body = await signHostTally(host, CHAIN, {
    gateway: (tally.gateway ?? G1).address,
    epoch: tally.epoch ?? 7n,
    jobs: tally.attested ?? jobs,
    sequence: tally.sequence ?? 1n,
  });
  return {
    host: low(host),
    jobs: jobs.toString(),
    attested: body.jobs,
    tallySeq: body.sequence,
    tallySig: body.signature,
  };
}

const refusal = (fn: () => void): EdgeError => {
  try {
    fn();
  } catch (error) {
    return error as EdgeError;
  }
  throw new Error("expected a refusal");
};

describe("host tallies (F11)", function () {
  it("F11: a tally signs (host, gateway, epoch, jobs, sequence); the fast digest is viem's EIP-712 digest", async function () {
    const body = await signHostTally(H1, CHAIN, { gateway: G1.address, epoch: 7n, jobs: 10n ** 30n, sequence: 3n });
    expect(Value.Check(HostTallySchema, body)).to.equal(true);
    expect(await verifyHostTally(CHAIN, body)).to.equal(true);
    for (const change of [
      { jobs: "1" },
      { epoch: "8" },
      { sequence: "4" },
      { gateway: G2.address },
      { host: H2.address },
    ])
      expect(await verifyHostTally(CHAIN, { ...body, ...change }), JSON.stringify(change)).to.equal(false);
    expect(await verifyHostTally(CHAIN + 1, body)).to.equal(false);
    const message = { host: H1.address, gateway: G1.address, epoch: 7n, jobs: 10n ** 30n, sequence: 3n };
    const viem = hashTypedData({
      domain: messageDomain(CHAIN),
      types: MESSAGE_TYPES,
      primaryType: "HostTally",
      message,
    });
    expect(hostTallyDigest(CHAIN, { ...message, host: low(H1), jobs: (10n ** 30n).toString() })).to.equal(viem);
    expect(() => hostTallyDigest(CHAIN, { ...message, jobs: 1n << 256n })).to.throw(RangeError);
  });

  it("F11: a report's signature covers each entry's attested count and tally sequence", async function () {
    const e = await entry(H1, 10n, { attested: 9n });
    const report = await signJobReport(G1, CHAIN, 7n, 1n, [{ ...e, host: H1.address, jobs: 10n }]);
    expect(Value.Check(JobReportBodySchema, report)).to.equal(true);
    expect(report.entries[0]).to.deep.equal({
      host: H1.address,
      jobs: "10",
      attested: "9",
      tallySeq: "1",
      tallySig: e.tallySig,
    });
    expect((await verifyJobReport(CHAIN, report)).signed).to.equal(true);
    for (const change of [{ attested: "10" }, { tallySeq: "2" }])
      expect(
        (await verifyJobReport(CHAIN, { ...report, entries: [{ ...report.entries[0], ...change }] })).signed,
      ).to.equal(false);
  });

  it("F11: a forged, borrowed or altered tally refuses the report with a 400 naming the host", async function () {
    const verifier = new TallyVerifier(CHAIN);
    const good = await entry(H1, 10n);
    const cases: Array<[string, TallyEntry]> = [
      ["forged (signed by another key)", { ...(await entry(H3, 10n)), host: low(H2) }],
      ["borrowed from another gateway", await entry(H2, 10n, { gateway: G2 })],
      ["borrowed from another epoch", await entry(H2, 10n, { epoch: 6n })],
      ["altered count", { ...(await entry(H2, 10n)), attested: "11" }],
      ["malformed signature", { ...(await entry(H2, 10n)), tallySig: `0x${"ab".repeat(65)}` }],
    ];
    for (const [what, bad] of cases) {
      const error = refusal(() => verifier.check(low(G1), 7, [good, bad]));
      expect(error.code, what).to.equal("ORACLE_BAD_TALLY");
      expect(error.status, what).to.equal(400);
      expect(error.message, what).to.include(low(H2));
    }
    const partial = { host: low(H2), jobs: "3", attested: "3" };
    expect(refusal(() => verifier.check(low(G1), 7, [partial])).message).to.match(/go together/);
    // Entries without any tally pass (scoring drops them); nothing from a refused report was remembered.
    expect(verifier.cached).to.equal(0);
    verifier.check(low(G1), 7, [good, { host: low(H2), jobs: "5" }]);
    expect(verifier.cached).to.equal(1);
  });

  it("F11: an unchanged tally in the next cumulative report costs no signature recovery; memory stays bounded", async function () {
    const verifier = new TallyVerifier(CHAIN, 3);
    const first = [await entry(H1, 10n), await entry(H2, 5n)];
    verifier.check(low(G1), 7, first);
    expect(verifier.recoveries).to.equal(2);
    // Next report: H1's tally unchanged (gateway count moved on), H2 handed a newer one.
    const second = [{ ...first[0], jobs: "12" }, await entry(H2, 8n, { sequence: 2n })];
    verifier.check(low(G1), 7, second);
    expect(verifier.recoveries).to.equal(3);
    // The same tally under another gateway or epoch is verified afresh (and refused: it is not for them).
    expect(refusal(() => verifier.check(low(G2), 7, [first[0]])).code).to.equal("ORACLE_BAD_TALLY");
    expect(refusal(() => verifier.check(low(G1), 8, [first[0]])).code).to.equal("ORACLE_BAD_TALLY");
    // Bounded: a new group past the bound forgets the oldest groups whole; epochs before the previous one go.
    verifier.check(low(G2), 7, [await entry(H1, 1n, { gateway: G2 }), await entry(H3, 1n, { gateway: G2 })]);
    expect(verifier.cached).to.equal(2);
    verifier.check(low(G1), 9, [await entry(H1, 1n, { epoch: 9n })]);
    expect(verifier.cached).to.equal(1);
  });

  it("M2 (review after D40): a group holds only the latest report's tallies, so a gateway streaming fresh hosts cannot grow it", async function () {
    const verifier = new TallyVerifier(CHAIN);
    verifier.check(low(G1), 7, [await entry(H1, 1n), await entry(H2, 1n), await entry(H3, 1n)]);
    expect(verifier.cached).to.equal(3);
    for (let report = 0; report < 5; report++) {
      const hosts = [1, 2, 3].map((i) => privateKeyToAccount(key(0xf4e5000 + report * 10 + i)));
      verifier.check(low(G1), 7, await Promise.all(hosts.map((h) => entry(h, 1n))));
      expect(verifier.cached, `after report ${report}`).to.equal(3);
    }
    // A host the latest report no longer lists is forgotten: its tally is verified again if it comes back.
    const back = await entry(H1, 1n);
    const before = verifier.recoveries;
    verifier.check(low(G1), 7, [back]);
    expect([verifier.cached, verifier.recoveries - before]).to.deep.equal([1, 1]);
    verifier.check(low(G1), 7, [back]);
    expect(verifier.recoveries - before).to.equal(1);
  });
});
