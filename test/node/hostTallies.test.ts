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

  it("F11: a tally covers every job counted before it was asked for; concurrent askers share signatures; a restart never signs less", async function () {
    let epoch = 4n;
    const clock = { currentEpoch: () => epoch };
    const signer = { account: host, chainId: CHAIN };
    const first = new HostTallies(dir, signer, clock);
    expect(await first.attest(gateway.address, epoch), "nothing returned yet").to.equal(undefined);
    first.count(gateway.address);
    const one = (await first.attest(gateway.address, epoch))!;
    expect([one.jobs, one.sequence, one.epoch]).to.deep.equal(["1", "1", "4"]);
    expect(await verifyHostTally(CHAIN, one)).to.equal(true);
    expect(await first.attest(gateway.address, epoch), "nothing new: the same tally, no signature").to.equal(one);
    // Ten jobs, then ten askers at once: each tally covers all ten, with one signature.
    for (let i = 0; i < 10; i++) first.count(gateway.address);
    const many = await Promise.all(Array.from({ length: 10 }, () => first.attest(gateway.address, epoch)));
    for (const tally of many) expect(tally!.jobs).to.equal("11");
    expect(first.status().talliesSigned).to.equal(2);
    const lastSequence = Number(many[0]!.sequence);
    // Other epochs than the current and the previous one: nothing.
    expect(await first.attest(gateway.address, epoch + 1n)).to.equal(undefined);
    expect(await first.attest(gateway.address, epoch - 2n)).to.equal(undefined);

    // A restart (same data directory) resumes above what was signed: never a lower count, never an old sequence.
    const second = new HostTallies(dir, signer, clock);
    second.count(gateway.address);
    const next = (await second.attest(gateway.address, epoch))!;
    expect(next.jobs).to.equal("12");
    expect(Number(next.sequence)).to.be.above(lastSequence);
    expect(
      JSON.parse(readFileSync(join(dir, "tallies.json"), "utf8")).counts[gateway.address.toLowerCase()],
    ).to.deep.equal({
      "4": "12",
    });
    // A new epoch starts from zero, and the previous one can still be attested; another gateway has its own count.
    epoch = 5n;
    second.count(gateway.address);
    second.count(other.address);
    expect((await second.attest(gateway.address, 5n))!.jobs).to.equal("1");
    expect((await second.attest(gateway.address, 4n))!.jobs).to.equal("12");
    expect((await second.attest(other.address, 5n))!.jobs).to.equal("1");
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
    tallies.count(gateway.address);
    const t1 = (await tallies.attest(gateway.address, epoch))!;
    tallies.count(gateway.address);
    const t2 = (await tallies.attest(gateway.address, epoch))!;
    reports.count(h, t2);
    reports.count(h, t1); // older: ignored, not an error
    // Refused: another host's tally, a tally for another gateway, a forged signature, another epoch.
    const forOtherTallies = new HostTallies(join(dir, "o"), { account: host, chainId: CHAIN }, clock);
    forOtherTallies.count(other.address);
    const forOther = (await forOtherTallies.attest(other.address, epoch))!;
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
