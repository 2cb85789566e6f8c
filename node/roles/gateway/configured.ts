/**
 * What the network's configuration (issue 17, D54) sets at a gateway, applied by `RoleModule.applyConfig` and
 * `applyCatalogue` (the daemon's configuration subscriber calls them with what it verified):
 *
 * - **sites**: the document's `sites`, validated by `parseSites` (the sites file's one validator). With
 *   `--stargates` the configuration is the source of sites: `--sites`, if given too, is the set served until the
 *   first configuration is applied (and no longer watched from then on); without `--stargates` the file is the
 *   source, as before.
 * - **blocklist**: compiled once per change (blocklist.ts) and swapped whole; a request sees the old list or the new.
 * - **dispatch policy**: `verifyOneIn` (content checks) and `queueWaitMs` (the queue's wait bound), live; a field the
 *   document leaves out falls back to the daemon's flag.
 *
 * A configuration is validated whole before anything changes: an invalid sites or blocklist section throws with
 * every problem named (the subscriber answers NACK with it), and the last good sites, blocklist and policy stay in
 * force. Sections equal to the last applied ones are not validated again (a blocklist delta does not re-parse
 * 10,000 sites).
 *
 * **Catalogue**: hosts the stargates' catalogue calls unhealthy get no new job (hosts.ts `setUnhealthy`); a host it
 * does not list stays usable (the catalogue may lag a host that just linked); one called healthy again takes
 * jobs at once (its free slots are offered to the queue).
 */
import type { AppliedConfig, Catalogue } from "../../context";
import type { Blocklist } from "../../../offchain/common/protocol/netConfig";
import { CompiledBlocklist, EMPTY_BLOCKLIST, compileBlocklist, parseBlocklist } from "./blocklist";
import type { ContentChecker } from "./contentCheck";
import type { HostRegistry } from "./hosts";
import type { HostLink } from "./links";
import type { JobQueue } from "./queue";
import { type Site, SiteIndex, type SiteSource, type SitesLogger, parseSites } from "./sites";

/**
 * The front door's sites: the sites file's until a configuration is applied, the configuration's from then on.
 * Either source alone is fine; with neither, no site is known.
 */
export class SiteSelector implements SiteSource {
  private configured: SiteIndex | undefined;
  private readonly listeners: ((sites: readonly Site[]) => void)[] = [];

  constructor(
    private readonly file: (SiteSource & { start(): void; stop(): void; lastError: string | null }) | undefined,
  ) {
    file?.onChange((sites) => {
      if (!this.configured) for (const listener of this.listeners) listener(sites);
    });
  }

  lookup(hostHeader: string | undefined): Site | undefined {
    return (this.configured ?? this.file)?.lookup(hostHeader);
  }

  all(): readonly Site[] {
    return this.configured?.sites ?? this.file?.all() ?? [];
  }

  get version(): string {
    return this.configured?.version ?? this.file?.version ?? "none";
  }

  get source(): "configuration" | "file" | "none" {
    return this.configured ? "configuration" : this.file ? "file" : "none";
  }

  get lastError(): string | null {
    return this.configured ? null : (this.file?.lastError ?? null);
  }

  onChange(listener: (sites: readonly Site[]) => void): void {
    this.listeners.push(listener);
  }

  /** From now on the configuration's sites are served; the file is no longer watched. */
  replace(index: SiteIndex): void {
    this.file?.stop();
    this.configured = index;
    for (const listener of this.listeners) listener(index.sites);
  }

  start(): void {
    if (!this.configured) this.file?.start();
  }

  stop(): void {
    this.file?.stop();
  }
}

export interface SettingsParts {
  sites: SiteSelector;
  checker: Pick<ContentChecker, "setOneIn">;
  queue: Pick<JobQueue<HostLink>, "setMaxWait" | "offer">;
  hosts: Pick<HostRegistry, "setUnhealthy">;
  /** The daemon's flags: the policy where the document says nothing. */
  defaults: { verifyOneIn: number; queueWaitMs: number };
  log: SitesLogger;
}

