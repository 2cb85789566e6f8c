/**
 * The disk tier of a host's cache: one file per entry under `dir`, named by the SHA-256 of the entry's key
 * (`<hex>.entry`), holding a 4-byte length, a JSON header (the key, the CachePolicy's `toObject()`, the body's length
 * and SHA-256) and the body. A file is written to `<hex>.<n>.tmp` and renamed, so it is whole or absent; a file that
 * is short, unparsable or whose body does not match its hash (a disk fault, a copy cut short) is deleted and
 * reads as a miss. Total bytes (file sizes) stay at or under `maxBytes`: the least recently used files go first.
 * The index (id -> key, size, in LRU order) is rebuilt from the directory at start, oldest modification first,
 * so a restart keeps the tier; a read moves an entry to the young end and touches its file's mtime.
 *
 * Operations on one id run in the order issued (a delete issued after a write removes what that write wrote).
 */
import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, unlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** What the cache keeps beside a body; `policy` is CachePolicy's `toObject()`. */
export interface DiskHeader {
  /** The full key: `${site}\nGET\n${url}\n${vary values}`. */
  key: string;
  /** The key without the vary values (the URL's entry list). */
  primary: string;
  /** The request header names the response varies on, lower-case, sorted, comma-joined ("" for none). */
  vary: string;
  status: number;
  policy: object;
  /** Set when the cache supplied the freshness (defaultTtlSeconds): the origin's own Cache-Control, or null. */
  originalCc?: string | null;
}

export interface DiskRecord {
  header: DiskHeader;
  body: Buffer;
}

/** What the index knows of a file without reading it. */
export interface DiskInfo {
  key: string;
  primary: string;
  vary: string;
  bytes: number;
}

interface StoredHeader extends DiskHeader {
  bodyBytes: number;
  sha256: string;
}

const ENTRY = /^([0-9a-f]{64})\.entry$/;
const MAX_HEADER_BYTES = 1 << 20;

export const idOf = (key: string): string => createHash("sha256").update(key).digest("hex");

export class DiskTier {
  private readonly index = new Map<string, DiskInfo>();
  private readonly ops = new Map<string, Promise<unknown>>();
  private total = 0;
  private tmpSeq = 0;

