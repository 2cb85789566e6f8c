/**
 * The gateway's index of the Edge Storage objects it placed (issue 21, D75): one SQLite file under --data-dir
 * (offchain/common/sqlite.ts: WAL, a commit survives a process crash).
 *
 * - `objects`: each object's owner-signed manifest (its placement kept current here), its stored bytes
 *   (n * fragmentSize: what the hosts hold, what byte-hours bill) and when it was stored.
 * - `placement`: (object, fragment) -> host, so repair finds an evicted host's fragments with one indexed query.
 * - `owners`: each owner's stored bytes and objects (the quota checks read one row), and the time its byte-hours
 *   were accrued to; `byte_ms` carries the remainder below one byte-hour.
 * - `deletes`: fragments still to delete on hosts (a host unreachable at the owner's delete is asked again later).
 *   A row never names a fragment's current place: placing a fragment (insert, move) clears its row (R21-2).
 * - `staged`: fragments being written for a put or a repair, not yet indexed. Those a put did not keep, and all
 *   of them when the index opens (the gateway stopped mid-put), move to `deletes`: no orphans on hosts (R21-3).
 *
 * Every change to an object is one transaction, so the owner's totals always equal the sum of its objects.
 */
import type { StorageManifest, StoragePlacement } from "../../../offchain/common/protocol";
import { SqliteStore } from "../../../offchain/common/sqlite";

const MS_PER_HOUR = 3_600_000n;

export interface StoredObject {
  objectId: string;
  owner: string;
  manifest: StorageManifest;
  storedBytes: number;
  createdAt: number;
}

export interface OwnerTotals {
  bytes: number;
  objects: number;
}

interface ObjectRow {
  object_id: string;
  owner: string;
  manifest: string;
  stored_bytes: number;
  created_at: number;
}

const toObject = (row: ObjectRow): StoredObject => ({
  objectId: row.object_id,
  owner: row.owner,
  manifest: JSON.parse(row.manifest) as StorageManifest,
  storedBytes: row.stored_bytes,
  createdAt: row.created_at,
});

export class StorageIndex extends SqliteStore {
  constructor(file: string) {
    super(file);
    this.db.exec(`
      create table if not exists objects (
        object_id text primary key, owner text not null, manifest text not null,
        stored_bytes integer not null, created_at integer not null);
      create index if not exists objects_owner on objects (owner, object_id);
      create table if not exists placement (
        object_id text not null, fragment integer not null, host text not null,
        primary key (object_id, fragment));
      create index if not exists placement_host on placement (host);
      create table if not exists owners (
        owner text primary key, bytes integer not null, objects integer not null,
        accrued_at integer not null, byte_ms text not null);
      create table if not exists deletes (
        object_id text not null, fragment integer not null, host text not null,
        primary key (object_id, fragment, host));
      create table if not exists staged (
        object_id text not null, fragment integer not null, host text not null,
        primary key (object_id, fragment, host));
      insert or ignore into deletes select * from staged;
      delete from staged;
    `);
  }

  /** A fragment about to be written to `host` (a put's or a repair's): deleted there unless it is indexed. */
  stage(objectId: string, fragment: number, host: string): void {
    this.statement("insert or ignore into staged (object_id, fragment, host) values (?, ?, ?)").run(
      objectId,
      fragment,
      host.toLowerCase(),
    );
  }

  /** Staged fragments of `objectId` that were not indexed (a failed put or repair): to delete on their hosts. */
  abandon(objectId: string, fragment?: number): void {
    this.db.transaction(() => {
      const where = fragment === undefined ? "object_id = ?" : "object_id = ? and fragment = ?";
      const args = fragment === undefined ? [objectId] : [objectId, fragment];
      this.statement(`insert or ignore into deletes select * from staged where ${where}`).run(...args);
      this.statement(`delete from staged where ${where}`).run(...args);
    })();
  }

  /** Placing fragment `fragment` of an object on `host`: neither a staged write nor a delete to do there now. */
  private placed(objectId: string, fragment: number, host: string): void {
    for (const table of ["staged", "deletes"])
      this.statement(`delete from ${table} where object_id = ? and fragment = ? and host = ?`).run(
        objectId,
        fragment,
        host.toLowerCase(),
      );
  }