export class GatewaySettings {
  /** The blocklist in force (none: empty). */
  private blocklist: CompiledBlocklist | undefined;
  private applied: { version: number; seq: number } | undefined;
  private lastSites: string | undefined;
  /** The last applied blocklist section (copies of its arrays). */
  private lastBlocklist: Blocklist | undefined;
  private policy: { verifyOneIn: number; queueWaitMs: number };
  private catalogueAt: number | undefined;

  constructor(private readonly parts: SettingsParts) {
    this.policy = { ...parts.defaults };
  }

  /** The blocklist in force (the front door reads it per request). */
  readonly currentBlocklist = (): Pick<CompiledBlocklist, "address" | "path"> => this.blocklist ?? EMPTY_BLOCKLIST;

  /** Validates `config` whole, then applies it; throws (nothing changed) with every problem found. */
  apply(config: AppliedConfig): void {
    const doc = config.document;
    const sitesText = JSON.stringify(doc.sites);
    const sites = sitesText === this.lastSites ? undefined : parseSites({ sites: doc.sites });
    const blocklist = this.blocklistChange(doc.blocklist);
    const policy = {
      verifyOneIn: doc.dispatch.verifyOneIn ?? this.parts.defaults.verifyOneIn,
      queueWaitMs: doc.dispatch.queueWaitMs ?? this.parts.defaults.queueWaitMs,
    };
    // Nothing below throws: the parts' setters take what the schema allows.
    if (sites) {
      this.parts.sites.replace(new SiteIndex(sites, `config ${config.version}.${config.seq}`));
      this.lastSites = sitesText;
    }
    if (blocklist) {
      blocklist();
      this.lastBlocklist = { ipRanges: doc.blocklist.ipRanges.slice(), paths: doc.blocklist.paths.slice() };
    }
    this.parts.checker.setOneIn(policy.verifyOneIn);
    this.parts.queue.setMaxWait(policy.queueWaitMs);
    this.policy = policy;
    this.applied = { version: config.version, seq: config.seq };
    this.parts.log.info(
      { version: config.version, seq: config.seq, sites: doc.sites.length, ...this.rules(), ...policy },
      "configuration applied",
    );
  }

  /**
   * What applying `next` takes, validated (throws): nothing when it equals the last one; extending the list in force
   * when `next` only appends entries to it (what `blocklist.add` deltas do: a 100,000-entry list is not recompiled
   * for one more); otherwise a new compiled list, swapped in whole.
   */
  private blocklistChange(next: Blocklist): (() => void) | undefined {
    const last = this.lastBlocklist;
    const appends =
      last !== undefined &&
      next.ipRanges.length >= last.ipRanges.length &&
      next.paths.length >= last.paths.length &&
      last.ipRanges.every((rule, i) => next.ipRanges[i] === rule) &&
      last.paths.every((rule, i) => next.paths[i].hostname === rule.hostname && next.paths[i].prefix === rule.prefix);
    if (!appends) {
      const compiled = compileBlocklist(next);
      return () => (this.blocklist = compiled);
    }
    if (next.ipRanges.length === last.ipRanges.length && next.paths.length === last.paths.length) return undefined;
    const added = parseBlocklist(next, { ipRanges: last.ipRanges.length, paths: last.paths.length });
    return () => {
      this.blocklist ??= new CompiledBlocklist();
      this.blocklist.extend(added);
    };
  }

  applyCatalogue(catalogue: Catalogue): void {
    const unhealthy = new Set(catalogue.endpoints.filter((e) => e.role === "host" && !e.healthy).map((e) => e.device));
    for (const link of this.parts.hosts.setUnhealthy(unhealthy))
      this.parts.queue.offer(link, Math.max(0, link.capacity - link.inflight));
    this.catalogueAt = catalogue.atMs;
  }

  private rules() {
    return { ipRules: this.blocklist?.ipRules ?? 0, pathRules: this.blocklist?.pathRules ?? 0 };
  }

  status(): Record<string, unknown> {
    return {
      configuration: this.applied ?? null,
      blocklist: this.rules(),
      dispatch: this.policy,
      catalogueAt: this.catalogueAt ?? null,
    };
  }
}
