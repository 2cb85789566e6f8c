/**
 * The oracle's SQLite database: accepted reports and heartbeats, closed epochs (admitted set, scores, batches),
 * the relay queue to peer instances, and (through TxSender) the transactions it sent. WAL mode, one writer.
 */
import { SqliteStore } from "../common/sqlite";
import type { AdmittedInput, Score } from "./scoring";

export interface StoredReport {
  gateway: string;
  epoch: number;
  sequence: number;
  /** With the host's tally (attested, tallySeq, tallySig) where the gateway carried one (F11). */
  entries: Array<{ host: string; jobs: string; attested?: string; tallySeq?: string; tallySig?: string }>;
  entriesHash: string;
  signature: string;
  receivedAt: number;
}

export interface StoredHeartbeat {
  stargate: string;
  epoch: number;
  timestamp: number;
  signature: string;
}

export interface BatchRecord {
  epoch: number;
  batchIndex: number;
  /** Packed entries as posted (hex). */
  entries: string;
  entriesHash: string;
  txHash: string | null;
  posted: boolean;
}

export interface EpochRecord {
  epoch: number;
  status: "closed" | "posted" | "expired";
  endBlock: number;
  admitted: AdmittedInput;
  scores: Score[];
  /** device -> stake id at the epoch's end, for the scored devices. */
  stakes: Record<string, string>;
  closedAt: number;
  postedAt: number | null;
}

export type InsertOutcome = "inserted" | "duplicate" | "conflict";

/** One page of a list: `next` is the cursor of the following page, null at the end. */
export interface Page<T> {
  items: T[];
  next: string | null;
}

interface ReportRow {
  gateway: string;
  epoch: number;
  sequence: number;
  entries: string;
  entries_hash: string;
  signature: string;
  received_at: number;
}

function toReport(r: ReportRow): StoredReport {
  return {
    gateway: r.gateway,
    epoch: r.epoch,
    sequence: r.sequence,
    entries: JSON.parse(r.entries),
    entriesHash: r.entries_hash,
    signature: r.signature,
    receivedAt: r.received_at,
  };
}

/** Peer instances a newly stored message goes to, and the body to send them. */
export interface RelayTarget {
  peers: readonly string[];
  body: unknown;
}

const NO_RELAY: RelayTarget = { peers: [], body: null };

export class OracleStore extends SqliteStore {
  constructor(file: string) {
    super(file);
    this.db.exec(`
      create table if not exists reports (
        gateway text not null, epoch integer not null, sequence integer not null, entries text not null,
        entries_hash text not null, signature text not null, received_at integer not null,
        primary key (gateway, epoch, sequence));
      create table if not exists heartbeats (
        stargate text not null, epoch integer not null, timestamp integer not null, signature text not null,
        primary key (stargate, epoch, timestamp));
      create table if not exists epochs (
        epoch integer primary key, status text not null, end_block integer not null, admitted text not null,
        scores text not null, stakes text not null, closed_at integer not null, posted_at integer);
      create table if not exists batches (
        epoch integer not null, batch_index integer not null, entries text not null, entries_hash text not null,
        tx_hash text, posted integer not null default 0, primary key (epoch, batch_index));
      create table if not exists relay (
        id integer primary key autoincrement, peer text not null, path text not null, body text not null);
    `);
    // F4: one report per (gateway, epoch), the latest. Older databases kept every sequence: drop the superseded
    // ones once, then let a unique index hold the invariant.
    this.db.exec(`
      delete from reports where sequence < (
        select max(r.sequence) from reports r where r.gateway = reports.gateway and r.epoch = reports.epoch);
      create unique index if not exists reports_latest on reports (epoch, gateway);
    `);
  }

  /**
   * Keeps only the latest report per (gateway, epoch): a higher sequence replaces the kept one; the same sequence
   * again is a duplicate if identical, else a conflict (the larger entries hash kept); a lower one is a duplicate (superseded: it could never
   * count). A new report is queued for `relayTo` peers in the same transaction, so a crash cannot keep one
   * without the other.
   */
  insertReport(report: StoredReport, relayTo: RelayTarget = NO_RELAY): InsertOutcome {
    return this.db.transaction((): InsertOutcome => {
      const existing = this.statement("select sequence, entries_hash from reports where gateway = ? and epoch = ?").get(
        report.gateway,
        report.epoch,
      ) as { sequence: number; entries_hash: string } | undefined;
      if (existing && existing.sequence > report.sequence) return "duplicate";
      if (existing && existing.sequence === report.sequence) {
        if (existing.entries_hash === report.entriesHash) return "duplicate";
        // Two signed reports with one sequence: the gateway equivocated (M1 of the review after D41). Every
        // instance keeps the same one, the larger entries hash, whatever order they arrive in (each instance
        // relays what it accepted, so all see both), so the committee's batches still agree. Still a conflict.
        if (report.entriesHash.toLowerCase() > existing.entries_hash.toLowerCase()) this.replaceReport(report);
        return "conflict";
      }
      if (existing)
        this.statement("delete from reports where gateway = ? and epoch = ?").run(report.gateway, report.epoch);
      this.statement(
        "insert into reports (gateway, epoch, sequence, entries, entries_hash, signature, received_at) values (?, ?, ?, ?, ?, ?, ?)",
      ).run(
        report.gateway,
        report.epoch,
        report.sequence,
        JSON.stringify(report.entries),
        report.entriesHash,
        report.signature,
        report.receivedAt,
      );
      this.enqueueRelay(relayTo.peers, "/reports", relayTo.body);
      return "inserted";
    })();
  }

