/**
 * Hosts' links at the gateway (D44; the host's side is roles/host/link.ts). A host connects out to the gateway's
 * API port and asks for an HTTP upgrade to `edge-jobs/1` at /hosts/connect with its signed registration in
 * `x-edge-registration`. The gateway checks, cheapest first: the request's shape and sizes, the registration's
 * schema, then HostRegistry's checks (this gateway, timestamp window, signature, replay, ban, admission). Only
 * then does it switch protocols and run HTTP/2 over the socket as the client: each job is a stream it opens, at
 * most the host's announced concurrent-stream limit at once (capped at MAX_CAPACITY).
 *
 * Abuse: at most MAX_HANDSHAKES handshakes are checked at once (more: 503 at once, no signature recovered); a
 * refused handshake gets a JSON 4xx and the socket is closed; an unanswered ping (every `pingMs`) or a socket
 * error ends the session. A host connecting again replaces its previous link (whose jobs in flight are retried
 * elsewhere by their owners); a link whose host the chain stops admitting, or that is banned, is closed at once.
 */
import type { IncomingMessage, Server } from "node:http";
import http2 from "node:http2";
import type { Duplex } from "node:stream";
import { Value } from "typebox/value";

import { EdgeError } from "../../../offchain/common/errors";
import { type HostRegistrationBody, HostRegistrationBodySchema, type Region } from "../../../offchain/common/protocol";
import type { GatewayContext } from "../../context";
import { nodeError } from "../../errors";
import type { Slot } from "./queue";

/** The upgrade token of the job link's protocol (the host's side names it too). */
export const LINK_PROTOCOL = "edge-jobs/1";
/** Most jobs a host may run at once, whatever it announces. */
export const MAX_CAPACITY = 256;
/** Handshakes checked at once at most. */
export const MAX_HANDSHAKES = 64;
/** A switched link must send its HTTP/2 SETTINGS within this, or it is closed. */
export const SETTINGS_TIMEOUT_MS = 5_000;
/** Longest registration header accepted (a registration is ~500 bytes of JSON). */
const MAX_REGISTRATION_CHARS = 4_096;

/** A host's live link: an HTTP/2 client session over the socket the host opened. */
export class HostLink implements Slot {
  inflight = 0;
  readonly connectedAt = Date.now();
  /** Jobs started on this link (GET /hosts shows it). */
  started = 0;
  /** Where its host says it runs, from its signed registration (D68, set when routed); undefined: undeclared. */
  region: Region | undefined;
  /** The last ping's round trip (ms): the gateway's measured latency to the host (D69). */
  rttMs: number | undefined;

  constructor(
    readonly host: string,
    readonly session: http2.ClientHttp2Session,
  ) {}

  /** Set when the host's first SETTINGS arrive (Node fills remoteSettings with defaults before that). */
  settled = false;

  /** The host's announced concurrent-stream limit, capped; 0 until its SETTINGS arrive. */
  get capacity(): number {
    if (!this.settled || this.closed) return 0;
    return Math.min(MAX_CAPACITY, this.session.remoteSettings.maxConcurrentStreams ?? 100);
  }

  get closed(): boolean {
    return this.session.closed || this.session.destroyed;
  }

  /** Opens a job's stream; the queue has counted it in flight. */
  request(headers: http2.OutgoingHttpHeaders, endStream: boolean): http2.ClientHttp2Stream {
    this.started += 1;
    return this.session.request(headers, { endStream });
  }

  close(): void {
    if (!this.session.destroyed) this.session.destroy();
  }
}

export interface LinkEvents {
  /** Checks a registration (HostRegistry.register); resolves with the host's address or throws an EdgeError. */
  admit(body: HostRegistrationBody): Promise<string>;
  /** A link is up and its capacity known (or its capacity changed). */
  connected(link: HostLink): void;
  /** A link closed (whatever the reason). */
  disconnected(link: HostLink): void;
}

export class HostLinks {
  private handshakes = 0;
  /** Hosts whose link was switched but has not sent its SETTINGS yet. */
  private readonly settingUp = new Set<string>();
  private refusedCount = 0;

  constructor(
    private readonly ctx: Pick<GatewayContext, "log">,
    private readonly events: LinkEvents,
    private readonly pingMs = 10_000,
    private readonly settingsTimeoutMs = SETTINGS_TIMEOUT_MS,
  ) {}

  /** Upgrade requests refused (bad shape, signature, replay, not admitted, too many at once). */
  get refused(): number {
    return this.refusedCount;
  }

