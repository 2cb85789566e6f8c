import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";

import type { ParsedRecord } from "../../../offchain/billing/bills";
import { BillingStore } from "../../../offchain/billing/store";

const G = "0x" + "99".repeat(20);
const customer = (i: number) => `0x${i.toString(16).padStart(40, "0")}`;
const rec = (id: string, c: number, quantity: bigint, period = 0, gateway = G): ParsedRecord & { period: number } => ({
  id,
  gateway,
  customer: customer(c),
  service: "compute",
  metric: "jobs",
  quantity,
  time: 1_000 + period,
  period,
});

describe("billing store", function () {
  let store: BillingStore;
  beforeEach(() => (store = new BillingStore(":memory:")));
  afterEach(() => store.close());

  it("stores each id once across chunks, tells fresh from duplicate, and refuses a conflicting batch whole", function () {
    // 600 records: three insert statements of up to 250 rows.
    const first = Array.from({ length: 600 }, (_, i) => rec(`r${i}`, i % 7, BigInt(i)));
    const outcome = store.insertRecords(first, 1);
    expect(outcome).to.include({ accepted: 600, duplicates: 0 });
    expect("fresh" in outcome && outcome.fresh.length).to.equal(600);

    // Old ids (one of them twice), new ids spread over chunks: only the new ones are fresh, each once.
    const mixed = [rec("r5", 5, 5n), rec("n1", 1, 1n), rec("r5", 5, 5n), ...first.slice(200, 300), rec("n2", 2, 2n)];
    const again = store.insertRecords(mixed, 2);
    expect(again).to.deep.include({ accepted: 2, duplicates: mixed.length - 2 });
    expect("fresh" in again && again.fresh.map((r) => r.id)).to.deep.equal(["n1", "n2"]);
    // The same new id twice in one batch counts once.
    const twice = store.insertRecords([rec("n3", 3, 3n), rec("n3", 3, 3n)], 3);
    expect(twice).to.deep.include({ accepted: 1, duplicates: 1 });
    expect("fresh" in twice && twice.fresh.map((r) => r.id)).to.deep.equal(["n3"]);

    // A conflict anywhere (here in the third chunk) leaves nothing of the batch behind.
    const before = store.recordCount(0);
    const conflicting = [...Array.from({ length: 520 }, (_, i) => rec(`c${i}`, 1, 1n)), rec("r7", 7, 8n)];
    expect(store.insertRecords(conflicting, 4)).to.deep.equal({ conflict: "r7" });
    expect(store.recordCount(0)).to.equal(before);
    expect(store.insertRecords([rec("n4", 1, 1n), rec("n4", 1, 2n)], 5)).to.deep.equal({ conflict: "n4" });
    expect(store.recordCount(0)).to.equal(before);
  });

  it("sums per customer, service and metric exactly, past 2^63", function () {
    store.insertRecords(
      [rec("a", 1, 2n ** 62n), rec("b", 1, 2n ** 62n), rec("c", 1, 5n), rec("d", 2, 7n), rec("e", 2, 1n, 1)],
      1,
    );
    const totals = store.usageTotals(0).sort((x, y) => (x.customer < y.customer ? -1 : 1));
    expect(totals).to.deep.equal([
      { customer: customer(1), service: "compute", metric: "jobs", quantity: 2n ** 63n + 5n },
      { customer: customer(2), service: "compute", metric: "jobs", quantity: 7n },
    ]);
    expect(store.usageTotals(1)).to.deep.equal([
      { customer: customer(2), service: "compute", metric: "jobs", quantity: 1n },
    ]);
    expect(store.periodsWithRecordsAfter(-1)).to.deep.equal([0, 1]);
    expect(store.periodsWithRecordsAfter(0)).to.deep.equal([1]);
  });

  it("F2: the same id from two gateways is two records; each gateway's duplicates and conflicts stay its own", function () {
    const other = "0x" + "77".repeat(20);
    expect(store.insertRecords([rec("r1", 1, 5n), rec("r2", 1, 1n)], 1)).to.deep.include({ accepted: 2 });
    // A squatter claiming the victim's ids first, with other content, takes nothing from the victim.
    expect(store.insertRecords([rec("r3", 2, 9n, 0, other), rec("r1", 2, 9n, 0, other)], 2)).to.deep.include({
      accepted: 2,
      duplicates: 0,
    });
    expect(store.insertRecords([rec("r3", 1, 3n), rec("r1", 1, 5n)], 3)).to.deep.include({
      accepted: 1,
      duplicates: 1,
    });
    expect(store.insertRecords([rec("r3", 1, 4n)], 4)).to.deep.equal({ conflict: "r3" });
    const totals = store.usageTotals(0).sort((x, y) => (x.customer < y.customer ? -1 : 1));
    expect(totals.map((t) => t.quantity)).to.deep.equal([9n, 18n]);
  });

  it("F2: a database keyed on the id alone is migrated to (gateway, id) with its records", function () {
    const file = join(mkdtempSync(join(tmpdir(), "billing-store-")), "old.db");
    const old = new Database(file);
    old.exec(`create table records (
        id text not null unique, gateway text not null, customer text not null, service text not null,
        metric text not null, quantity integer not null, time integer not null, period integer not null,
        received_at integer not null);
      insert into records values ('r1', '${G}', '${customer(1)}', 'compute', 'jobs', 5, 1000, 0, 1);`);
    old.close();
    const migrated = new BillingStore(file);
    try {
      expect(migrated.insertRecords([rec("r1", 1, 5n), rec("r1", 2, 7n, 0, customer(9))], 2)).to.deep.include({
        accepted: 1,
        duplicates: 1,
      });
      expect(migrated.recordCount(0)).to.equal(2);
    } finally {
      migrated.close();
      rmSync(dirname(file), { recursive: true, force: true });
    }
  });
});
