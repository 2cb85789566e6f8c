/**
 * The hosts a gateway routes to: a host connects its link (links.ts, D44) with a registration signed by its
 * device key for this gateway, and is routable while its link is open and the gateway's own chain view admits it
 * as a host. A host the chain no longer admits is dropped at once (its link closed), whatever it says; while the
 * view is stale, hosts already linked keep working but no new host is accepted.
 *
 * Replays: each host's newest accepted registration timestamp is kept apart from the routing entry, until that
 * timestamp leaves the signature window (an older registration is refused as stale by then), so a host that
 * left, was pruned or was forgotten at eviction cannot be brought back by replaying an older registration (a
 * link's registration travels in a header anyone on the path may have seen). Only
 * hosts the chain admits (or that had an entry) are remembered, at most HOST_REPLAY_CAPACITY of them.
 *
 * Cheats: a host caught returning a wrong compute result (dispatch.ts, `ban`) is banned until the gateway
 * restarts: dropped from routing (its link closed) and refused at connection (403). Wrong content (cdn.ts,
 * `strike`) is weaker evidence (a site's owner controls its origin and can make the checker's fetch differ from
 * what hosts got): a host is banned only once mismatches on STRIKE_URLS distinct URLs fall within
 * STRIKE_WINDOW_MS, and that ban ends after CONTENT_BAN_MS (D49).
 */
import { getAddress } from "viem";

import {
  type HostRegistrationBody,
  type Region,
  checkHostRegistration,
  readRegionFields,
  regionKey,
} from "../../../offchain/common/protocol";
import { StakeType } from "../../../offchain/common/stakeMap";
import type { GatewayContext } from "../../context";
import { nodeError } from "../../errors";
import { SIGNATURE_WINDOW_SECONDS } from "./customers";
import type { HostLink, LinkEvents } from "./links";
import type { JobQueue } from "./queue";

export interface HostEntry {
  /** The URL the host named in its registration (its own API: status, metrics), for operators. */
  url: string;
  /** Where the host says it runs, from its signed registration (D68); absent: undeclared. */
  region?: Region;
  link: HostLink | null;
  since: number;
}

/** Why a host was banned: the job it answered wrongly, and when. */
export interface BanRecord {
  at: number;
  jobId: string;
  reason: string;
  /** When the ban ends (ms since the epoch); none: until the gateway restarts. */
  until?: number;
}

/** One content mismatch a host was caught at (cdn.ts): the job, the URL, why. */
export interface StrikeRecord {
  at: number;
  jobId: string;
  reason: string;
  url: string;
}

/** Mismatches count together within this long (ms); older ones are forgotten. */
export const STRIKE_WINDOW_MS = 60 * 60 * 1000;
/** Mismatches on this many distinct URLs within the window ban a host. */
export const STRIKE_URLS = 2;
/** Strikes kept per host at most (the newest; one per URL). */
export const STRIKES_KEPT = 4;
/** How long a ban for wrong content lasts (ms); the host may link again after it. */
export const CONTENT_BAN_MS = 60 * 60 * 1000;

/** Hosts whose newest registration is remembered at most; past it (only staked devices get in): 503. */
export const HOST_REPLAY_CAPACITY = 100_000;

export type HostsContext = Pick<GatewayContext, "signer" | "log" | "chainAdmits" | "stale" | "serving">;

export class HostRegistry {
  private readonly hosts = new Map<string, HostEntry>();
  /** host -> its newest accepted registration's timestamp (ms): an older or equal one is a replay. */
  private readonly newest = new Map<string, bigint>();
  private lastSweep = 0;
  private readonly banned = new Map<string, BanRecord>();
  /** Admitted hosts' recent content mismatches, oldest first, one per URL, at most STRIKES_KEPT each. */
  private readonly strikes = new Map<string, StrikeRecord[]>();
  private lastStrikeSweep = 0;
  private rejected = 0;
  /** Hosts the stargates' catalogue calls unhealthy (D54): linked, but given no job. */
  private unhealthy = new Set<string>();