  /** Takes the upgrade requests of the gateway's API server. */
  attach(server: Server): void {
    server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.upgrade(request, socket, head);
    });
  }

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => socket.destroy());
    if (this.handshakes >= MAX_HANDSHAKES) {
      return this.refuse(socket, nodeError("EDGE_NODE_REPLAY_MEMORY_FULL", "too many hosts connecting at once"));
    }
    this.handshakes += 1;
    let host: string;
    try {
      host = await this.events.admit(parseHandshake(request));
    } catch (error) {
      return this.refuse(socket, error as Error);
    } finally {
      this.handshakes -= 1;
    }
    if (socket.destroyed) return;
    // One link being set up per host at a time: a host cannot pile up sessions that never send SETTINGS.
    if (this.settingUp.has(host))
      return this.refuse(socket, nodeError("EDGE_NODE_REPLAYED", "a link of this host is being set up already"));
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${LINK_PROTOCOL}\r\n\r\n`);
    if (head.length > 0) socket.unshift(head);
    // No pushed streams from hosts; the session's buffered memory bounded (MB).
    const session = http2.connect("http://host.invalid", {
      createConnection: () => socket,
      settings: { enablePush: false },
      maxSessionMemory: 32,
    });
    const link = new HostLink(host, session);
    this.settingUp.add(host);
    const setUp = () => {
      clearTimeout(settingsTimer);
      this.settingUp.delete(host);
    };
    const settingsTimer = setTimeout(() => {
      if (!link.settled) session.destroy(new Error("the host sent no SETTINGS in time"));
    }, this.settingsTimeoutMs);
    session.on("remoteSettings", () => {
      if (!link.settled) setUp();
      link.settled = true;
      this.events.connected(link);
    });
    session.on("error", (error) => this.ctx.log.debug({ host, err: error.message }, "host link error"));
    const ping = () => {
      if (session.destroyed) return;
      const timer = setTimeout(() => session.destroy(new Error("the host did not answer a ping")), this.pingMs);
      session.ping((error, duration) => {
        clearTimeout(timer);
        if (error && !session.destroyed) session.destroy(error);
        else if (!error) link.rttMs = duration;
      });
    };
    session.once("remoteSettings", ping); // a first round trip at once, for the latency table
    const pinger = setInterval(ping, this.pingMs);
    pinger.unref();
    session.on("close", () => {
      clearInterval(pinger);
      if (!link.settled) setUp();
      this.events.disconnected(link);
    });
  }

  /** Answers a refused upgrade with a JSON error and closes the socket. */
  private refuse(socket: Duplex, error: Error): void {
    this.refusedCount += 1;
    const edge = error instanceof EdgeError ? error : nodeError("EDGE_NODE_BAD_LINK", error.message);
    const body = JSON.stringify({ error: edge.message, code: edge.code });
    socket.end(
      `HTTP/1.1 ${edge.status} ${edge.status < 500 ? "Refused" : "Unavailable"}\r\ncontent-type: application/json\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
}

/** The registration an upgrade request carries, or a 400 naming what is wrong (no signature checked here). */
export function parseHandshake(request: IncomingMessage): HostRegistrationBody {
  const path = (request.url ?? "").split("?")[0];
  if (path !== "/hosts/connect") throw nodeError("EDGE_NODE_BAD_LINK", `no upgrade at ${path.slice(0, 64)}`);
  if ((request.headers.upgrade ?? "").toLowerCase() !== LINK_PROTOCOL)
    throw nodeError("EDGE_NODE_BAD_LINK", `upgrade to ${LINK_PROTOCOL} only`);
  const header = request.headers["x-edge-registration"];
  if (typeof header !== "string" || header.length === 0 || header.length > MAX_REGISTRATION_CHARS)
    throw nodeError("EDGE_NODE_BAD_LINK", "x-edge-registration must carry a signed registration (base64url JSON)");
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(header, "base64url").toString("utf8"));
  } catch {
    throw nodeError("EDGE_NODE_BAD_LINK", "x-edge-registration is not base64url JSON");
  }
  if (!Value.Check(HostRegistrationBodySchema, body))
    throw nodeError("EDGE_NODE_BAD_LINK", "x-edge-registration is not a host registration");
  if (body.leaving)
    throw nodeError("EDGE_NODE_BAD_LINK", "a link is left by closing it, not by a leaving registration");
  return body;
}
