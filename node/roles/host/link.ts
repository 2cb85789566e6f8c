/**
 * A host's link to its gateway (D44): one outbound connection the host opens, so it needs no inbound port (real
 * hosts sit behind NAT). The host asks for an HTTP upgrade to `edge-jobs/1` at the gateway's /hosts/connect,
 * proving its identity with a HostRegistration signed by its device key for that gateway (fresh timestamp: the
 * gateway refuses any not newer than the last it saw). Once switched, the roles turn around: the gateway is the
 * HTTP/2 client and the host the server, so each job is one HTTP/2 stream the gateway opens. The host's
 * SETTINGS_MAX_CONCURRENT_STREAMS is its capacity (the jobs it runs at once): the gateway never sends more, and
 * gives the next job to the first host with a free slot, so a host that returns jobs faster is given more of them.
 * HTTP/2 flow control paces each response body on its own, so one slow client never stalls another's job.
 *
 * The link reconnects with a capped, jittered back-off while it is wanted (the host is admitted and serving),
 * and closes gracefully when it is not: GOAWAY, so jobs already sent finish and no new one comes. Liveness: the
 * host pings the gateway every `pingMs`; an unanswered ping (or a closed socket) ends the session and a new one
 * is opened.
 */
import http from "node:http";
import http2 from "node:http2";
import type { Socket } from "node:net";
import type { Address } from "viem";

import { type Region, signHostRegistration } from "../../../offchain/common/protocol";
import type { RoleContext } from "../../context";

/** The upgrade token of the job link's protocol. */
export const LINK_PROTOCOL = "edge-jobs/1";
/** The header carrying the signed registration (base64url of its JSON). */
export const REGISTRATION_HEADER = "x-edge-registration";

