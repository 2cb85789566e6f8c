/**
 * The storage of the host's cache (cache.ts): entries (a body, its CachePolicy, its key) in two size-bounded tiers,
 * memory (lru-cache, sized by body plus a header estimate) and disk (diskTier.ts), and per URL the list of its Vary
 * variants (at most MAX_VARIANTS, the oldest dropped first). A memory eviction is written to disk (and served from
 * the write in progress meanwhile); a disk hit is promoted to memory and stays on disk, so evicting it again costs
 * no write; an entry larger than the memory tier goes straight to disk. `close()` writes what only memory holds.
 */
import CachePolicy from "http-cache-semantics";
import { LRUCache } from "lru-cache";

import { variantKey } from "./cacheRules";
import { DiskTier, idOf, type DiskInfo } from "./diskTier";

export interface Entry {
  key: string;
  /** `${site}\nGET\n${url}`: the URL's list of variants. */
  primary: string;
  vary: string;
  status: number;
  policy: CachePolicy;
  /** Set when the freshness is the cache's default: the origin's own Cache-Control (null: none). */
  originalCc?: string | null;
  body: Buffer;
  /** Body plus header estimate (the memory tier's measure). */
  size: number;
  /** The disk tier holds this very version. */
  onDisk: boolean;
}

export interface CacheStoreOptions {
  dir: string;
  memoryBytes: number;
  diskBytes: number;
  log: { warn(obj: object, msg: string): void };
  /** CachePolicy with the cache's clock, to revive policies read from disk. */
  Policy: typeof CachePolicy;
}

export const MAX_VARIANTS = 8;

export class CacheStore {
  private readonly memory: LRUCache<string, Entry>;
  /** Entries being written to disk after leaving memory (still served). */
  private readonly pending = new Map<string, Entry>();
  /** Per URL, its stored variants (oldest first). */
  private readonly variants = new Map<string, { key: string; vary: string }[]>();
  private listed = 0;
  private disk!: DiskTier;
  /** Resolves when the disk tier is open and its entries listed; rejects when the directory cannot be used. */
  readonly ready: Promise<void>;

  constructor(private readonly opts: CacheStoreOptions) {
    this.memory = new LRUCache<string, Entry>({
      maxSize: Math.max(1, opts.memoryBytes),
      sizeCalculation: (entry) => entry.size,
      dispose: (entry, _key, reason) => {
        if (reason === "evict") this.spill(entry);
      },
    });
    this.ready = DiskTier.open(opts.dir, opts.diskBytes, opts.log, (_id, info) => {
      if (this.disk) this.goneFromDisk(info); // at start, before the listing
    }).then((disk) => {
      this.disk = disk;
      for (const [, info] of disk.entries()) this.list(info.primary, info.key, info.vary);
    });
  }

  get memoryBytes(): number {
    return this.memory.calculatedSize;
  }

  get diskBytes(): number {
    return this.disk?.bytes ?? 0;
  }

  /** Variants listed (in memory, being written, or on disk). */
  get entries(): number {
    return this.listed;
  }

  /** Drops every variant of a URL. */
  removeAll(primary: string): void {
    for (const { key } of [...(this.variants.get(primary) ?? [])]) this.remove(primary, key);
  }

  /** Writes what only memory holds to disk (least recently used first) and waits for the disk tier. */
  async close(): Promise<void> {
    await this.ready.catch(() => undefined);
    if (!this.disk) return;
    for (const entry of [...this.memory.rvalues()]) if (entry && !entry.onDisk) this.spill(entry);
    await this.disk.idle();
  }

  entry(
    key: string,
    primary: string,
    vary: string,
    status: number,
    policy: CachePolicy,
    originalCc: string | null | undefined,
    body: Buffer,
  ): Entry {
    // Header estimate: the policy's JSON (both header sets), plus the key held twice (memory and the URL's list).
    const size = body.length + JSON.stringify(policy.toObject()).length + 2 * key.length + 64;
    return { key, primary, vary, status, policy, originalCc, body, size, onDisk: false };
  }

