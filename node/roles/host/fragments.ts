/**
 * A host's Edge Storage fragments (issue 21, docs/storage.md "Fragments on hosts"): opaque bytes identified by
 * (objectId, index), each with the sha256 the owner's signed manifest gives it. They are kept in memory, where they
 * are served from, under a byte budget (`--storage-memory-mb`) and a count cap, and mirrored to disk
 * (fragmentsDisk.ts) so a restart loses nothing.
 *
 * Promises:
 * - Stored data is not a cache: a put that does not fit is refused (EDGE_NODE_STORAGE_FULL, 507) and nothing is
 *   ever evicted to make room. A store reopened over a smaller budget keeps everything it finds and refuses puts
 *   until deletes bring it under.
 * - A fragment whose bytes do not match its declared sha256 is refused (EDGE_NODE_FRAGMENT_HASH), nothing stored.
 *   The bytes are copied before they are hashed, so a caller changing its buffer later changes nothing here.
 * - A put resolves only once the fragment is durable on disk and in memory; a failed write leaves neither.
 * - Every read hashes the fragment. A memory copy that does not check is replaced from its disk copy if that one
 *   checks; otherwise both are removed, counted in `corrupt`, remembered as lost (EDGE_NODE_FRAGMENT_LOST, 410, so
 *   the gateway can repair it) and never served. Files that do not check at open are dropped the same way.
 * - No overwrite: a put of the same (objectId, index) with the same sha256 is idempotent ("exists"); with another
 *   sha256 it is refused (EDGE_NODE_FRAGMENT_CONFLICT, 409). Replacing a fragment takes an explicit delete, then a
 *   put. Who may put or delete is the gateway's decision (it authenticates owners and places fragments, and speaks
 *   to the host over its signed link); the store only makes sure nothing changes by accident or is substituted
 *   without a delete first.
 *
 * Operations on one key run in the order issued. The byte count is exact: `bytes` is the sum of the stored
 * fragments' lengths, and writes in flight reserve their bytes first, so concurrent puts never overshoot.
 */
import { type EdgeError, isEdgeError } from "../../../offchain/common/errors";
import { nodeError } from "../../errors";
import { type FragmentRecord, FragmentDisk, fragmentKey, sha256Hex } from "./fragmentsDisk";

export const FRAGMENT_MAX_INDEX = 255;
/** A 2 MiB object over k = 10 gives about 210 KB fragments; k = 1 would give 2 MiB, which Edge Storage never uses. */
export const DEFAULT_MAX_FRAGMENT_BYTES = 1024 * 1024;
/** Caps files and map entries: a budget filled with the smallest fragments (8 bytes) must not mean millions. */
export const DEFAULT_MAX_FRAGMENTS = 100_000;
/** Lost keys remembered for the gateway's asking; the oldest are forgotten past this. */
const MAX_LOST_REMEMBERED = 10_000;

const OBJECT_ID = /^0x[0-9a-f]{64}$/;
const SHA256 = /^0x[0-9a-f]{64}$/;

export interface FragmentStoreOptions {
  dir: string;
  /** Bytes of fragments held at most (their lengths summed). */
  budgetBytes: number;
  maxFragmentBytes?: number;
  maxFragments?: number;
  /** Tests only: false skips fsync (see FragmentDisk). */
  fsync?: boolean;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export interface StoredFragment {
  sha256: string;
  data: Buffer;
}

export interface FragmentStats {
  ready: boolean;
  /** Why the store could not open (it then refuses everything with EDGE_NODE_STORAGE_UNAVAILABLE). */
  error?: string;
  fragments: number;
  objects: number;
  bytes: number;
  budgetBytes: number;
  /** May be negative after a reopen over a smaller budget. */
  freeBytes: number;
  maxFragments: number;
  maxFragmentBytes: number;
  /** Fragments found not to match their sha256 (in memory or on disk) since start, each counted once. */
  corrupt: number;
  /** Copies in memory that did not check and were restored from disk. */
  restoredFromDisk: number;
  /** Writes a crash cut short, found and deleted at open. */
  partialDropped: number;
  /** Keys remembered as lost (corrupt, not restored) until put again or deleted. */
  lost: number;
}

/** Throws EDGE_NODE_BAD_FRAGMENT unless `objectId` is 0x and 64 lowercase hex digits and `index` is 0..255. */
export function checkFragmentKey(objectId: unknown, index: unknown): void {
  if (typeof objectId !== "string" || !OBJECT_ID.test(objectId)) {
    throw nodeError("EDGE_NODE_BAD_FRAGMENT", "a fragment's object id is 0x and 64 lowercase hex digits", {
      details: { objectId: typeof objectId === "string" ? objectId.slice(0, 80) : typeof objectId },
    });
  }
  if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index > FRAGMENT_MAX_INDEX) {
    throw nodeError("EDGE_NODE_BAD_FRAGMENT", `a fragment's index is an integer from 0 to ${FRAGMENT_MAX_INDEX}`, {
      details: { index: typeof index === "number" ? index : typeof index },
    });
  }
}