  private replaceReport(report: StoredReport): void {
    this.statement(
      "update reports set entries = ?, entries_hash = ?, signature = ?, received_at = ? where gateway = ? and epoch = ?",
    ).run(
      JSON.stringify(report.entries),
      report.entriesHash,
      report.signature,
      report.receivedAt,
      report.gateway,
      report.epoch,
    );
  }

  /** The epoch's kept reports (one per gateway, the latest), ordered by gateway. */
  reports(epoch: number): StoredReport[] {
    return (this.statement("select * from reports where epoch = ? order by gateway").all(epoch) as ReportRow[]).map(
      toReport,
    );
  }

  /**
   * A page of the epoch's reports after gateway `after`, ordered by gateway: at most `limit` reports and, past the
   * first, no more than `maxChars` characters of entries in all (one report is at most a body limit's worth).
   */
  reportsPage(epoch: number, after: string, limit: number, maxChars: number): Page<StoredReport> {
    const sizes = this.statement(
      "select gateway, length(entries) n from reports where epoch = ? and gateway > ? order by gateway limit ?",
    ).all(epoch, after, limit + 1) as Array<{ gateway: string; n: number }>;
    let take = 0;
    for (let chars = 0; take < Math.min(limit, sizes.length); take++) {
      chars += sizes[take].n;
      if (take > 0 && chars > maxChars) break;
    }
    if (take === 0) return { items: [], next: null };
    const rows = this.statement(
      "select * from reports where epoch = ? and gateway > ? and gateway <= ? order by gateway",
    ).all(epoch, after, sizes[take - 1].gateway) as ReportRow[];
    return { items: rows.map(toReport), next: take < sizes.length ? sizes[take - 1].gateway : null };
  }

  reportCount(epoch: number): number {
    return (this.statement("select count(*) n from reports where epoch = ?").get(epoch) as { n: number }).n;
  }

  /** Stores a heartbeat once and, when new, queues it for `relayTo` peers in the same transaction. */
  insertHeartbeat(heartbeat: StoredHeartbeat, relayTo: RelayTarget = NO_RELAY): InsertOutcome {
    return this.db.transaction((): InsertOutcome => {
      const result = this.statement(
        "insert or ignore into heartbeats (stargate, epoch, timestamp, signature) values (?, ?, ?, ?)",
      ).run(heartbeat.stargate, heartbeat.epoch, heartbeat.timestamp, heartbeat.signature);
      if (result.changes !== 1) return "duplicate";
      this.enqueueRelay(relayTo.peers, "/heartbeats", relayTo.body);
      return "inserted";
    })();
  }

