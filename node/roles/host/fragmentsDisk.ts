/**
 * The disk copy of a host's Edge Storage fragments (fragments.ts): one file per fragment under `dir`, named
 * `<objectId hex, no 0x>.<index>.frag`, holding a fixed 78-byte header and the fragment's bytes:
 *
 *   "EDGEFRG1" (8) | objectId (32) | index (uint16 BE) | sha256 of the bytes (32) | length (uint32 BE) | bytes
 *
 * Why a file per fragment and not an append log: fragments are put and deleted one by one, at most 1 MiB each and
 * a few thousand per host. A file each makes a put one atomic rename and a delete one unlink, with no compaction
 * (a log must rewrite itself as deletions pile up, holding a second copy of everything while it does), and a
 * damaged sector costs the one fragment it lies in, never the records behind it. The store's fragment cap bounds
 * the number of files.
 *
 * Crash safety: a fragment is written to `<name>.<pid>-<n>.tmp` (created exclusively), fsynced, renamed over its
 * name and the directory fsynced, so after a crash the name holds the whole fragment or nothing; a delete unlinks
 * and fsyncs the directory, so a deleted fragment does not come back. On open, `.tmp` files (writes a crash cut
 * short, never acknowledged) are deleted; a named file whose header, length or sha256 does not check (a disk
 * fault, a truncated copy) is deleted and reported as corrupt. Nothing is read from a file without checking it
 * whole against the sha256 in its header, which is the one the gateway declared and the store verified on write.
 */
import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";

export interface FragmentRecord {
  /** 0x and 64 lowercase hex digits. */
  objectId: string;
  index: number;
  /** sha256 of `data`: 0x and 64 lowercase hex digits. */
  sha256: string;
  data: Buffer;
}

export interface ScanResult {
  records: FragmentRecord[];
  /** Keys (`objectId/index`) of files that did not check; deleted. */
  corrupt: string[];
  /** `.tmp` files of writes a crash cut short; deleted. */
  partial: number;
}

const MAGIC = Buffer.from("EDGEFRG1", "latin1");
export const FRAGMENT_HEADER_BYTES = MAGIC.length + 32 + 2 + 32 + 4;
const FILE = /^([0-9a-f]{64})\.(0|[1-9][0-9]{0,4})\.frag$/;

export const sha256Hex = (data: Uint8Array): string => `0x${createHash("sha256").update(data).digest("hex")}`;
export const fragmentKey = (objectId: string, index: number): string => `${objectId}/${index}`;

export function encodeFragment({ objectId, index, sha256, data }: FragmentRecord): Buffer {
  const header = Buffer.alloc(FRAGMENT_HEADER_BYTES);
  let at = MAGIC.copy(header, 0);
  at += Buffer.from(objectId.slice(2), "hex").copy(header, at);
  at = header.writeUInt16BE(index, at);
  at += Buffer.from(sha256.slice(2), "hex").copy(header, at);
  header.writeUInt32BE(data.length, at);
  return Buffer.concat([header, data]);
}

/** The record in `file` if it is whole and checks (magic, the key its name gives, length, sha256); else undefined. */
export function decodeFragment(file: Buffer, objectId: string, index: number): FragmentRecord | undefined {
  if (file.length < FRAGMENT_HEADER_BYTES || !file.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  let at = MAGIC.length;
  const id = `0x${file.subarray(at, at + 32).toString("hex")}`;
  at += 32;
  const storedIndex = file.readUInt16BE(at);
  at += 2;
  const sha256 = `0x${file.subarray(at, at + 32).toString("hex")}`;
  at += 32;
  const length = file.readUInt32BE(at);
  const data = file.subarray(FRAGMENT_HEADER_BYTES);
  if (id !== objectId || storedIndex !== index || data.length !== length || sha256Hex(data) !== sha256)
    return undefined;
  return { objectId, index, sha256, data };
}

export class FragmentDisk {
  private tmpSeq = 0;

  constructor(
    private readonly dir: string,
    /** false only in tests that do not simulate power loss: skips fsync of files and the directory. */
    private readonly fsync = true,
  ) {}

  /** Writes the record atomically (replacing any file under its name); resolves once it is durable. */
  async write(record: FragmentRecord): Promise<void> {
    const path = this.path(record.objectId, record.index);
    const tmp = `${path}.${process.pid}-${++this.tmpSeq}.tmp`;
    try {
      const handle = await open(tmp, "wx", 0o600);
      try {
        await handle.writeFile(encodeFragment(record));
        if (this.fsync) await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, path);
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw error;
    }
    await this.syncDir();
  }

  /** Removes the fragment's file (absent: nothing to do); resolves once the removal is durable. */
  async remove(objectId: string, index: number): Promise<void> {
    try {
      await unlink(this.path(objectId, index));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    await this.syncDir();
  }

  /** The fragment's file if present and whole; "corrupt" when present but it does not check. */
  async read(objectId: string, index: number): Promise<FragmentRecord | "absent" | "corrupt"> {
    let file: Buffer;
    try {
      file = await readFile(this.path(objectId, index));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return "absent";
      return "corrupt";
    }
    return decodeFragment(file, objectId, index) ?? "corrupt";
  }

  /**
   * Creates the directory if missing, deletes `.tmp` files and the files that do not check, and returns every
   * fragment that does. Files of other names are left alone (not ours). Reads one file at a time.
   */
  async scan(): Promise<ScanResult> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const result: ScanResult = { records: [], corrupt: [], partial: 0 };
    for (const name of await readdir(this.dir)) {
      if (name.endsWith(".tmp")) {
        await unlink(join(this.dir, name)).catch(() => undefined);
        result.partial++;
        continue;
      }
      const match = FILE.exec(name);
      if (!match) continue;
      const objectId = `0x${match[1]}`;
      const index = Number(match[2]);
      const record = await this.read(objectId, index);
      if (record === "absent") continue;
      if (record === "corrupt") {
        await unlink(join(this.dir, name)).catch(() => undefined);
        result.corrupt.push(fragmentKey(objectId, index));
      } else result.records.push(record);
    }
    if (result.partial > 0 || result.corrupt.length > 0) await this.syncDir();
    return result;
  }

  path(objectId: string, index: number): string {
    return join(this.dir, `${objectId.slice(2)}.${index}.frag`);
  }

  private async syncDir(): Promise<void> {
    if (!this.fsync) return;
    const handle = await open(this.dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
