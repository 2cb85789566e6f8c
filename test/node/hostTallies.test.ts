import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { privateKeyToAccount } from "viem/accounts";

import { verifyHostTally } from "../../offchain/common/protocol";
import { HostTallies } from "../../node/roles/host/tallies";
import { JobReports } from "../../node/roles/gateway/reports";
import { GatewayStateFile } from "../../node/roles/gateway/state";

const CHAIN = 31337;
const host = privateKeyToAccount(`0x${"5a".repeat(32)}`);
const gateway = privateKeyToAccount(`0x${"6b".repeat(32)}`);
const other = privateKeyToAccount(`0x${"7c".repeat(32)}`);

describe("host tallies (F11)", function () {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "host-tallies-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("F11: each reply's tally counts its own job; concurrent jobs share signatures; a restart never signs less", async function () {
    let epoch = 4n;
    const clock = { currentEpoch: () => epoch };
    const signer = { account: host, chainId: CHAIN };
    const first = new HostTallies(dir, signer, clock);
    const one = await first.returned(gateway.address);
    expect([one.jobs, one.sequence, one.epoch]).to.deep.equal(["1", "1", "4"]);
    expect(await verifyHostTally(CHAIN, one)).to.equal(true);
    // Ten jobs at once: every reply covers its own job, with fewer than ten signatures.
    const many = await Promise.all(Array.from({ length: 10 }, () => first.returned(gateway.address)));
    for (const [i, tally] of many.entries()) expect(Number(tally.jobs), `reply ${i}`).to.be.at.least(2 + i);
    expect(many.at(-1)!.jobs).to.equal("11");
    expect(first.status().talliesSigned).to.be.below(11);
    const lastSequence = Math.max(...many.map((t) => Number(t.sequence)));

    // A restart (same data directory) resumes above what was signed: never a lower count, never an old sequence.
    const second = new HostTallies(dir, signer, clock);
    const next = await second.returned(gateway.address);
    expect(next.jobs).to.equal("12");
    expect(Number(next.sequence)).to.be.above(lastSequence);
    expect(
      JSON.parse(readFileSync(join(dir, "tallies.json"), "utf8")).counts[gateway.address.toLowerCase()],
    ).to.deep.equal({
      "4": "12",
    });
    // A new epoch starts from zero; another gateway has its own count.
    epoch = 5n;
    expect((await second.returned(gateway.address)).jobs).to.equal("1");
    expect((await second.returned(other.address)).jobs).to.equal("1");
  });

  it("F11: the gateway keeps a host's latest valid tally and puts it in its report", async function () {
    const epoch = 4n;
    const clock = { currentEpoch: () => epoch } as never;
    const sent: Array<{ body: { entries: Array<Record<string, string>> } }> = [];
    const outgoing = { put: (item: never) => void sent.push(item), flush: async () => 0, pending: () => 0 } as never;
    const reports = new JobReports(
      { signer: { account: gateway, chainId: CHAIN }, outgoing, clock },
      new GatewayStateFile(dir),
      true,
    );
    const tallies = new HostTallies(join(dir, "host"), { account: host, chainId: CHAIN }, clock);
    const h = host.address;
    const t1 = await tallies.returned(gateway.address);
    const t2 = await tallies.returned(gateway.address);
    reports.count(h, t2);
    reports.count(h, t1); // older: ignored, not an error
    // Refused: another host's tally, a tally for another gateway, a forged signature, another epoch.
    const forOther = await new HostTallies(join(dir, "o"), { account: host, chainId: CHAIN }, clock).returned(
      other.address,
    );
    expect(reports.attest(other.address, t2)).to.equal(false);
    expect(reports.attest(h, forOther)).to.equal(false);
    expect(reports.attest(h, { ...t2, sequence: "99", jobs: "99" })).to.equal(false);
    expect(reports.attest(h, { ...t2, epoch: "9" })).to.equal(false);
    expect(reports.attest(h, { ...t2, epoch: "x" } as never)).to.equal(false);
    await reports.queue();
    expect(sent[0].body.entries).to.deep.equal([
      { host: h, jobs: "2", attested: "2", tallySeq: t2.sequence, tallySig: t2.signature },
    ]);
  });
});