  /** A page of the epoch's heartbeats after (stargate, timestamp) `after`, ordered by both. */
  heartbeatsPage(epoch: number, after: { stargate: string; timestamp: number }, limit: number): Page<StoredHeartbeat> {
    const rows = this.statement(
      `select stargate, epoch, timestamp, signature from heartbeats where epoch = ? and (stargate, timestamp) > (?, ?)
       order by stargate, timestamp limit ?`,
    ).all(epoch, after.stargate, after.timestamp, limit + 1) as StoredHeartbeat[];
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items, next: rows.length > limit ? `${last.stargate}:${last.timestamp}` : null };
  }

  heartbeatCount(epoch: number): number {
    return (this.statement("select count(*) n from heartbeats where epoch = ?").get(epoch) as { n: number }).n;
  }

  heartbeats(epoch: number): StoredHeartbeat[] {
    return this.db
      .prepare(
        "select stargate, epoch, timestamp, signature from heartbeats where epoch = ? order by stargate, timestamp",
      )
      .all(epoch) as StoredHeartbeat[];
  }

  saveClosedEpoch(record: EpochRecord, batches: Array<{ entries: string; entriesHash: string }>): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          "insert into epochs (epoch, status, end_block, admitted, scores, stakes, closed_at, posted_at) values (?, 'closed', ?, ?, ?, ?, ?, null)",
        )
        .run(
          record.epoch,
          record.endBlock,
          JSON.stringify(record.admitted),
          JSON.stringify(record.scores),
          JSON.stringify(record.stakes),
          record.closedAt,
        );
      const insert = this.statement(
        "insert into batches (epoch, batch_index, entries, entries_hash) values (?, ?, ?, ?)",
      );
      batches.forEach((b, i) => insert.run(record.epoch, i, b.entries, b.entriesHash));
    })();
  }

  epoch(epoch: number): EpochRecord | undefined {
    const row = this.statement("select * from epochs where epoch = ?").get(epoch) as
      | {
          epoch: number;
          status: "closed" | "posted" | "expired";
          end_block: number;
          admitted: string;
          scores: string;
          stakes: string;
          closed_at: number;
          posted_at: number | null;
        }
      | undefined;
    if (!row) return undefined;
    return {
      epoch: row.epoch,
      status: row.status,
      endBlock: row.end_block,
      admitted: JSON.parse(row.admitted),
      scores: JSON.parse(row.scores),
      stakes: JSON.parse(row.stakes),
      closedAt: row.closed_at,
      postedAt: row.posted_at,
    };
  }

  /** A page of closed epochs after `after` (-1: from the first), oldest first. */
  epochsPage(after: number, limit: number): Page<{ epoch: number; status: string }> {
    const rows = this.statement("select epoch, status from epochs where epoch > ? order by epoch limit ?").all(
      after,
      limit + 1,
    ) as Array<{ epoch: number; status: string }>;
    const items = rows.slice(0, limit);
    return { items, next: rows.length > limit ? String(items[items.length - 1].epoch) : null };
  }

  /** A page of the epoch's batches from index `from` (without their entries). */
  batchSummaries(epoch: number, from: number, limit: number): Page<Omit<BatchRecord, "entries">> {
    const rows = this.statement(
      `select epoch, batch_index, entries_hash, tx_hash, posted from batches where epoch = ? and batch_index >= ?
       order by batch_index limit ?`,
    ).all(epoch, from, limit + 1) as Array<{
      epoch: number;
      batch_index: number;
      entries_hash: string;
      tx_hash: string | null;
      posted: number;
    }>;
    const items = rows.slice(0, limit).map((b) => ({
      epoch: b.epoch,
      batchIndex: b.batch_index,
      entriesHash: b.entries_hash,
      txHash: b.tx_hash,
      posted: b.posted === 1,
    }));
    return { items, next: rows.length > limit ? String(from + limit) : null };
  }

  batchCount(epoch: number): number {
    return (this.statement("select count(*) n from batches where epoch = ?").get(epoch) as { n: number }).n;
  }

  lastClosedEpoch(): number | undefined {
    return (this.statement("select max(epoch) e from epochs").get() as { e: number | null }).e ?? undefined;
  }

  lastPostedEpoch(): number | undefined {
    return (
      (this.statement("select max(epoch) e from epochs where status = 'posted'").get() as { e: number | null }).e ??
      undefined
    );
  }

  unpostedEpochs(): number[] {
    return (
      this.statement("select epoch from epochs where status = 'closed' order by epoch").all() as Array<{
        epoch: number;
      }>
    ).map((r) => r.epoch);
  }

  batches(epoch: number): BatchRecord[] {
    return (
      this.statement("select * from batches where epoch = ? order by batch_index").all(epoch) as Array<{
        epoch: number;
        batch_index: number;
        entries: string;
        entries_hash: string;
        tx_hash: string | null;
        posted: number;
      }>
    ).map((b) => ({
      epoch: b.epoch,
      batchIndex: b.batch_index,
      entries: b.entries,
      entriesHash: b.entries_hash,
      txHash: b.tx_hash,
      posted: b.posted === 1,
    }));
  }

  markBatchPosted(epoch: number, batchIndex: number, txHash: string | null): void {
    this.db
      .prepare("update batches set posted = 1, tx_hash = coalesce(?, tx_hash) where epoch = ? and batch_index = ?")
      .run(txHash, epoch, batchIndex);
  }

  /** An epoch the contract no longer takes (older than `oldestPostableEpoch`): never posted, never retried. */
  markEpochExpired(epoch: number, at: number): void {
    this.statement("update epochs set status = 'expired', posted_at = ? where epoch = ?").run(at, epoch);
  }

  markEpochPosted(epoch: number, at: number): void {
    this.statement("update epochs set status = 'posted', posted_at = ? where epoch = ?").run(at, epoch);
  }

  private enqueueRelay(peers: readonly string[], path: string, body: unknown): void {
    if (peers.length === 0) return;
    const insert = this.statement("insert into relay (peer, path, body) values (?, ?, ?)");
    const text = JSON.stringify(body);
    for (const peer of peers) insert.run(peer, path, text);
  }

  relayItems(limit = 100): Array<{ id: number; peer: string; path: string; body: string }> {
    return this.statement("select * from relay order by id limit ?").all(limit) as Array<{
      id: number;
      peer: string;
      path: string;
      body: string;
    }>;
  }

  dropRelay(id: number): void {
    this.statement("delete from relay where id = ?").run(id);
  }

  relayPending(): number {
    return (this.statement("select count(*) n from relay").get() as { n: number }).n;
  }
}