  get(objectId: string): StoredObject | undefined {
    const row = this.statement("select * from objects where object_id = ?").get(objectId) as ObjectRow | undefined;
    return row && toObject(row);
  }

  totals(owner: string): OwnerTotals {
    const row = this.statement("select bytes, objects from owners where owner = ?").get(owner.toLowerCase()) as
      OwnerTotals | undefined;
    return row ?? { bytes: 0, objects: 0 };
  }

  /** The owner's objects after `after` (by id), at most `limit`. */
  list(owner: string, after: string, limit: number): StoredObject[] {
    const rows = this.statement(
      "select * from objects where owner = ? and object_id > ? order by object_id limit ?",
    ).all(owner.toLowerCase(), after, limit) as ObjectRow[];
    return rows.map(toObject);
  }

  /** Records a placed object; its owner's byte-hours are accrued to `now` first (its bytes count from now on). */
  insert(object: StoredObject, now: number): void {
    const owner = object.owner.toLowerCase();
    this.db.transaction(() => {
      this.accrueOwner(owner, now);
      this.statement(
        "insert into objects (object_id, owner, manifest, stored_bytes, created_at) values (?, ?, ?, ?, ?)",
      ).run(object.objectId, owner, JSON.stringify(object.manifest), object.storedBytes, object.createdAt);
      for (const { fragment, host } of object.manifest.placement) {
        this.statement("insert into placement (object_id, fragment, host) values (?, ?, ?)").run(
          object.objectId,
          fragment,
          host.toLowerCase(),
        );
        this.placed(object.objectId, fragment, host);
      }
      this.abandon(object.objectId); // written to a host that then failed (a retry went elsewhere): delete there
      this.statement(
        `insert into owners (owner, bytes, objects, accrued_at, byte_ms) values (?, ?, 1, ?, '0')
         on conflict (owner) do update set bytes = bytes + excluded.bytes, objects = objects + 1`,
      ).run(owner, object.storedBytes, now);
    })();
  }

  /**
   * Removes an object (the owner's delete): its fragments move to `deletes`, its bytes stop counting at `now`.
   * Returns the removed object, or undefined if there was none.
   */
  remove(objectId: string, now: number): StoredObject | undefined {
    return this.db.transaction(() => {
      const object = this.get(objectId);
      if (!object) return undefined;
      this.accrueOwner(object.owner, now);
      for (const { fragment, host } of object.manifest.placement)
        this.statement("insert or ignore into deletes (object_id, fragment, host) values (?, ?, ?)").run(
          objectId,
          fragment,
          host.toLowerCase(),
        );
      this.statement("delete from placement where object_id = ?").run(objectId);
      this.statement("delete from objects where object_id = ?").run(objectId);
      this.statement("update owners set bytes = bytes - ?, objects = objects - 1 where owner = ?").run(
        object.storedBytes,
        object.owner,
      );
      return object;
    })();
  }

  /**
   * Moves fragment `fragment` of an object to `host` (repair), keeping the manifest's placement current; the old
   * host's copy joins `deletes`.
   */
  move(objectId: string, fragment: number, host: string): void {
    this.db.transaction(() => {
      const object = this.get(objectId);
      // Deleted while repair wrote it: the new copy is deleted too.
      if (!object) return void this.abandon(objectId, fragment);
      this.placed(objectId, fragment, host);
      const placement: StoragePlacement[] = object.manifest.placement
        .filter((p) => p.fragment !== fragment)
        .concat({ fragment, host: host.toLowerCase() })
        .sort((a, b) => a.fragment - b.fragment);
      // The old host's copy (a host that links again, a lost copy) is deleted when it can be.
      for (const old of object.manifest.placement)
        if (old.fragment === fragment && old.host.toLowerCase() !== host.toLowerCase())
          this.statement("insert or ignore into deletes (object_id, fragment, host) values (?, ?, ?)").run(
            objectId,
            fragment,
            old.host.toLowerCase(),
          );
      this.statement("update objects set manifest = ? where object_id = ?").run(
        JSON.stringify({ ...object.manifest, placement }),
        objectId,
      );
      this.statement(
        `insert into placement (object_id, fragment, host) values (?, ?, ?)
         on conflict (object_id, fragment) do update set host = excluded.host`,
      ).run(objectId, fragment, host.toLowerCase());
    })();
  }

