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
import { type CompiledBlocklist, EMPTY_BLOCKLIST, compileBlocklist } from "./blocklist";
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
  private blocklist: CompiledBlocklist = EMPTY_BLOCKLIST;
  private applied: { version: number; seq: number } | undefined;
  private lastSites: string | undefined;
  private lastBlocklist: string | undefined;
  private policy: { verifyOneIn: number; queueWaitMs: number };
  private catalogueAt: number | undefined;

  constructor(private readonly parts: SettingsParts) {
    this.policy = { ...parts.defaults };
  }

  /** The blocklist in force (the front door reads it per request). */
  readonly currentBlocklist = (): CompiledBlocklist => this.blocklist;

  /** Validates `config` whole, then applies it; throws (nothing changed) with every problem found. */
  apply(config: AppliedConfig): void {
    const doc = config.document;
    const sitesText = JSON.stringify(doc.sites);
    const blocklistText = JSON.stringify(doc.blocklist);
    const sites = sitesText === this.lastSites ? undefined : parseSites({ sites: doc.sites });
    const blocklist = blocklistText === this.lastBlocklist ? undefined : compileBlocklist(doc.blocklist);
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
      this.blocklist = blocklist;
      this.lastBlocklist = blocklistText;
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

  applyCatalogue(catalogue: Catalogue): void {
    const unhealthy = new Set(catalogue.endpoints.filter((e) => e.role === "host" && !e.healthy).map((e) => e.device));
    for (const link of this.parts.hosts.setUnhealthy(unhealthy))
      this.parts.queue.offer(link, Math.max(0, link.capacity - link.inflight));
    this.catalogueAt = catalogue.atMs;
  }

  private rules() {
    return { ipRules: this.blocklist.ipRules, pathRules: this.blocklist.pathRules };
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
