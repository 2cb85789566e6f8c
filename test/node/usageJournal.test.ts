/**
 * N1: usage a gateway served but has not batched yet survives a kill -9. Each crash point of `queue` is
 * reproduced by putting the files back as a crash there leaves them (the journal, the state, the outbox), then
 * starting a new meter over them: the usage comes back exactly once.
 */
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import { privateKeyToAccount } from "viem/accounts";

import type { UsageBatchBody } from "../../offchain/common/protocol";
import { Outbox } from "../../node/outbox";
import { GatewayStateFile } from "../../node/roles/gateway/state";
import { UsageMeter, UsageStateFile } from "../../node/usage";

const account = privateKeyToAccount(`0x${"11".repeat(32)}`);
const ALICE = `0x${"a1".repeat(20)}`;
const BOB = `0x${"b2".repeat(20)}`;
const quiet = { warn: () => undefined, error: () => undefined };

describe("edge-node gateway usage journal", function () {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "edge-usage-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A gateway's usage parts over `dir`, as a (re)started daemon builds them. */
  function start() {
    const box = new Outbox(join(dir, "outbox.jsonl"), quiet);
    const outgoing = { put: (i: never) => box.put(i), flush: async () => 0, pending: () => box.items() };
    const store = new GatewayStateFile(dir);
    const meter = new UsageMeter({ signer: { account, chainId: 31337 }, outgoing } as never, store, true);
    return { box, store, meter };
  }

  /** Quantity per customer and metric over every batch in the outbox. */
  function billed(box: Outbox): Record<string, string> {
    const sum: Record<string, bigint> = {};
    for (const item of box.items()) {
      for (const r of (item.body as UsageBatchBody).records) {
        const key = `${r.customer.slice(0, 4)}:${r.metric}`;
        sum[key] = (sum[key] ?? 0n) + BigInt(r.quantity);
      }
    }
    return Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, v.toString()]));
  }

  it("N1: usage between batches survives a kill -9 (journaled on every add)", async function () {
    const a = start();
    a.meter.add(ALICE, "jobs", 1n);
    a.meter.add(ALICE, "rounds", 5n);
    a.meter.add(BOB, "jobs", 1n);
    // kill -9: nothing else runs. The restarted gateway has the usage and batches it once.
    const b = start();
    expect(b.meter.pending).to.equal(3);
    await b.meter.queue();
    expect(billed(b.box)).to.deep.equal({ "0xa1:jobs": "1", "0xa1:rounds": "5", "0xb2:jobs": "1" });
    const c = start();
    expect(c.meter.pending).to.equal(0);
    await c.meter.queue();
    expect(c.box.items()).to.have.length(1);
  });

  for (const crash of ["before the sequence is saved", "after the sequence is saved", "after the batch is queued"]) {
    it(`N1: a crash inside queue (${crash}) neither loses nor doubles usage`, async function () {
      const a = start();
      a.meter.add(ALICE, "jobs", 2n);
      const saved = (name: string) => join(dir, `${name}.before`);
      for (const name of ["usage.jsonl", "state.json", "outbox.jsonl"]) {
        if (existsSync(join(dir, name))) copyFileSync(join(dir, name), saved(name));
      }
      await a.meter.queue();
      // Put back what the crash point had not written yet.
      const restore = (name: string) =>
        existsSync(saved(name)) ? copyFileSync(saved(name), join(dir, name)) : rmSync(join(dir, name), { force: true });
      restore("usage.jsonl"); // the fresh journal is always the last write
      if (crash !== "after the batch is queued") restore("outbox.jsonl");
      if (crash === "before the sequence is saved") restore("state.json");
      const b = start();
      b.meter.add(ALICE, "jobs", 1n);
      await b.meter.queue();
      expect(billed(b.box)).to.deep.equal({ "0xa1:jobs": "3" });
      const ids = b.box.items().map((i) => i.id);
      expect(new Set(ids).size).to.equal(ids.length);
      // A sequence saved but never queued is skipped, never reused for other content.
      expect(b.store.state.usageSequence).to.equal(crash === "before the sequence is saved" ? 1 : 2);
    });
  }

  it("N1: a journal line cut by the crash is skipped; every whole line before it is recovered", async function () {
    const a = start();
    a.meter.add(ALICE, "jobs", 1n);
    a.meter.add(BOB, "jobs", 2n);
    appendFileSync(join(dir, "usage.jsonl"), '["0xa1a1'); // kill -9 in the middle of an append
    const b = start();
    expect(b.meter.pending).to.equal(2);
    await b.meter.queue();
    expect(billed(b.box)).to.deep.equal({ "0xa1:jobs": "1", "0xb2:jobs": "2" });
  });

  it("N1: usage added while a batch is being signed goes into the next batch, not lost", async function () {
    const a = start();
    a.meter.add(ALICE, "jobs", 1n);
    const queued = a.meter.queue();
    a.meter.add(BOB, "jobs", 4n); // during the signature's await
    await queued;
    expect(a.meter.pending).to.equal(1);
    const b = start(); // and it is journaled under the next batch
    expect(b.meter.pending).to.equal(1);
    await b.meter.queue();
    expect(billed(b.box)).to.deep.equal({ "0xa1:jobs": "1", "0xb2:jobs": "4" });
  });

  /** A stargate's usage parts (UsageStateFile, R18-12) over `dir`. */
  function startStargate() {
    const box = new Outbox(join(dir, "outbox.jsonl"), quiet);
    const outgoing = { put: (i: never) => box.put(i), flush: async () => 0, pending: () => box.items() };
    const store = new UsageStateFile(join(dir, "stargate"));
    const meter = new UsageMeter({ signer: { account, chainId: 31337 }, outgoing } as never, store, true);
    return { box, store, meter };
  }
  const stateFile = () => join(dir, "stargate", "usage-state.json");
  const ids = (box: Outbox) => box.items().map((i) => i.id);

  it("R18-12: an unreadable state file is recovered from the outbox's highest usage batch and the journal; batch ids never repeat", async function () {
    const a = startStargate();
    for (let i = 0; i < 3; i++) {
      a.meter.add(ALICE, "queries", 1n, "dns");
      await a.meter.queue();
    }
    expect(ids(a.box)).to.deep.equal(["usage:1", "usage:2", "usage:3"]);
    writeFileSync(stateFile(), '{"usageSeq'); // cut by a power loss
    const b = startStargate();
    expect(b.store.state.usageSequence).to.equal(3);
    expect(JSON.parse(readFileSync(stateFile(), "utf8"))).to.deep.equal({ usageSequence: 3 });
    b.meter.add(ALICE, "queries", 1n, "dns");
    await b.meter.queue();
    expect(ids(b.box)).to.deep.equal(["usage:1", "usage:2", "usage:3", "usage:4"]);
    // Everything delivered (the outbox empty): the journal's header still names the next batch.
    for (const id of ids(b.box)) b.box.ack(id);
    writeFileSync(stateFile(), "garbage");
    expect(startStargate().store.state.usageSequence).to.equal(4);
    // A sequence behind the outbox (a lost write) is raised too.
    writeFileSync(stateFile(), JSON.stringify({ usageSequence: 1 }));
    expect(startStargate().store.state.usageSequence).to.equal(4);
  });

  it("R18-12: with neither a journal header nor a usage batch in the outbox, an unreadable state file stops the start naming it", function () {
    startStargate();
    writeFileSync(stateFile(), "{");
    writeFileSync(join(dir, "stargate", "usage.jsonl"), "{not json\n");
    expect(() => startStargate()).to.throw(`${stateFile()} is unreadable and the usage sequence cannot be recovered`);
  });
});
