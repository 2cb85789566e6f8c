/**
 * The billing service's SQLite database: usage records (once per id), closed periods with their bills, and
 * (through TxSender) the settlement transactions it sent. WAL mode, one writer.
 */
import type Database from "better-sqlite3";

import { SqliteStore } from "../common/sqlite";

import type { HashedBill, ParsedRecord, UsageTotal } from "./bills";

export type BillStatus = "zero" | "due" | "settled" | "unsettleable";

export interface BillRow {
  period: string;
  customer: string;
  bill: HashedBill;
  total: bigint;
  status: BillStatus;
  /** Settlement batch number within the period (null for bills that are not settled). */
  batch: number | null;
  charged: bigint | null;
  shortfall: bigint | null;
  txHash: string | null;
}

export interface PeriodRow {
  period: string;
  index: number;
  status: "closed" | "settled";
  closedAt: number;
  settledAt: number | null;
  bills: number;
}

export type RecordOutcome =
  | { accepted: number; duplicates: number; /** the records stored by this call */ fresh: ParsedRecord[] }
  | { conflict: string };

interface BillDbRow {
  period: string;
  customer: string;
  bill: string;
  total: string;
  status: BillStatus;
  batch: number | null;
  charged: string | null;
  shortfall: string | null;
  tx_hash: string | null;
}

const toBillRow = (r: BillDbRow): BillRow => ({
  period: r.period,
  customer: r.customer,
  bill: JSON.parse(r.bill),
  total: BigInt(r.total),
  status: r.status,
  batch: r.batch,
  charged: r.charged === null ? null : BigInt(r.charged),
  shortfall: r.shortfall === null ? null : BigInt(r.shortfall),
  txHash: r.tx_hash,
});

export class BillingStore extends SqliteStore {
  constructor(file: string) {
    super(file);
    migrateRecordsKey(this.db);
    this.db.exec(`
      create table if not exists records (
        gateway text not null, id text not null, customer text not null, service text not null,
        metric text not null, quantity integer not null, time integer not null, period integer not null,
        received_at integer not null, unique (gateway, id));
      create index if not exists records_period on records (period);
      create table if not exists periods (
        period text primary key, period_index integer not null unique, status text not null,
        closed_at integer not null, settled_at integer);
      create table if not exists bills (
        period text not null, customer text not null, bill text not null, total text not null,
        status text not null, batch integer, charged text, shortfall text, tx_hash text,
        primary key (period, customer));
      create index if not exists bills_customer on bills (customer, period);
    `);
  }

  /**
   * Stores a batch of records in one transaction: new (gateway, id) keys are inserted, keys already stored with
   * the same content are duplicates, and a key stored with other content aborts the whole batch (nothing is
   * written). Ids are unique per gateway (D42): another gateway's record with the same id is another record. Rows
   * go in 250 to a statement (a rowid table with a unique index: faster here than WITHOUT ROWID or RETURNING);
   * only a chunk that did not insert every row is checked row by row.
   */
  insertRecords(records: ReadonlyArray<ParsedRecord & { period: number }>, receivedAt: number): RecordOutcome {
    const existing = this.statement(
      "select rowid, customer, service, metric, quantity, time from records where gateway = ? and id = ?",
    ).safeIntegers(true);
    try {
      return this.db.transaction((): RecordOutcome => {
        const last =
          (this.statement("select max(rowid) as n from records").safeIntegers(true).get() as { n: bigint | null }).n ??
          0n;
        const fresh: ParsedRecord[] = [];
        const keys = new Set<string>();
        const args: unknown[] = [];
        for (let from = 0; from < records.length; from += INSERT_CHUNK) {
          const chunk = records.slice(from, from + INSERT_CHUNK);
          args.length = 0;
          for (const r of chunk) {
            args.push(r.gateway, r.id, r.customer, r.service, r.metric, r.quantity, r.time, r.period, receivedAt);
          }
          if (this.insertStatement(chunk.length).run(...args).changes === chunk.length) {
            for (const r of chunk) fresh.push(r);
            if (from + INSERT_CHUNK < records.length) for (const r of chunk) keys.add(`${r.gateway} ${r.id}`);
            continue;
          }
          for (const r of chunk) {
            const old = existing.get(r.gateway, r.id) as StoredContent & { rowid: bigint };
            const same =
              old.customer === r.customer &&
              old.service === r.service &&
              old.metric === r.metric &&
              old.quantity === r.quantity &&
              old.time === BigInt(r.time);
            if (!same) throw new Conflict(r.id);
            // Stored by this call (and not the same key twice in it): fresh.
            const key = `${r.gateway} ${r.id}`;
            if (old.rowid > last && !keys.has(key)) fresh.push(r);
            keys.add(key);
          }
        }
        return { accepted: fresh.length, duplicates: records.length - fresh.length, fresh };
      })();
    } catch (error) {
      if (error instanceof Conflict) return { conflict: error.id };
      throw error;
    }
  }

  private insertStatement(rows: number): Database.Statement {
    return this.statement(
      "insert into records (gateway, id, customer, service, metric, quantity, time, period, received_at) values " +
        Array(rows).fill("(?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ") +
        " on conflict (gateway, id) do nothing",
    );
  }