export interface LinkOptions {
  /** Jobs run at once at most: the HTTP/2 concurrent-stream limit the host announces. */
  capacity: number;
  /** Read at each connection: a node listening on port 0 learns its URL only once it listens. */
  publicUrl: () => string;
  /** Where the host says it runs (--region, D68): signed into each registration; undefined: undeclared. */
  region?: Region;
  pingMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface LinkStatus {
  gateway: string;
  connected: boolean;
  connectedAt: number | null;
  connections: number;
  capacity: number;
  lastError: string | null;
}

export type JobHandler = (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void;

export class GatewayLink {
  private readonly server: http2.Http2Server;
  private session: http2.ServerHttp2Session | null = null;
  private wanted = false;
  private connecting: Promise<void> | null = null;
  private retry: NodeJS.Timeout | null = null;
  private backoff: number;
  private gatewayAddressSeen: Address | null = null;
  private connectedAt: number | null = null;
  private connections = 0;
  private lastError: string | null = null;
  private pinger: NodeJS.Timeout | null = null;

  constructor(
    private readonly ctx: Pick<RoleContext, "signer" | "log">,
    private readonly gatewayUrl: string,
    private readonly options: LinkOptions,
    handler: JobHandler,
  ) {
    this.backoff = options.minBackoffMs ?? 250;
    this.server = http2.createServer({ settings: { maxConcurrentStreams: options.capacity } }, handler);
    this.server.on("session", (session: http2.ServerHttp2Session) => this.opened(session));
  }

  /** The gateway's device address, once learnt (the first connection asks its /status for it). */
  get gatewayDevice(): Address | null {
    return this.gatewayAddressSeen;
  }

  get connected(): boolean {
    return this.session !== null && !this.session.closed && !this.session.destroyed;
  }

  /** Connects (and keeps reconnecting) while wanted; resolves once the first attempt is over. */
  want(): Promise<void> {
    this.wanted = true;
    if (this.connected) return Promise.resolve();
    return this.attempt();
  }

  /** Stops reconnecting and closes the session gracefully: jobs in flight finish, no new job comes. */
  async leave(): Promise<void> {
    this.wanted = false;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    await this.connecting?.catch(() => undefined);
    const session = this.session;
    if (!session || session.closed || session.destroyed) return;
    await new Promise<void>((resolve) => session.close(resolve));
    this.ctx.log.info({ gateway: this.gatewayUrl }, "left the gateway");
  }

  status(): LinkStatus {
    return {
      gateway: this.gatewayUrl,
      connected: this.connected,
      connectedAt: this.connected ? this.connectedAt : null,
      connections: this.connections,
      capacity: this.options.capacity,
      lastError: this.lastError,
    };
  }

  private attempt(): Promise<void> {
    this.connecting ??= this.connect()
      .then(() => {
        this.backoff = this.options.minBackoffMs ?? 250;
        this.lastError = null;
      })
      .catch((error: Error) => {
        this.lastError = error.message;
        this.ctx.log.warn({ err: error.message, gateway: this.gatewayUrl }, "could not connect to the gateway");
        this.scheduleRetry();
      })
      .finally(() => (this.connecting = null));
    return this.connecting;
  }

  private scheduleRetry(): void {
    if (!this.wanted || this.retry) return;
    const max = this.options.maxBackoffMs ?? 10_000;
    const delay = Math.min(max, this.backoff) * (0.5 + Math.random() / 2);
    this.backoff = Math.min(max, this.backoff * 2);
    this.retry = setTimeout(() => {
      this.retry = null;
      if (this.wanted && !this.connected) void this.attempt();
    }, delay);
    this.retry.unref();
  }

  /** One connection: sign a registration, ask for the upgrade, hand the socket to the HTTP/2 server. */
  private async connect(): Promise<void> {
    const gateway = await this.gatewayAddress();
    const registration = await signHostRegistration(this.ctx.signer.account, this.ctx.signer.chainId, {
      gateway,
      url: this.options.publicUrl(),
      leaving: false,
      timestamp: BigInt(Date.now()),
      region: this.options.region,
    });
    const socket = await upgrade(`${this.gatewayUrl}/hosts/connect`, {
      connection: "upgrade",
      upgrade: LINK_PROTOCOL,
      [REGISTRATION_HEADER]: Buffer.from(JSON.stringify(registration)).toString("base64url"),
    });
    if (!this.wanted) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.server.emit("connection", socket);
  }

  private opened(session: http2.ServerHttp2Session): void {
    this.session?.destroy();
    this.session = session;
    this.connections += 1;
    this.connectedAt = Date.now();
    this.ctx.log.info({ gateway: this.gatewayUrl }, "connected to the gateway");
    const pingMs = this.options.pingMs ?? 10_000;
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = setInterval(() => {
      if (session.destroyed) return;
      const timer = setTimeout(() => session.destroy(new Error("the gateway did not answer a ping")), pingMs);
      session.ping((error) => {
        clearTimeout(timer);
        if (error && !session.destroyed) session.destroy(error);
      });
    }, pingMs);
    this.pinger.unref();
    session.on("error", (error) => (this.lastError = error.message));
    session.on("close", () => {
      if (this.session !== session) return;
      this.session = null;
      if (this.pinger) clearInterval(this.pinger);
      this.pinger = null;
      if (this.wanted) {
        this.ctx.log.warn({ gateway: this.gatewayUrl }, "link to the gateway closed: reconnecting");
        this.scheduleRetry();
      }
    });
  }

  /** The gateway's device address, which the registration names, from its /status (asked once). */
  private async gatewayAddress(): Promise<Address> {
    if (!this.gatewayAddressSeen) {
      const response = await fetch(`${this.gatewayUrl}/status`, { signal: AbortSignal.timeout(5_000) });
      if (!response.ok) throw new Error(`gateway status answered ${response.status}`);
      this.gatewayAddressSeen = ((await response.json()) as { device: Address }).device;
    }
    return this.gatewayAddressSeen;
  }
}

/** An HTTP/1.1 upgrade request; the switched socket, or an error with the gateway's answer. */
function upgrade(url: string, headers: Record<string, string>): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { headers, timeout: 5_000 });
    request.on("upgrade", (response, socket, head) => {
      if (response.headers.upgrade?.toLowerCase() !== LINK_PROTOCOL) {
        socket.destroy();
        reject(new Error(`the gateway switched to ${response.headers.upgrade ?? "nothing"}`));
        return;
      }
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    request.on("response", (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body = (body + chunk).slice(0, 1_000)));
      response.on("end", () => {
        let message = body;
        try {
          message = (JSON.parse(body) as { error?: string }).error ?? body;
        } catch {
          // not JSON: the text as it came
        }
        reject(new Error(`gateway refused: ${response.statusCode} ${message}`.trim()));
      });
    });
    request.on("timeout", () => request.destroy(new Error("the gateway did not answer the upgrade within 5 s")));
    request.on("error", reject);
    request.end();
  });
}