  constructor(
    private readonly ctx: HostsContext,
    private readonly replayCapacity = HOST_REPLAY_CAPACITY,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /**
   * Checks a host's registration (a link's handshake); resolves with the host's address, which `attach` then
   * links, or throws the EdgeError saying why not. A `leaving` registration removes the host.
   */
  async register(body: HostRegistrationBody): Promise<string> {
    const self = this.ctx.signer.account.address;
    const timestamp = BigInt(body.timestamp); // milliseconds
    const now = BigInt(this.nowMs());
    const window = SIGNATURE_WINDOW_SECONDS * 1000n;
    if (getAddress(body.gateway) !== self) {
      throw nodeError("EDGE_NODE_WRONG_GATEWAY", `this registration is for gateway ${body.gateway}`);
    }
    if (timestamp > now + window || timestamp < now - window) {
      throw nodeError("EDGE_NODE_SIGNATURE_EXPIRED", "the registration's timestamp is too far from now");
    }
    const declared = readRegionFields(body); // an unassigned country ("EU", "ZZ") costs no recovery either (D68)
    if ("problem" in declared)
      throw nodeError("EDGE_NODE_BAD_REGION", `the registration's region: ${declared.problem}`);
    const host = getAddress(body.host);
    // Cheap before costly: a device the chain does not admit costs no signature recovery (a flood of made-up keys).
    if (!body.leaving && !this.admitted(host)) {
      this.rejected += 1;
      throw nodeError("EDGE_NODE_HOST_NOT_ADMITTED", "the chain does not admit this device as a host");
    }
    const check = await checkHostRegistration(this.ctx.signer.chainId, body);
    if (!check.ok) {
      if (check.reason === "non-canonical") throw nodeError("EDGE_NODE_NONCANONICAL_SIGNATURE", check.message);
      throw nodeError("EDGE_NODE_BAD_SIGNATURE", "the registration is not signed by the host's device key");
    }
    // No await from here on: the replay check and the record below see the same state.
    const newest = this.newest.get(host);
    if (newest !== undefined && timestamp <= newest) {
      throw nodeError("EDGE_NODE_REPLAYED", "a newer registration of this host was already seen");
    }
    const entry = this.hosts.get(host);
    if (body.leaving) {
      // Remembered if it could ever be routed (so an older registration cannot bring it back); otherwise a no-op.
      if (entry || this.admitted(host)) this.remember(host, timestamp);
      this.hosts.delete(host);
      entry?.link?.close();
      this.ctx.log.info({ host }, "host left");
      return host;
    }
    const ban = this.banOf(host);
    if (ban) {
      const until = ban.until === undefined ? "" : ` until ${new Date(ban.until).toISOString()}`;
      throw nodeError("EDGE_NODE_HOST_BANNED", `this host is banned${until}: ${ban.reason} (job ${ban.jobId})`);
    }
    if (!this.admitted(host)) {
      this.rejected += 1;
      throw nodeError("EDGE_NODE_HOST_NOT_ADMITTED", "the chain does not admit this device as a host");
    }
    if (!entry && this.ctx.stale()) {
      throw nodeError("EDGE_NODE_VIEW_STALE", "the gateway's chain view is stale: no new hosts until it is fresh");
    }
    if (!entry && !this.ctx.serving()) throw nodeError("EDGE_NODE_NOT_SERVING", "this gateway is not serving");
    this.remember(host, timestamp);
    const since = entry?.since ?? this.nowMs();
    this.hosts.set(host, { url: body.url, link: entry?.link ?? null, since, ...declared });
    return host;
  }

  /** Routes to `host` through `link` from now on; a previous link of the host is closed. */
  attach(host: string, link: HostLink): void {
    const entry = this.hosts.get(host);
    if (!entry) return link.close(); // left, evicted or banned while the link was set up
    if (entry.link && entry.link !== link) entry.link.close();
    if (entry.link !== link) this.ctx.log.info({ host, url: entry.url, capacity: link.capacity }, "host linked");
    entry.link = link;
    link.region = entry.region;
  }

  /** The link closed: the host is not routable until it connects again. */
  detach(link: HostLink): void {
    const entry = this.hosts.get(link.host);
    if (entry?.link !== link) return;
    this.hosts.delete(link.host);
    this.ctx.log.info({ host: link.host }, "host link closed");
  }

  /**
   * Whether `link` may take jobs now: it is its host's current link, open, admitted, not banned, and not called
   * unhealthy by the stargates' catalogue.
   */
  usable(link: HostLink): boolean {
    return (
      !link.closed &&
      this.hosts.get(link.host)?.link === link &&
      !this.unhealthy.has(link.host) &&
      !this.banOf(link.host) &&
      this.admitted(link.host)
    );
  }

  /**
   * The hosts the stargates' catalogue calls unhealthy now (D54): they get no new job until a catalogue calls them
   * healthy or leaves them out (a host the catalogue does not list stays usable: it may be newer than the
   * catalogue). Returns the links of hosts usable again, whose free slots the caller offers to the queue.
   */
  setUnhealthy(hosts: ReadonlySet<string>): HostLink[] {
    const before = this.unhealthy;
    this.unhealthy = new Set([...hosts].map((host) => getAddress(host)));
    const back: HostLink[] = [];
    for (const host of before) {
      const link = this.hosts.get(host)?.link;
      if (!this.unhealthy.has(host) && link && this.usable(link)) back.push(link);
    }
    return back;
  }

  /** Linked hosts the catalogue calls unhealthy now. */
  get unhealthyLinked(): number {
    let n = 0;
    for (const host of this.unhealthy) if (this.hosts.get(host)?.link) n += 1;
    return n;
  }

  /** Whether `host`'s work counts now (usage, scores): the chain admits it and it is not banned. */
  countable(host: string): boolean {
    return this.admitted(host) && !this.banOf(host);
  }

  /** `host`'s ban in force, if any; an expired one is forgotten here. */
  private banOf(host: string): BanRecord | undefined {
    const ban = this.banned.get(host);
    if (ban?.until !== undefined && ban.until <= this.nowMs()) {
      this.banned.delete(host);
      return undefined;
    }
    return ban;
  }

  /**
   * Records `host`'s newest registration timestamp; forgets the hosts whose newest one has left the window (a
   * scan once a minute, or once a second while full). Full of unexpired hosts: 503, and nothing is recorded.
   */
  private remember(host: string, timestamp: bigint): void {
    const now = this.nowMs();
    const full = !this.newest.has(host) && this.newest.size >= this.replayCapacity;
    if (now - this.lastSweep >= (full ? 1_000 : 60_000)) {
      this.lastSweep = now;
      const oldest = BigInt(now) - SIGNATURE_WINDOW_SECONDS * 1000n;
      for (const [known, newest] of this.newest) if (newest < oldest) this.newest.delete(known);
    }
    if (!this.newest.has(host) && this.newest.size >= this.replayCapacity) {
      throw nodeError("EDGE_NODE_REPLAY_MEMORY_FULL", "too many hosts registered within the window: retry later");
    }
    this.newest.set(host, timestamp);
  }

  /** Hosts whose newest registration is remembered now. */
  get replayEntries(): number {
    return this.newest.size;
  }

  /**
   * Stops routing to `host` for good (it returned a wrong compute result); it is refused at registration from now
   * on. A ban for wrong content in force becomes permanent.
   */
  ban(host: string, record: BanRecord): void {
    const current = this.banOf(host);
    if (current && current.until === undefined) return;
    this.exclude(host, { at: record.at, jobId: record.jobId, reason: record.reason });
    this.ctx.log.warn({ host, ...record }, "host banned: it returned a wrong result");
  }

  /**
   * Records a content mismatch of `host` (cdn.ts); true when this strike banned it. Mismatches on STRIKE_URLS
   * distinct URLs within STRIKE_WINDOW_MS (by their `at`) ban the host for CONTENT_BAN_MS. Only hosts the chain
   * admits and not banned already are recorded; a host keeps at most STRIKES_KEPT strikes (one per URL, the newest).
   */
  strike(host: string, record: StrikeRecord): boolean {
    const now = this.nowMs();
    const since = now - STRIKE_WINDOW_MS;
    if (now - this.lastStrikeSweep >= 60_000) {
      this.lastStrikeSweep = now;
      for (const [known, list] of this.strikes) {
        const kept = list.filter((s) => s.at > since);
        if (kept.length === 0) this.strikes.delete(known);
        else this.strikes.set(known, kept);
      }
    }
    if (!this.admitted(host) || this.banOf(host) || !(record.at > since)) return false;
    const list = (this.strikes.get(host) ?? []).filter((s) => s.at > since && s.url !== record.url);
    list.push(record);
    this.ctx.log.warn({ host, ...record }, "host served content that differs from the origin's");
    if (list.length < STRIKE_URLS) {
      this.strikes.set(host, list.slice(-STRIKES_KEPT));
      return false;
    }
    this.strikes.delete(host);
    const reason = `wrong content on ${list.length} URLs within ${STRIKE_WINDOW_MS / 60_000} min, last ${record.url}: ${record.reason}`;
    this.exclude(host, { at: record.at, jobId: record.jobId, reason, until: now + CONTENT_BAN_MS });
    this.ctx.log.warn({ host, reason, until: now + CONTENT_BAN_MS }, "host banned for a while: wrong content");
    return true;
  }

  /** Bans `host` with `record`: its link closes, it leaves routing. */
  private exclude(host: string, record: BanRecord): void {
    this.banned.set(host, record);
    this.hosts.get(host)?.link?.close();
    this.hosts.delete(host);
  }

  /** The hosts banned now, with why and until when (`until` null: until the gateway restarts). */
  bannedHosts(): Array<{ host: string } & Omit<BanRecord, "until"> & { until: number | null }> {
    return [...this.banned.keys()].flatMap((host) => {
      const ban = this.banOf(host);
      return ban ? [{ host, ...ban, until: ban.until ?? null }] : [];
    });
  }

  /** Whether the gateway's chain view admits `host` as a host now. */
  admitted(host: string): boolean {
    return this.ctx.chainAdmits(host, StakeType.Host);
  }

  /** Whether any host (other than `except`, and `eligible` when given) can take jobs now (stops at the first). */
  anyRoutable(except?: string, eligible?: (link: HostLink) => boolean): boolean {
    for (const [host, entry] of this.hosts)
      if (host !== except && entry.link && this.usable(entry.link) && (!eligible || eligible(entry.link))) return true;
    return false;
  }

  /** Linked admitted hosts, which jobs can go to. */
  routable(): Array<[string, HostEntry & { link: HostLink }]> {
    return [...this.hosts].filter(
      (pair): pair is [string, HostEntry & { link: HostLink }] => pair[1].link !== null && this.usable(pair[1].link),
    );
  }

  /** Drops every host the chain no longer admits: they get no further job, whatever they say. */
  prune(): void {
    for (const host of [...this.hosts.keys()]) {
      if (!this.admitted(host)) {
        this.hosts.get(host)?.link?.close();
        this.hosts.delete(host);
        this.ctx.log.info({ host }, "host no longer admitted: removed from routing");
      }
    }
  }

  /** An evicted gateway routes nothing. */
  clear(): void {
    for (const entry of this.hosts.values()) entry.link?.close();
    this.hosts.clear();
  }

  get registered(): number {
    return this.hosts.size;
  }

  /** Registered hosts by the region they signed (D68): `DE/eu-central` -> count; "undeclared" for none. */
  regions(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const { region } of this.hosts.values()) {
      const key = region ? regionKey(region) : "undeclared";
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  /** Registrations refused because the chain does not admit the host. */
  get rejectedCount(): number {
    return this.rejected;
  }
}

/**
 * The link events that route through `hosts` and feed `queue`: a host is attached on its first SETTINGS, and
 * each rise of its capacity offers the queue that many new slots; a closed link leaves the queue's placement.
 */
export function routeLinks(
  hosts: Pick<HostRegistry, "register" | "attach" | "detach">,
  queue: Pick<JobQueue<HostLink>, "offer" | "leave">,
): LinkEvents {
  const capacities = new WeakMap<HostLink, number>();
  return {
    admit: (body) => hosts.register(body),
    connected(link) {
      hosts.attach(link.host, link);
      const before = capacities.get(link) ?? 0;
      capacities.set(link, link.capacity);
      if (link.capacity > before) queue.offer(link, link.capacity - before);
    },
    disconnected(link) {
      hosts.detach(link);
      queue.leave(link);
    },
  };
}