  /**
   * Summed usage per (customer, service, metric) in a period. SQLite sums exactly in 64 bits and raises on
   * overflow; then the sum is redone with BigInt, row by row.
   */
  usageTotals(periodIndex: number): UsageTotal[] {
    try {
      return (
        this.statement(
          "select customer, service, metric, sum(quantity) as quantity from records where period = ? " +
            "group by customer, service, metric",
        )
          .safeIntegers(true)
          .all(periodIndex) as UsageTotal[]
      ).map((t) => ({ ...t, quantity: BigInt(t.quantity) }));
    } catch (error) {
      if (!/integer overflow/.test((error as Error).message)) throw error;
      const totals = new Map<string, UsageTotal>();
      const rows = this.statement("select customer, service, metric, quantity from records where period = ?")
        .safeIntegers(true)
        .iterate(periodIndex) as IterableIterator<UsageTotal>;
      for (const row of rows) {
        const key = `${row.customer}|${row.service}|${row.metric}`;
        const total = totals.get(key);
        if (total) total.quantity += BigInt(row.quantity);
        else totals.set(key, { ...row, quantity: BigInt(row.quantity) });
      }
      return [...totals.values()];
    }
  }

  /** Periods after `after` that hold records (not closed yet, when `after` is the last closed one). */
  periodsWithRecordsAfter(after: number): number[] {
    return (
      this.statement("select distinct period from records where period > ? order by period").all(after) as Array<{
        period: number;
      }>
    ).map((r) => r.period);
  }

  recordCount(periodIndex: number): number {
    return (this.statement("select count(*) as n from records where period = ?").get(periodIndex) as { n: number }).n;
  }

  /** Saves a closed period and all its bills in one transaction (a crash leaves all or nothing). */
  saveClosedPeriod(period: string, periodIndex: number, closedAt: number, bills: readonly BillRow[]): void {
    const insertBill = this.statement(
      "insert into bills (period, customer, bill, total, status, batch) values (?, ?, ?, ?, ?, ?)",
    );
    this.db.transaction(() => {
      this.statement("insert into periods (period, period_index, status, closed_at) values (?, ?, 'closed', ?)").run(
        period,
        periodIndex,
        closedAt,
      );
      for (const b of bills) {
        insertBill.run(period, b.customer, JSON.stringify(b.bill), b.total.toString(), b.status, b.batch);
      }
    })();
  }

  period(period: string): PeriodRow | undefined {
    const row = this.statement(
      "select p.*, (select count(*) from bills b where b.period = p.period) as bills from periods p where period = ?",
    ).get(period) as
      | {
          period: string;
          period_index: number;
          status: "closed" | "settled";
          closed_at: number;
          settled_at: number | null;
          bills: number;
        }
      | undefined;
    return (
      row && {
        period: row.period,
        index: row.period_index,
        status: row.status,
        closedAt: row.closed_at,
        settledAt: row.settled_at,
        bills: row.bills,
      }
    );
  }

  periods(): PeriodRow[] {
    return (
      this.statement(
        "select p.*, (select count(*) from bills b where b.period = p.period) as bills from periods p order by period_index",
      ).all() as Array<{ period: string }>
    ).map((r) => this.period(r.period)!);
  }

  lastClosedIndex(): number | undefined {
    const row = this.statement("select max(period_index) as i from periods").get() as { i: number | null };
    return row.i ?? undefined;
  }

  unsettledPeriods(): PeriodRow[] {
    return this.periods().filter((p) => p.status === "closed");
  }

  markPeriodSettled(period: string, at: number): void {
    this.statement("update periods set status = 'settled', settled_at = ? where period = ?").run(at, period);
  }

  bills(period: string, status?: BillStatus): BillRow[] {
    const rows = (
      status === undefined
        ? this.statement("select * from bills where period = ? order by customer").all(period)
        : this.statement("select * from bills where period = ? and status = ? order by customer").all(period, status)
    ) as BillDbRow[];
    return rows.map(toBillRow);
  }

  bill(period: string, customer: string): BillRow | undefined {
    const row = this.statement("select * from bills where period = ? and customer = ?").get(period, customer) as
      BillDbRow | undefined;
    return row && toBillRow(row);
  }

  customerBills(customer: string): BillRow[] {
    return (this.statement("select * from bills where customer = ? order by period").all(customer) as BillDbRow[]).map(
      toBillRow,
    );
  }

  markSettled(period: string, customer: string, charged: bigint, shortfall: bigint, txHash: string | null): void {
    this.statement(
      "update bills set status = 'settled', charged = ?, shortfall = ?, tx_hash = ? where period = ? and customer = ?",
    ).run(charged.toString(), shortfall.toString(), txHash, period, customer);
  }

  markUnsettleable(period: string, customer: string): void {
    this.statement("update bills set status = 'unsettleable' where period = ? and customer = ?").run(period, customer);
  }
}

const INSERT_CHUNK = 250;

interface StoredContent {
  customer: string;
  service: string;
  metric: string;
  quantity: bigint;
  time: bigint;
}

class Conflict extends Error {
  constructor(readonly id: string) {
    super(`record ${id} conflicts`);
  }
}

/**
 * Databases made before D42 keyed records on the id alone (unique across gateways): rebuilt once, in one
 * transaction, keyed on (gateway, id).
 */
function migrateRecordsKey(db: Database.Database): void {
  const table = db.prepare("select sql from sqlite_master where type = 'table' and name = 'records'").get() as
    { sql: string } | undefined;
  if (!table || /unique \(gateway, id\)/.test(table.sql)) return;
  db.transaction(() => {
    db.exec(`
      alter table records rename to records_by_id;
      drop index if exists records_period;
      create table records (
        gateway text not null, id text not null, customer text not null, service text not null,
        metric text not null, quantity integer not null, time integer not null, period integer not null,
        received_at integer not null, unique (gateway, id));
      insert into records select gateway, id, customer, service, metric, quantity, time, period, received_at
        from records_by_id;
      drop table records_by_id;
    `);
  })();
}