export class FragmentStore {
  /** Resolves when the disk copy is loaded (never rejects: a failure is kept and reported by every operation). */
  readonly ready: Promise<void>;
  private readonly objects = new Map<string, Map<number, StoredFragment>>();
  private readonly lost = new Set<string>();
  private readonly ops = new Map<string, Promise<unknown>>();
  private readonly disk: FragmentDisk;
  private readonly maxFragmentBytes: number;
  private readonly maxFragments: number;
  private loaded = false;
  private failure: Error | undefined;
  private stored = { bytes: 0, count: 0 };
  private reserved = { bytes: 0, count: 0 };
  private counters = { corrupt: 0, restored: 0, partial: 0 };

  constructor(private readonly options: FragmentStoreOptions) {
    if (!Number.isSafeInteger(options.budgetBytes) || options.budgetBytes < 0) {
      throw new RangeError("budgetBytes is a non-negative integer");
    }
    this.maxFragmentBytes = options.maxFragmentBytes ?? DEFAULT_MAX_FRAGMENT_BYTES;
    this.maxFragments = options.maxFragments ?? DEFAULT_MAX_FRAGMENTS;
    this.disk = new FragmentDisk(options.dir, options.fsync ?? true);
    this.ready = this.load();
  }

  /** Stores a fragment: "stored", or "exists" when the same bytes are already here. See the header for refusals. */
  async put(objectId: string, index: number, sha256: string, bytes: Uint8Array): Promise<"stored" | "exists"> {
    checkFragmentKey(objectId, index);
    if (typeof sha256 !== "string" || !SHA256.test(sha256)) {
      throw nodeError("EDGE_NODE_BAD_FRAGMENT", "a fragment's sha256 is 0x and 64 lowercase hex digits");
    }
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
      throw nodeError("EDGE_NODE_BAD_FRAGMENT", "a fragment has at least one byte");
    }
    if (bytes.length > this.maxFragmentBytes) {
      throw nodeError("EDGE_NODE_FRAGMENT_TOO_LARGE", `a fragment is at most ${this.maxFragmentBytes} bytes`, {
        details: { bytes: bytes.length, maximum: this.maxFragmentBytes },
      });
    }
    const data = Buffer.from(bytes); // our own copy, hashed after copying
    const actual = sha256Hex(data);
    if (actual !== sha256) {
      throw nodeError("EDGE_NODE_FRAGMENT_HASH", "the fragment's bytes do not match its sha256", {
        details: { objectId, index, declared: sha256, actual },
      });
    }
    await this.opened();
    return this.serial(fragmentKey(objectId, index), () => this.putNow({ objectId, index, sha256, data }));
  }

  /** The fragment's bytes (a copy) and sha256, checked; EDGE_NODE_FRAGMENT_NOT_FOUND or _LOST otherwise. */
  async get(objectId: string, index: number): Promise<StoredFragment> {
    checkFragmentKey(objectId, index);
    await this.opened();
    const key = fragmentKey(objectId, index);
    return this.serial(key, async () => {
      const entry = this.objects.get(objectId)?.get(index);
      const good = entry && (await this.checked(objectId, index, entry));
      if (good) return { sha256: good.sha256, data: Buffer.from(good.data) };
      if (this.lost.has(key)) {
        throw nodeError("EDGE_NODE_FRAGMENT_LOST", "this host lost the fragment (it failed its sha256 check)", {
          details: { objectId, index },
        });
      }
      throw nodeError("EDGE_NODE_FRAGMENT_NOT_FOUND", "this host holds no such fragment", {
        details: { objectId, index },
      });
    });
  }

  /** Removes a fragment from memory and disk; false when it was not here. A lost key is forgotten. */
  async delete(objectId: string, index: number): Promise<boolean> {
    checkFragmentKey(objectId, index);
    await this.opened();
    const key = fragmentKey(objectId, index);
    return this.serial(key, async () => {
      this.lost.delete(key);
      const present = this.objects.get(objectId)?.has(index) ?? false;
      await this.disk.remove(objectId, index).catch((error: unknown) => {
        throw this.diskError(error, "delete");
      });
      if (present) this.forget(objectId, index);
      return present;
    });
  }

  /** Deletes every fragment of an object held here; returns how many there were. */
  async deleteObject(objectId: string): Promise<number> {
    checkFragmentKey(objectId, 0);
    await this.opened();
    let removed = 0;
    for (const index of this.indices(objectId)) if (await this.delete(objectId, index)) removed++;
    return removed;
  }

  /** The indices held of an object, ascending. */
  indices(objectId: string): number[] {
    return [...(this.objects.get(objectId)?.keys() ?? [])].sort((a, b) => a - b);
  }

  has(objectId: string, index: number): boolean {
    return this.objects.get(objectId)?.has(index) ?? false;
  }

  /** Keys (`objectId/index`) found corrupt and not restored, oldest first (for the gateway's repair). */
  lostKeys(): string[] {
    return [...this.lost];
  }

  /**
   * Checks every fragment in memory and on disk: a bad disk copy is rewritten from a good memory copy, a bad
   * memory copy restored from a good disk copy, and a fragment with no good copy is dropped as lost. Not run by
   * any loop yet; the host can call it at a quiet time.
   */
  async scrub(): Promise<{ checked: number; rewritten: number; lost: number }> {
    await this.opened();
    const result = { checked: 0, rewritten: 0, lost: 0 };
    const keys = [...this.objects].flatMap(([objectId, map]) => [...map.keys()].map((index) => ({ objectId, index })));
    for (const { objectId, index } of keys) {
      await this.serial(fragmentKey(objectId, index), async () => {
        const entry = this.objects.get(objectId)?.get(index);
        if (!entry) return;
        result.checked++;
        const good = await this.checked(objectId, index, entry);
        if (!good) return void result.lost++;
        const onDisk = await this.disk.read(objectId, index);
        if (typeof onDisk !== "string" && onDisk.sha256 === good.sha256) return;
        if (onDisk === "corrupt") this.counters.corrupt++;
        this.options.log.warn({ objectId, index, disk: onDisk }, "host storage: rewriting a fragment's disk copy");
        await this.disk.write({ objectId, index, ...good });
        result.rewritten++;
      });
    }
    return result;
  }

  stats(): FragmentStats {
    return {
      ready: this.loaded,
      ...(this.failure ? { error: this.failure.message } : {}),
      fragments: this.stored.count,
      objects: this.objects.size,
      bytes: this.stored.bytes,
      budgetBytes: this.options.budgetBytes,
      freeBytes: this.options.budgetBytes - this.stored.bytes - this.reserved.bytes,
      maxFragments: this.maxFragments,
      maxFragmentBytes: this.maxFragmentBytes,
      corrupt: this.counters.corrupt,
      restoredFromDisk: this.counters.restored,
      partialDropped: this.counters.partial,
      lost: this.lost.size,
    };
  }

  /** Resolves when every operation issued so far has finished. */
  async close(): Promise<void> {
    await this.ready;
    while (this.ops.size > 0) await Promise.allSettled([...this.ops.values()]);
  }

  private async putNow(record: FragmentRecord): Promise<"stored" | "exists"> {
    const { objectId, index, sha256, data } = record;
    const existing = this.objects.get(objectId)?.get(index);
    if (existing) {
      if (existing.sha256 !== sha256) {
        throw nodeError(
          "EDGE_NODE_FRAGMENT_CONFLICT",
          "this host holds other bytes under this fragment; delete first",
          {
            details: { objectId, index, held: existing.sha256, offered: sha256 },
          },
        );
      }
      if (await this.checked(objectId, index, existing)) return "exists";
      // The copy here was corrupt and is gone: store the good one offered now.
    }
    const { budgetBytes } = this.options;
    const free = budgetBytes - this.stored.bytes - this.reserved.bytes;
    if (data.length > free || this.stored.count + this.reserved.count >= this.maxFragments) {
      throw nodeError("EDGE_NODE_STORAGE_FULL", "this host's fragment storage is full", {
        details: { bytes: data.length, freeBytes: Math.max(0, free), budgetBytes, fragments: this.stored.count },
      });
    }
    this.reserved.bytes += data.length;
    this.reserved.count++;
    try {
      await this.disk.write(record);
    } catch (error) {
      throw this.diskError(error, "write");
    } finally {
      this.reserved.bytes -= data.length;
      this.reserved.count--;
    }
    this.remember(objectId, index, { sha256, data });
    this.lost.delete(fragmentKey(objectId, index));
    return "stored";
  }

  /**
   * `entry` if its bytes match its sha256; else its disk copy if that one does (then back in memory); else
   * undefined, with the fragment removed from memory and disk, counted and remembered as lost.
   */
  private async checked(objectId: string, index: number, entry: StoredFragment): Promise<StoredFragment | undefined> {
    if (sha256Hex(entry.data) === entry.sha256) return entry;
    this.counters.corrupt++;
    const onDisk = await this.disk.read(objectId, index);
    if (typeof onDisk !== "string" && onDisk.sha256 === entry.sha256) {
      this.options.log.warn({ objectId, index }, "host storage: a fragment in memory was corrupt; restored from disk");
      this.counters.restored++;
      this.forget(objectId, index);
      this.remember(objectId, index, { sha256: onDisk.sha256, data: onDisk.data });
      return { sha256: onDisk.sha256, data: onDisk.data };
    }
    this.options.log.error({ objectId, index, disk: onDisk }, "host storage: a fragment is corrupt; dropped as lost");
    this.forget(objectId, index);
    this.markLost(fragmentKey(objectId, index));
    await this.disk.remove(objectId, index).catch(() => undefined);
    return undefined;
  }

  private async load(): Promise<void> {
    try {
      const { records, corrupt, partial } = await this.disk.scan();
      for (const record of records) {
        if (record.index > FRAGMENT_MAX_INDEX || record.data.length === 0) {
          await this.disk.remove(record.objectId, record.index);
          corrupt.push(fragmentKey(record.objectId, record.index));
        } else this.remember(record.objectId, record.index, { sha256: record.sha256, data: record.data });
      }
      for (const key of corrupt) this.markLost(key);
      this.counters.corrupt += corrupt.length;
      this.counters.partial += partial;
      if (corrupt.length > 0 || partial > 0) {
        this.options.log.error({ corrupt, partial }, "host storage: dropped corrupt or partial fragment files");
      }
      if (this.stored.bytes > this.options.budgetBytes || this.stored.count > this.maxFragments) {
        this.options.log.warn(this.stats(), "host storage: over budget after open; puts refused until deletes");
      }
      this.loaded = true;
    } catch (error) {
      this.failure = error instanceof Error ? error : new Error(String(error));
      this.options.log.error({ err: error, dir: this.options.dir }, "host storage: cannot open the fragment store");
    }
  }

  private async opened(): Promise<void> {
    await this.ready;
    if (this.failure) {
      throw nodeError("EDGE_NODE_STORAGE_UNAVAILABLE", "this host's fragment storage could not open", {
        details: { reason: this.failure.message },
      });
    }
  }

  private remember(objectId: string, index: number, entry: StoredFragment): void {
    let map = this.objects.get(objectId);
    if (!map) this.objects.set(objectId, (map = new Map()));
    map.set(index, entry);
    this.stored.bytes += entry.data.length;
    this.stored.count++;
  }

  private forget(objectId: string, index: number): void {
    const map = this.objects.get(objectId);
    const entry = map?.get(index);
    if (!map || !entry) return;
    map.delete(index);
    if (map.size === 0) this.objects.delete(objectId);
    this.stored.bytes -= entry.data.length;
    this.stored.count--;
  }

  private markLost(key: string): void {
    this.lost.delete(key);
    this.lost.add(key);
    if (this.lost.size > MAX_LOST_REMEMBERED) this.lost.delete(this.lost.values().next().value as string);
  }

  private diskError(error: unknown, doing: string): EdgeError {
    if (isEdgeError(error)) return error;
    const code = (error as NodeJS.ErrnoException).code;
    this.options.log.error({ err: error, dir: this.options.dir }, `host storage: a fragment ${doing} failed`);
    if (code === "ENOSPC" || code === "EDQUOT") {
      return nodeError("EDGE_NODE_STORAGE_FULL", "this host's disk is full", { details: { reason: code } });
    }
    return nodeError("EDGE_NODE_STORAGE_UNAVAILABLE", `this host could not ${doing} the fragment on disk`, {
      details: { reason: code ?? "unknown" },
      cause: error,
    });
  }

  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.ops.get(key) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.ops.set(key, settled);
    void settled.then(() => {
      if (this.ops.get(key) === settled) this.ops.delete(key);
    });
    return next;
  }
}
