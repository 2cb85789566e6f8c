/**
 * The stargate's configuration store (D53): the anchored versions it verified (version, hash, the document's
 * canonical bytes) and the signed deltas on top of the latest one, in SQLite under the data directory, so a
 * restart loses nothing. It holds the current state in memory too (the latest version, its deltas, the effective
 * document) and tells its listeners of every change: the gRPC server pushes each one to its subscribers.
 *
 * Only what was verified is stored: an authority's own signed deltas and anchored versions, versions uploaded
 * whose hash the chain anchors, or what an upstream stargate sent and the relay's subscriber verified. Deltas on
 * an older base than the latest version are dropped when it is stored (the authority folded them into it).
 */
import type { Hex } from "viem";

import { SqliteStore } from "../../../offchain/common/sqlite";
import {
  type DeltaBody,
  type NetworkConfig,
  applyDeltas,
  parseDeltaBody,
  parseDocument,
} from "../../../offchain/common/protocol";
import type { AppliedConfig } from "../../context";

export interface StoredVersion {
  version: number;
  hash: Hex;
  /** The canonical bytes whose keccak256 is `hash`. */
  bytes: Buffer;
  document: NetworkConfig;
}

export interface StoredDelta {
  base: number;
  seq: number;
  body: Buffer;
  signature: Hex;
  parsed: DeltaBody;
}

/**
 * The next version a fold made, stored before its anchoring transaction is sent (R17-7): `folded` is how many of
 * the deltas on the latest version it holds. A retry or a restart adopts it when the chain anchors its hash.
 */
export interface FoldCandidate extends StoredVersion {
  folded: number;
}

export type StoreChange = { kind: "version"; version: StoredVersion } | { kind: "delta"; delta: StoredDelta };

export class ConfigStore extends SqliteStore {
  private current: StoredVersion | undefined;
  private deltas: StoredDelta[] = [];
  private effective: NetworkConfig | undefined;
  private readonly listeners: ((change: StoreChange) => void)[] = [];

  constructor(file: string) {
    super(file);
    this.db.exec(`
      create table if not exists versions (version integer primary key, hash text not null, document blob not null);
      create table if not exists deltas (base integer not null, seq integer not null, body blob not null,
        signature text not null, primary key (base, seq));
      create table if not exists candidate (version integer primary key, hash text not null, document blob not null,
        folded integer not null);`);
    this.load();
  }

  /** The latest anchored version held, undefined before the first. */
  latest(): StoredVersion | undefined {
    return this.current;
  }

  /** The deltas on top of the latest version, in sequence order. */
  currentDeltas(): readonly StoredDelta[] {
    return this.deltas;
  }

  /** The sequence of the last delta on the latest version (0: none). */
  seq(): number {
    return this.deltas.length;
  }

  /** The latest version with its deltas applied: the configuration in force. */
  effectiveConfig(): AppliedConfig | undefined {
    if (!this.current || !this.effective) return undefined;
    return { version: this.current.version, seq: this.seq(), hash: this.current.hash, document: this.effective };
  }

  /** The fold's candidate for the next version, if one is stored. */
  candidate(): FoldCandidate | undefined {
    const row = this.statement("select version, hash, document, folded from candidate").get() as
      { version: number; hash: Hex; document: Buffer; folded: number } | undefined;
    if (!row) return undefined;
    const document = parseDocument(row.document);
    if (typeof document === "string") return undefined; // never stored so
    return { version: row.version, hash: row.hash, bytes: row.document, document, folded: row.folded };
  }

  /** Stores the fold's candidate (the only one). */
  putCandidate(candidate: FoldCandidate): void {
    this.db.transaction(() => {
      this.statement("delete from candidate").run();
      this.statement("insert into candidate (version, hash, document, folded) values (?, ?, ?, ?)").run(
        candidate.version,
        candidate.hash,
        candidate.bytes,
        candidate.folded,
      );
    })();
  }

  clearCandidate(): void {
    this.statement("delete from candidate").run();
  }

  onChange(listener: (change: StoreChange) => void): void {
    this.listeners.push(listener);
  }

  /** Stores a verified anchored version newer than the latest; drops the deltas of older bases. */
  putVersion(version: StoredVersion): void {
    if (this.current && version.version <= this.current.version)
      throw new Error(`version ${version.version} is not newer than the held ${this.current.version}`);
    this.db.transaction(() => {
      this.statement("insert or replace into versions (version, hash, document) values (?, ?, ?)").run(
        version.version,
        version.hash,
        version.bytes,
      );
      this.statement("delete from deltas where base < ?").run(version.version);
      this.statement("delete from candidate where version <= ?").run(version.version);
    })();
    this.current = version;
    this.deltas = [];
    this.effective = version.document;
    this.emit({ kind: "version", version });
  }

  /** Stores a verified delta: its base must be the latest version and its seq the next. */
  putDelta(delta: StoredDelta): void {
    if (!this.current || delta.base !== this.current.version)
      throw new Error(`delta base ${delta.base} is not the held version ${this.current?.version ?? 0}`);
    if (delta.seq !== this.deltas.length + 1)
      throw new Error(`delta seq ${delta.seq} does not follow the held ${this.deltas.length}`);
    this.statement("insert into deltas (base, seq, body, signature) values (?, ?, ?, ?)").run(
      delta.base,
      delta.seq,
      delta.body,
      delta.signature,
    );
    this.deltas.push(delta);
    this.effective = applyDeltas(this.effective!, [delta.parsed]);
    this.emit({ kind: "delta", delta });
  }

  private emit(change: StoreChange): void {
    for (const listener of this.listeners) listener(change);
  }

  private load(): void {
    const row = this.statement("select version, hash, document from versions order by version desc limit 1").get() as
      { version: number; hash: Hex; document: Buffer } | undefined;
    if (!row) return;
    const document = parseDocument(row.document);
    if (typeof document === "string") throw new Error(`stored version ${row.version}: ${document}`);
    this.current = { version: row.version, hash: row.hash, bytes: row.document, document };
    const rows = this.statement("select base, seq, body, signature from deltas where base = ? order by seq").all(
      row.version,
    ) as { base: number; seq: number; body: Buffer; signature: Hex }[];
    for (const [i, d] of rows.entries()) {
      const parsed = parseDeltaBody(d.body);
      if (typeof parsed === "string" || d.seq !== i + 1) break; // never stored so; stop at the first gap
      this.deltas.push({ ...d, parsed });
    }
    this.effective = applyDeltas(
      document,
      this.deltas.map((d) => d.parsed),
    );
  }
}