  /** The (object, fragment) pairs placed on `host`. */
  onHost(host: string): Array<{ objectId: string; fragment: number }> {
    const rows = this.statement("select object_id, fragment from placement where host = ?").all(
      host.toLowerCase(),
    ) as Array<{ object_id: string; fragment: number }>;
    return rows.map((r) => ({ objectId: r.object_id, fragment: r.fragment }));
  }

  /** Hosts holding any fragment, with how many each holds. */
  hosts(): Map<string, number> {
    const rows = this.statement("select host, count(*) as n from placement group by host").all() as Array<{
      host: string;
      n: number;
    }>;
    return new Map(rows.map((r) => [r.host, r.n]));
  }

  /**
   * Fragments still to delete (at most `limit`): on `hosts` only if given (the linked ones: rows for an unlinked
   * host must not fill every page, R21-5), of `objectId` only if given.
   */
  pendingDeletes(
    limit: number,
    only: { hosts?: readonly string[]; objectId?: string } = {},
  ): Array<{ objectId: string; fragment: number; host: string }> {
    const hosts = only.hosts === undefined ? null : JSON.stringify(only.hosts);
    const rows = this.statement(
      `select object_id, fragment, host from deletes where (? is null or host in (select value from json_each(?)))
       and (? is null or object_id = ?) and not exists (select 1 from placement p where p.object_id = deletes.object_id
       and p.fragment = deletes.fragment and p.host = deletes.host) and not exists (select 1 from staged s where
       s.object_id = deletes.object_id and s.fragment = deletes.fragment and s.host = deletes.host) limit ?`,
    ).all(hosts, hosts, only.objectId ?? null, only.objectId ?? null, limit) as Array<{
      object_id: string;
      fragment: number;
      host: string;
    }>;
    return rows.map((r) => ({ objectId: r.object_id, fragment: r.fragment, host: r.host }));
  }

  deleted(objectId: string, fragment: number, host: string): void {
    this.statement("delete from deletes where object_id = ? and fragment = ? and host = ?").run(
      objectId,
      fragment,
      host.toLowerCase(),
    );
  }

  get counts(): { objects: number; bytes: number; owners: number; pendingDeletes: number } {
    const row = this.statement(
      `select (select count(*) from objects) as objects, (select coalesce(sum(stored_bytes), 0) from objects) as bytes,
        (select count(*) from owners where objects > 0) as owners, (select count(*) from deletes) as pendingDeletes`,
    ).get() as { objects: number; bytes: number; owners: number; pendingDeletes: number };
    return row;
  }

  /**
   * Accrues every owner's byte-hours to `now` and returns the whole byte-hours each owes since the last accrual
   * (the remainder below one byte-hour is carried). Committed before the caller records the usage: a crash in
   * between loses one interval (billed less), never bills one twice.
   */
  accrue(now: number): Array<{ owner: string; byteHours: bigint }> {
    return this.db.transaction(() => {
      const owners = this.statement("select owner from owners where bytes > 0 or byte_ms != '0'").all() as Array<{
        owner: string;
      }>;
      return owners.flatMap(({ owner }) => {
        const byteHours = this.accrueOwner(owner, now, true);
        return byteHours > 0n ? [{ owner, byteHours }] : [];
      });
    })();
  }

  /**
   * Adds bytes * elapsed ms to the owner's carry (before its bytes change); with `takeOut`, takes the whole
   * byte-hours out of the carry and returns them (only `accrue` does: what it returns is recorded as usage).
   */
  private accrueOwner(owner: string, now: number, takeOut = false): bigint {
    const row = this.statement("select bytes, accrued_at, byte_ms from owners where owner = ?").get(owner) as
      { bytes: number; accrued_at: number; byte_ms: string } | undefined;
    if (!row) return 0n;
    const elapsed = BigInt(Math.max(0, now - row.accrued_at));
    const carry = BigInt(row.byte_ms) + BigInt(row.bytes) * elapsed;
    const byteHours = takeOut ? carry / MS_PER_HOUR : 0n;
    this.statement("update owners set accrued_at = ?, byte_ms = ? where owner = ?").run(
      Math.max(now, row.accrued_at),
      (carry - byteHours * MS_PER_HOUR).toString(),
      owner,
    );
    return byteHours;
  }
}
