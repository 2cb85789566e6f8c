/**
 * The sites a gateway serves (issue 16, D46): a customer (the site's `owner`, a wallet with a PaymentVault
 * balance) owns a hostname whose requests the gateway turns into jobs, fetched from the site's `origin` under its
 * cache rules. Until the configuration plane exists they come from a JSON file each gateway reads at start and
 * re-reads when it changes (docs/cdn.md "Sites file"):
 *
 *   { "sites": [ { "id": "docs", "hostname": "docs.example.test", "owner": "0x…",
 *                  "origin": "http://127.0.0.1:9000", "cache": { "defaultTtlSeconds": 60 } } ] }
 *
 * `parseSites` (parseSites.ts) is the one validator (a pushed configuration uses it too), naming every problem;
 * `SiteIndex` is an accepted set with its O(1) hostname lookup; `SiteFile` is the file-backed `SiteSource`. A
 * document is accepted whole or not at all: an invalid one keeps the last good set (at start it stops the daemon).
 * Site ids become metric labels, so they are bounded by this file, never by request input.
 */
import { createHash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";

import { messageOf } from "../../../offchain/common/errors";
import { nodeError } from "../../errors";
import { type Site, normalizeHost, parseSites } from "./parseSites";

export {
  type CacheRules,
  type Site,
  DEFAULT_MAX_OBJECT_BYTES,
  MAX_DEFAULT_TTL_SECONDS,
  MAX_OBJECT_BYTES,
  MAX_SITES,
  SITE_ID_PATTERN,
  SitesDocumentSchema,
  hostnameProblem,
  normalizeHost,
  parseSites,
} from "./parseSites";

/** Where a gateway's sites come from: this file today, a pushed configuration later. */
export interface SiteSource {
  lookup(hostHeader: string | undefined): Site | undefined;
  all(): readonly Site[];
  /** sha256 (hex) of the accepted document. */
  readonly version: string;
  /** Called with the new set after each accepted change (not for the first load). */
  onChange(listener: (sites: readonly Site[]) => void): void;
}

export interface SitesLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const MAX_SITES_FILE_BYTES = 16 * 1024 * 1024;

/** An accepted set of sites (as parseSites returns them) with O(1) lookups; any SiteSource can hold one. */
export class SiteIndex {
  private readonly byHost = new Map<string, Site>();
  private readonly byId = new Map<string, Site>();
  readonly sites: readonly Site[];

  constructor(
    sites: readonly Site[],
    readonly version: string,
  ) {
    this.sites = Object.freeze([...sites]);
    for (const site of sites) {
      this.byHost.set(site.hostname, site);
      this.byId.set(site.id, site);
    }
  }

  /** The site a Host header names; the exact stored form (the usual case) skips normalising. */
  lookup(hostHeader: string | undefined): Site | undefined {
    if (hostHeader === undefined) return undefined;
    return this.byHost.get(hostHeader) ?? this.byHost.get(normalizeHost(hostHeader) ?? "");
  }

  get(id: string): Site | undefined {
    return this.byId.get(id);
  }

  /** A document's bytes, validated: throws EDGE_NODE_SITES_INVALID. */
  static fromDocument(bytes: Buffer): SiteIndex {
    const version = createHash("sha256").update(bytes).digest("hex");
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString("utf8").replace(/^\uFEFF/, ""));
    } catch (error) {
      throw nodeError("EDGE_NODE_SITES_INVALID", `not JSON: ${messageOf(error)}`);
    }
    return new SiteIndex(parseSites(json), version);
  }
}