  private constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly log: { warn(obj: object, msg: string): void },
    /** Called when an entry leaves the tier by eviction or as corrupt (not on an explicit delete). */
    private readonly onGone: (id: string, info: DiskInfo) => void,
  ) {}

  /** Opens `dir` (created if missing) and rebuilds the index from its files. */
  static async open(
    dir: string,
    maxBytes: number,
    log: { warn(obj: object, msg: string): void },
    onGone: (id: string, info: DiskInfo) => void,
  ): Promise<DiskTier> {
    const tier = new DiskTier(dir, maxBytes, log, onGone);
    await mkdir(dir, { recursive: true });
    const found: { id: string; info: DiskInfo; mtime: number }[] = [];
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      if (name.endsWith(".tmp")) {
        await unlink(path).catch(() => undefined); // a write cut short by a crash
        continue;
      }
      const match = ENTRY.exec(name);
      if (!match) continue;
      const scanned = await tier.scan(path);
      if (scanned && idOf(scanned.info.key) === match[1]) found.push({ id: match[1], ...scanned });
      else {
        log.warn({ file: path }, "host cache: dropping a corrupt or partial disk entry");
        await unlink(path).catch(() => undefined);
      }
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const { id, info } of found) {
      tier.index.set(id, info);
      tier.total += info.bytes;
    }
    tier.evictDownTo(maxBytes, "");
    await tier.idle();
    return tier;
  }

  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.index.size;
  }

  has(id: string): boolean {
    return this.index.has(id);
  }

  /** The index, oldest first (for rebuilding the cache's per-URL lists). */
  entries(): IterableIterator<[string, DiskInfo]> {
    return this.index.entries();
  }

  /** The record under `id`, or undefined (absent, or corrupt: then deleted). */
  get(id: string): Promise<DiskRecord | undefined> {
    return this.serial(id, async () => {
      const info = this.index.get(id);
      if (!info) return undefined;
      const path = this.path(id);
      const record = await readFile(path).then(decode, () => undefined);
      if (!record || record.header.key !== info.key) {
        this.log.warn({ file: path }, "host cache: dropping a corrupt or partial disk entry");
        this.forget(id);
        await unlink(path).catch(() => undefined);
        this.onGone(id, info);
        return undefined;
      }
      this.index.delete(id); // to the young end
      this.index.set(id, info);
      const now = new Date();
      utimes(path, now, now).catch(() => undefined);
      return record;
    });
  }

  /** Writes a record (replacing any under `id`); false when it alone is larger than the tier. */
  put(id: string, record: DiskRecord): Promise<boolean> {
    return this.serial(id, async () => {
      const data = encode(record);
      this.forget(id);
      if (data.length > this.maxBytes) {
        await unlink(this.path(id)).catch(() => undefined);
        return false;
      }
      this.evictDownTo(this.maxBytes - data.length, id);
      const info: DiskInfo = {
        key: record.header.key,
        primary: record.header.primary,
        vary: record.header.vary,
        bytes: data.length,
      };
      this.index.set(id, info); // counted before the write, so concurrent writes cannot overshoot the bound
      this.total += data.length;
      const tmp = join(this.dir, `${id}.${process.pid}-${++this.tmpSeq}.tmp`);
      try {
        await writeFile(tmp, data);
        await rename(tmp, this.path(id));
        return true;
      } catch (error) {
        this.forget(id);
        await unlink(tmp).catch(() => undefined);
        throw error;
      }
    });
  }

  delete(id: string): Promise<void> {
    return this.serial(id, async () => {
      this.forget(id);
      await unlink(this.path(id)).catch(() => undefined);
    });
  }

  /** Resolves when every operation issued so far has finished. */
  async idle(): Promise<void> {
    while (this.ops.size > 0) await Promise.allSettled([...this.ops.values()]);
  }

  private path(id: string): string {
    return join(this.dir, `${id}.entry`);
  }

  private forget(id: string): void {
    const info = this.index.get(id);
    if (!info) return;
    this.index.delete(id);
    this.total -= info.bytes;
  }

  /**
   * Evicts least recently used entries (never `keep`) until the total is at most `limit`. The index changes at once;
   * each file is unlinked in its id's turn (after a write of it in progress, which would otherwise recreate it).
   */
  private evictDownTo(limit: number, keep: string): void {
    for (const [id, info] of this.index) {
      if (this.total <= limit) return;
      if (id === keep) continue;
      this.forget(id);
      void this.serial(id, () => unlink(this.path(id)).catch(() => undefined));
      this.onGone(id, info);
    }
  }

  /** Reads a file's header only (for the index): its key, lists and size; undefined when malformed. */
  private async scan(path: string): Promise<{ info: DiskInfo; mtime: number } | undefined> {
    try {
      const handle = await open(path, "r");
      try {
        const { size, mtimeMs } = await handle.stat();
        const length = Buffer.alloc(4);
        if ((await handle.read(length, 0, 4, 0)).bytesRead !== 4) return undefined;
        const headerBytes = length.readUInt32BE(0);
        if (headerBytes > MAX_HEADER_BYTES || 4 + headerBytes > size) return undefined;
        const raw = Buffer.alloc(headerBytes);
        if ((await handle.read(raw, 0, headerBytes, 4)).bytesRead !== headerBytes) return undefined;
        const header = parseHeader(raw);
        if (!header || size !== 4 + headerBytes + header.bodyBytes) return undefined;
        return { info: { key: header.key, primary: header.primary, vary: header.vary, bytes: size }, mtime: mtimeMs };
      } finally {
        await handle.close();
      }
    } catch {
      return undefined;
    }
  }

  private serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.ops.get(id) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.ops.set(id, settled);
    void settled.then(() => {
      if (this.ops.get(id) === settled) this.ops.delete(id);
    });
    return next;
  }
}

function encode({ header, body }: DiskRecord): Buffer {
  const stored: StoredHeader = {
    ...header,
    bodyBytes: body.length,
    sha256: createHash("sha256").update(body).digest("hex"),
  };
  const json = Buffer.from(JSON.stringify(stored));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length, 0);
  return Buffer.concat([length, json, body]);
}

function decode(data: Buffer): DiskRecord | undefined {
  if (data.length < 4) return undefined;
  const headerBytes = data.readUInt32BE(0);
  if (headerBytes > MAX_HEADER_BYTES || 4 + headerBytes > data.length) return undefined;
  const header = parseHeader(data.subarray(4, 4 + headerBytes));
  const body = data.subarray(4 + headerBytes);
  if (!header || body.length !== header.bodyBytes) return undefined;
  if (createHash("sha256").update(body).digest("hex") !== header.sha256) return undefined;
  const { bodyBytes: _bytes, sha256: _hash, ...rest } = header;
  return { header: rest, body };
}

function parseHeader(raw: Buffer): StoredHeader | undefined {
  try {
    const header = JSON.parse(raw.toString("utf8")) as StoredHeader;
    const ok =
      typeof header.key === "string" &&
      typeof header.primary === "string" &&
      typeof header.vary === "string" &&
      typeof header.status === "number" &&
      typeof header.bodyBytes === "number" &&
      typeof header.sha256 === "string" &&
      typeof header.policy === "object" &&
      header.policy !== null;
    return ok ? header : undefined;
  } catch {
    return undefined;
  }
}
