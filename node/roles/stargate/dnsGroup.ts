/**
 * Edge DNS serving group (D57): a stargate announces its DNS address to the route announcer (--dns-announce: the
 * loopback anycast router here, a BGP speaker's adapter in production) and withdraws it to leave the group.
 *
 *   POST <url>/announce {"action", "member", "address", "port", "at", "signature"} -> 200 {"members": [...]}
 *   POST <url>/withdraw {"action", "member", "at", "signature"} -> 200 {"members": [...]}
 *
 * Each call is signed with the device key (R18-9): an EIP-191 personal signature over the canonical JSON of
 * {action, member, address, port, at} (`announcementMessage`), `at` the time in ms, strictly increasing.
 *
 * Once started (listening, a configuration held) it announces itself, retrying every second until the announcer
 * answers. `leave()` withdraws (and says so if the announcer cannot be reached: the stargate would keep getting
 * traffic); `join()` announces again. Without --dns-announce the group is this server alone: leave and join only
 * change the status.
 */
import canonicalize from "canonicalize";
import type { FastifyBaseLogger } from "fastify";
import type { Hex } from "viem";

/** What an announcement or withdrawal signs (R18-9). */
export interface Announcement {
  action: "announce" | "withdraw";
  member: string;
  address?: string;
  port?: number;
  /** Milliseconds since the epoch: the announcer refuses one older than 30 s or not newer than the member's last. */
  at: number;
}

/** The message signed with the device key (EIP-191 personal_sign): the announcement's canonical JSON (RFC 8785). */
export const announcementMessage = (a: Announcement): string =>
  canonicalize({ action: a.action, member: a.member, address: a.address, port: a.port, at: a.at })!;

export interface GroupOptions {
  announce: string | undefined;
  member: string;
  where: () => { host: string; port: number } | undefined;
  /** Whether the server can answer (a configuration is held). */
  ready: () => boolean;
  log: Pick<FastifyBaseLogger, "info" | "warn">;
  retryMs?: number;
  timeoutMs?: number;
  /** Signs a message with the device key (EIP-191). */
  sign: (message: string) => Promise<Hex>;
}

export class DnsGroup {
  /** Whether the stargate means to be in the group. */
  private wanted = true;
  private announced = false;
  private timer: NodeJS.Timeout | undefined;
  private trying: Promise<void> | undefined;
  private lastAt = 0;

  constructor(private readonly options: GroupOptions) {}

  inGroup(): boolean {
    return this.wanted && (this.announced || this.options.announce === undefined);
  }

  start(): void {
    this.timer = setInterval(() => void this.tryAnnounce(), this.options.retryMs ?? 1_000);
    this.timer.unref();
    void this.tryAnnounce();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.trying;
    // Best effort: a stopping stargate takes itself out of the group so no new flows reach a closed port.
    if (this.announced) await this.call("withdraw").catch(() => undefined);
    this.announced = false;
  }

  async leave(): Promise<void> {
    this.wanted = false;
    await this.trying;
    if (this.options.announce === undefined) return;
    let last: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.call("withdraw");
        this.announced = false;
        this.options.log.info({}, "DNS: withdrawn from the serving group");
        return;
      } catch (error) {
        last = error;
      }
    }
    throw new Error(`the route announcer did not take the withdrawal: ${(last as Error).message}`);
  }

  async join(): Promise<void> {
    this.wanted = true;
    await this.tryAnnounce();
  }

  private tryAnnounce(): Promise<void> {
    if (this.trying || !this.wanted || this.announced || this.options.announce === undefined) {
      return this.trying ?? Promise.resolve();
    }
    if (!this.options.ready() || !this.options.where()) return Promise.resolve();
    this.trying = this.call("announce")
      .then(() => {
        // A leave() while announcing wins: it waits for this call, then withdraws.
        this.announced = true;
        this.options.log.info({ announcer: this.options.announce }, "DNS: announced in the serving group");
      })
      .catch((error: Error) => this.options.log.warn({ err: error.message }, "DNS: the announcement failed; retrying"))
      .finally(() => (this.trying = undefined));
    return this.trying;
  }

  private async call(what: "announce" | "withdraw"): Promise<void> {
    const where = this.options.where();
    const at = Math.max(Date.now(), this.lastAt + 1); // strictly newer than the last, even within a millisecond
    this.lastAt = at;
    const announcement: Announcement =
      what === "announce"
        ? { action: what, member: this.options.member, address: where?.host, port: where?.port, at }
        : { action: what, member: this.options.member, at };
    const body = { ...announcement, signature: await this.options.sign(announcementMessage(announcement)) };
    const url = `${this.options.announce!.replace(/\/$/, "")}/${what}`;
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 2_000),
    });
    await response.arrayBuffer();
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  }
}