interface FileStamp {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** The file's bytes, refused past MAX_SITES_FILE_BYTES before any is parsed (also if it grows while read). */
function readCapped(path: string): { bytes: Buffer; stamp: FileStamp } {
  const fd = openSync(path, "r");
  try {
    const st = fstatSync(fd);
    const stamp = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
    if (!st.isFile()) throw new Error("not a regular file");
    if (st.size > MAX_SITES_FILE_BYTES)
      throw new Error(`${st.size} bytes, over the ${MAX_SITES_FILE_BYTES}-byte limit`);
    // One byte more than the file's size: filling it means the file grew while read (the next poll re-reads it).
    const buffer = Buffer.allocUnsafe(st.size + 1);
    let total = 0;
    for (let n = -1; n !== 0 && total < buffer.length; total += n) {
      n = readSync(fd, buffer, total, buffer.length - total, null);
    }
    if (total > st.size) throw new Error("changed while being read");
    return { bytes: buffer.subarray(0, total), stamp };
  } finally {
    closeSync(fd);
  }
}

const sameStamp = (a: FileStamp | undefined, b: FileStamp) =>
  a !== undefined && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

/**
 * Sites from a file: loaded synchronously by the constructor (which throws EDGE_NODE_SITES_INVALID for a missing
 * or invalid file: the daemon refuses to start with its message), re-read by `reload()` and, after `start()`,
 * whenever the file's inode, size or times change (checked every `pollMs`, default 2000, on an unref'd timer).
 */
export class SiteFile implements SiteSource {
  private index: SiteIndex;
  private readonly listeners: ((sites: readonly Site[]) => void)[] = [];
  private readonly pollMs: number;
  private readonly logged = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stamp: FileStamp | undefined;
  private error: string | null = null;

  constructor(
    private readonly path: string,
    private readonly log: SitesLogger,
    opts: { pollMs?: number } = {},
  ) {
    this.pollMs = opts.pollMs ?? 2000;
    this.index = this.read();
    log.info({ path, version: this.index.version, sites: this.index.sites.length }, "sites loaded");
  }

  get version(): string {
    return this.index.version;
  }

  /** The last refused document's problem (null once a valid one is read again). */
  get lastError(): string | null {
    return this.error;
  }

  lookup(hostHeader: string | undefined): Site | undefined {
    return this.index.lookup(hostHeader);
  }

  all(): readonly Site[] {
    return this.index.sites;
  }

  get(id: string): Site | undefined {
    return this.index.get(id);
  }

  onChange(listener: (sites: readonly Site[]) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.poll(), this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads the file now: true if it held a new valid document, which replaced the set (listeners called). */
  reload(): boolean {
    let next: SiteIndex;
    try {
      next = this.read();
    } catch (error) {
      this.refused(messageOf(error));
      return false;
    }
    this.error = null;
    this.logged.clear();
    if (next.version === this.index.version) return false;
    this.index = next;
    this.log.info({ path: this.path, version: next.version, sites: next.sites.length }, "sites reloaded");
    for (const listener of this.listeners) {
      try {
        listener(next.sites);
      } catch (error) {
        this.log.error({ err: error }, "a sites listener failed");
      }
    }
    return true;
  }

  private poll(): void {
    let stamp: FileStamp;
    try {
      const { ino, size, mtimeMs, ctimeMs } = statSync(this.path);
      stamp = { ino, size, mtimeMs, ctimeMs };
    } catch (error) {
      this.stamp = undefined;
      this.refused(`sites file ${this.path}: cannot be read: ${messageOf(error)}`);
      return;
    }
    if (!sameStamp(this.stamp, stamp)) this.reload();
  }

  private read(): SiteIndex {
    let bytes: Buffer;
    try {
      ({ bytes, stamp: this.stamp } = readCapped(this.path));
    } catch (error) {
      this.stamp = undefined;
      throw nodeError("EDGE_NODE_SITES_INVALID", `sites file ${this.path}: cannot be read: ${messageOf(error)}`, {
        cause: error,
      });
    }
    try {
      return SiteIndex.fromDocument(bytes);
    } catch (error) {
      throw nodeError("EDGE_NODE_SITES_INVALID", `sites file ${this.path}: ${messageOf(error)}`, { cause: error });
    }
  }

  /** Keeps the last good set; each distinct problem is logged once (until a valid document is read). */
  private refused(problem: string): void {
    this.error = problem;
    if (this.logged.has(problem)) return;
    if (this.logged.size >= 100) this.logged.clear();
    this.logged.add(problem);
    this.log.error({ path: this.path, problem }, "sites file refused: keeping the last good set");
  }
}