  /** The stored variant of `primary` matching `headers` (memory, then a write in progress, then disk). */
  async find(primary: string, headers: Record<string, string>): Promise<Entry | undefined> {
    const list = this.variants.get(primary);
    if (!list) return undefined;
    const specs = new Set(list.map((v) => v.vary));
    for (const vary of specs) {
      const key = variantKey(primary, vary, headers);
      if (!list.some((v) => v.key === key)) continue;
      const entry = this.memory.get(key) ?? this.pending.get(key);
      if (entry) return entry;
      const record = await this.disk.get(idOf(key));
      if (!record) {
        this.goneIfNowhere(primary, key);
        return undefined;
      }
      const newer = this.memory.get(key); // admitted while the file was read
      if (newer) return newer;
      const { header } = record;
      const policy = this.opts.Policy.fromObject(header.policy as CachePolicy.CachePolicyObject);
      const loaded = this.entry(key, primary, vary, header.status, policy, header.originalCc, record.body);
      loaded.onDisk = true;
      if (loaded.size <= this.opts.memoryBytes) this.memory.set(key, loaded); // promoted
      return loaded;
    }
    return undefined;
  }

  /** Stores `entry` (replacing its key's previous version) and lists it under its URL. */
  admit(entry: Entry): void {
    const id = idOf(entry.key);
    for (const dropped of this.list(entry.primary, entry.key, entry.vary)) this.remove(entry.primary, dropped);
    // An older version on disk, or being written there, is outdated: removed (after that write, as disk
    // operations on one id run in order).
    if (this.disk.has(id) || this.pending.has(entry.key)) void this.disk.delete(id).catch(() => undefined);
    this.pending.delete(entry.key);
    if (entry.size <= this.opts.memoryBytes) this.memory.set(entry.key, entry);
    else this.spill(entry);
  }

  /** Lists a variant under its URL (most recent last); returns the keys pushed out beyond MAX_VARIANTS. */
  private list(primary: string, key: string, vary: string): string[] {
    const list = this.variants.get(primary) ?? [];
    const at = list.findIndex((v) => v.key === key);
    if (at >= 0) list.splice(at, 1);
    else this.listed++;
    list.push({ key, vary });
    this.variants.set(primary, list);
    return list.length > MAX_VARIANTS ? list.slice(0, list.length - MAX_VARIANTS).map((v) => v.key) : [];
  }

  private unlist(primary: string, key: string): void {
    const list = this.variants.get(primary);
    const at = list?.findIndex((v) => v.key === key) ?? -1;
    if (!list || at < 0) return;
    list.splice(at, 1);
    this.listed--;
    if (list.length === 0) this.variants.delete(primary);
  }

  remove(primary: string, key: string): void {
    this.unlist(primary, key);
    this.memory.delete(key);
    this.pending.delete(key);
    void this.disk.delete(idOf(key)).catch(() => undefined);
  }

  /** Writes an entry leaving memory to disk (unless the disk holds this version already). */
  private spill(entry: Entry): void {
    const id = idOf(entry.key);
    if (entry.onDisk && this.disk.has(id)) return;
    this.pending.set(entry.key, entry);
    const { key, primary, vary, status, policy, originalCc, body } = entry;
    this.disk
      .put(id, { header: { key, primary, vary, status, policy: policy.toObject(), originalCc }, body })
      .then(
        (written) => (entry.onDisk = written),
        (error) => this.opts.log.warn({ err: error, key }, "host cache: a disk write failed"),
      )
      .finally(() => {
        if (this.pending.get(key) === entry) this.pending.delete(key);
        this.goneIfNowhere(primary, key);
      });
  }

  private goneFromDisk(info: DiskInfo): void {
    const inMemory = this.memory.peek(info.key);
    if (inMemory) inMemory.onDisk = false;
    else this.goneIfNowhere(info.primary, info.key);
  }

  private goneIfNowhere(primary: string, key: string): void {
    if (this.memory.has(key) || this.pending.has(key) || this.disk.has(idOf(key))) return;
    this.unlist(primary, key);
  }
}
