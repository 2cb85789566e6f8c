/**
 * The certificate service's SQLite database: challenge responses (short-lived), order leases (one per domain),
 * domains' backoff after failed orders, and issued certificates with their chains, expiry and private keys
 * (encrypted at rest by the caller: this file only ever sees the ciphertext). Times are unix milliseconds.
 */
import { SqliteStore } from "../common/sqlite";
import type { SealedAtRest } from "./dataKey";

const SCHEMA = `
create table if not exists challenges (
  token text primary key, domain text not null, key_authorization text not null,
  writer text not null, expires_at integer not null);
create index if not exists challenges_writer on challenges (writer);
create index if not exists challenges_expiry on challenges (expires_at);
create table if not exists leases (
  domain text primary key, holder text not null, expires_at integer not null, taken_at integer not null default 0);
create index if not exists leases_holder on leases (holder);
create table if not exists backoffs (
  domain text primary key, failures integer not null, until integer not null, reason text not null);
create table if not exists certificates (
  domain text primary key, chain text not null, fingerprint text not null,
  not_before integer not null, not_after integer not null,
  key_iv blob not null, key_tag blob not null, key_ciphertext blob not null,
  uploader text not null, stored_at integer not null);
`;

export interface ChallengeRow {
  token: string;
  domain: string;
  keyAuthorization: string;
  writer: string;
  expiresAt: number;
}

export interface LeaseRow {
  domain: string;
  holder: string;
  expiresAt: number;
  /** When the holder first took it (its continuous hold is capped from there, R19-3). */
  takenAt: number;
}

export interface BackoffRow {
  domain: string;
  failures: number;
  until: number;
}

export interface CertificateRow {
  domain: string;
  chain: string;
  fingerprint: string;
  notBefore: number;
  notAfter: number;
  key: SealedAtRest;
}

export class CertsStore extends SqliteStore {
  constructor(file: string) {
    super(file);
    this.db.exec(SCHEMA);
    // A database from before R19-3 has no taken_at: added (old leases count as taken at 0, so capped already).
    const columns = this.db.pragma("table_info(leases)") as Array<{ name: string }>;
    if (!columns.some((c) => c.name === "taken_at"))
      this.db.exec("alter table leases add column taken_at integer not null default 0");
  }

  challenge(token: string): ChallengeRow | undefined {
    return this.statement(
      "select token, domain, key_authorization as keyAuthorization, writer, expires_at as expiresAt from challenges where token = ?",
    ).get(token) as ChallengeRow | undefined;
  }

  putChallenge(row: ChallengeRow): void {
    this.statement(
      `insert into challenges (token, domain, key_authorization, writer, expires_at) values (?, ?, ?, ?, ?)
       on conflict (token) do update set domain = excluded.domain, writer = excluded.writer, key_authorization = excluded.key_authorization,
       expires_at = excluded.expires_at`,
    ).run(row.token, row.domain, row.keyAuthorization, row.writer, row.expiresAt);
  }

  deleteChallenge(token: string): void {
    this.statement("delete from challenges where token = ?").run(token);
  }

  /** Live challenges, all or one writer's. */
  challengeCount(now: number, writer?: string): number {
    const row =
      writer === undefined
        ? this.statement("select count(*) as n from challenges where expires_at > ?").get(now)
        : this.statement("select count(*) as n from challenges where writer = ? and expires_at > ?").get(writer, now);
    return (row as { n: number }).n;
  }

  /** Deletes the challenges expired at `now`; how many went. */
  sweepChallenges(now: number): number {
    return this.statement("delete from challenges where expires_at <= ?").run(now).changes;
  }

  lease(domain: string): LeaseRow | undefined {
    return this.statement(
      "select domain, holder, expires_at as expiresAt, taken_at as takenAt from leases where domain = ?",
    ).get(domain) as LeaseRow | undefined;
  }

  putLease(row: LeaseRow): void {
    this.statement(
      `insert into leases (domain, holder, expires_at, taken_at) values (?, ?, ?, ?)
       on conflict (domain) do update set holder = excluded.holder, expires_at = excluded.expires_at,
       taken_at = excluded.taken_at`,
    ).run(row.domain, row.holder, row.expiresAt, row.takenAt);
  }

  /** Deletes `domain`'s lease if `holder` holds it; whether it did. */
  deleteLease(domain: string, holder: string): boolean {
    return this.statement("delete from leases where domain = ? and holder = ?").run(domain, holder).changes > 0;
  }

  leaseCount(now: number, holder?: string): number {
    const row =
      holder === undefined
        ? this.statement("select count(*) as n from leases where expires_at > ?").get(now)
        : this.statement("select count(*) as n from leases where holder = ? and expires_at > ?").get(holder, now);
    return (row as { n: number }).n;
  }

  /** Deletes the leases expired at `now`; how many went. */
  sweepLeases(now: number): number {
    return this.statement("delete from leases where expires_at <= ?").run(now).changes;
  }

  backoff(domain: string): BackoffRow | undefined {
    return this.statement("select domain, failures, until from backoffs where domain = ?").get(domain) as
      BackoffRow | undefined;
  }

  putBackoff(row: BackoffRow, reason: string): void {
    this.statement(
      `insert into backoffs (domain, failures, until, reason) values (?, ?, ?, ?)
       on conflict (domain) do update set failures = excluded.failures, until = excluded.until, reason = excluded.reason`,
    ).run(row.domain, row.failures, row.until, reason);
  }

  clearBackoff(domain: string): void {
    this.statement("delete from backoffs where domain = ?").run(domain);
  }

  certificate(domain: string): CertificateRow | undefined {
    const row = this.statement(
      `select domain, chain, fingerprint, not_before as notBefore, not_after as notAfter,
       key_iv as iv, key_tag as tag, key_ciphertext as ciphertext from certificates where domain = ?`,
    ).get(domain) as (Omit<CertificateRow, "key"> & SealedAtRest) | undefined;
    if (!row) return undefined;
    const { iv, tag, ciphertext, ...rest } = row;
    return { ...rest, key: { iv, tag, ciphertext } };
  }

  putCertificate(row: CertificateRow, uploader: string, now: number): void {
    this.statement(
      `insert into certificates (domain, chain, fingerprint, not_before, not_after, key_iv, key_tag, key_ciphertext,
       uploader, stored_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       on conflict (domain) do update set chain = excluded.chain, fingerprint = excluded.fingerprint,
       not_before = excluded.not_before, not_after = excluded.not_after, key_iv = excluded.key_iv,
       key_tag = excluded.key_tag, key_ciphertext = excluded.key_ciphertext, uploader = excluded.uploader,
       stored_at = excluded.stored_at`,
    ).run(
      row.domain,
      row.chain,
      row.fingerprint,
      row.notBefore,
      row.notAfter,
      row.key.iv,
      row.key.tag,
      row.key.ciphertext,
      uploader,
      now,
    );
  }

  /** Every stored certificate's domain and end of validity (for edge_cert_days_to_expiry). */
  expiries(): Array<{ domain: string; notAfter: number }> {
    return this.statement("select domain, not_after as notAfter from certificates order by domain").all() as Array<{
      domain: string;
      notAfter: number;
    }>;
  }

  /** Runs `fn` in one transaction. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}
