/**
 * Edge DNS sockets (D57): one UDP socket and one TCP server on the same host and port. A message's handler is
 * synchronous and never throws out (dnsWire.ts turns what it cannot read into FORMERR or a drop); a socket error
 * is logged, never fatal.
 *
 * TCP (RFC 7766): messages are length-prefixed (2 bytes, so at most 65535); connections are capped in all (at the
 * cap the oldest idle one makes room) and per client network (`clientKey`); see `serveConnection` for the rest.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { type Server, type Socket, createServer, isIPv6 } from "node:net";

import type { FastifyBaseLogger } from "fastify";

import type { DropReason } from "./dnsMetrics";
import { type DnsLimits, clientKey } from "./dnsLimits";

/** Answers one message from `ip`; undefined: send nothing. */
export type Handler = (msg: Buffer, tcp: boolean, ip: string) => Buffer | undefined;

export interface Listeners {
  host: string;
  port: number;
  close(): Promise<void>;
  tcpConnections(): number;
  /** Answer bytes written to TCP connections and not yet taken by the kernel (R18-2). */
  tcpUnsentBytes(): number;
}

export interface TransportOptions {
  host: string;
  port: number;
  limits: DnsLimits;
  handle: Handler;
  dropped: (reason: DropReason) => void;
  log: Pick<FastifyBaseLogger, "warn">;
}

function bindUdp(host: string, port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: isIPv6(host) ? "udp6" : "udp4" });
    socket.once("error", reject);
    socket.bind(port, host, () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

function listenTcp(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** What all TCP connections share: their unsent answer bytes, and the connections waiting for them to go down. */
interface Shared {
  unsent: number;
  waiting: Set<() => void>;
}

/** A TCP connection as the caps see it. */
interface Connection {
  socket: Socket;
  key: string;
  lastActive: number;
  /** No message half read, nothing queued or unsent: closing it loses nothing. */
  idle(): boolean;
}

/**
 * Serves one TCP connection (RFC 7766). Each message is read into a buffer sized from its length prefix (no
 * re-copying of what came before). Answers are written one message at a time while the connection's unsent bytes,
 * its answers in flight and all connections' unsent bytes are under their caps (R18-2); past one, the rest of what
 * arrived waits (the socket is paused) and is read on, in order, when the kernel takes the answers. A message must
 * be whole within `tcpMessageMs` of its first byte and the connection closes after `tcpIdleMs` without one (R18-5:
 * trickled bytes extend neither).
 */
function serveConnection(socket: Socket, options: TransportOptions, shared: Shared, conn: Connection): void {
  const { limits, handle } = options;
  const ip = socket.remoteAddress ?? "";
  const queued: Buffer[] = [];
  let at = 0; // into queued[0]
  const head = Buffer.alloc(2);
  let headFill = 0;
  let frame: Buffer | undefined;
  let frameFill = 0;
  let inFlight = 0;
  let deadline: NodeJS.Timeout | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  const close = (reason?: DropReason) => {
    if (socket.destroyed) return;
    if (reason) options.dropped(reason);
    socket.destroy();
  };
  const active = () => {
    conn.lastActive = Date.now();
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => close(), limits.tcpIdleMs);
  };
  conn.idle = () => headFill === 0 && !frame && inFlight === 0 && queued.length === 0 && socket.writableLength === 0;
  const blocked = () =>
    socket.writableLength >= limits.tcpPendingBytes ||
    inFlight >= limits.tcpInFlight ||
    shared.unsent >= limits.tcpUnsentTotal;

  const answer = (msg: Buffer) => {
    const response = handle(msg, true, ip);
    if (!response || socket.destroyed) return;
    active(); // only an answered query: empty or dropped messages do not keep a connection open
    const framed = Buffer.allocUnsafe(response.length + 2);
    framed.writeUInt16BE(response.length, 0);
    response.copy(framed, 2);
    inFlight++;
    shared.unsent += framed.length;
    socket.write(framed, () => {
      inFlight--;
      shared.unsent -= framed.length;
      if (shared.unsent < limits.tcpUnsentTotal) for (const wake of [...shared.waiting]) wake();
      resume();
    });
  };

  /** Reads queued bytes into messages and answers them until blocked or out of bytes. */
  const pump = () => {
    while (queued.length > 0 && !blocked() && !socket.destroyed) {
      const chunk = queued[0];
      if (headFill < 2 && !frame) {
        if (headFill === 0) deadline = setTimeout(() => close("tcp_deadline"), limits.tcpMessageMs);
        head[headFill++] = chunk[at++];
        if (headFill === 2) {
          frame = Buffer.allocUnsafe(head.readUInt16BE(0));
          frameFill = 0;
        }
      } else if (frame) {
        const n = Math.min(frame.length - frameFill, chunk.length - at);
        chunk.copy(frame, frameFill, at, at + n);
        frameFill += n;
        at += n;
      }
      if (frame && frameFill === frame.length) {
        const msg = frame;
        frame = undefined;
        headFill = 0;
        clearTimeout(deadline);
        answer(msg);
      }
      if (at >= chunk.length) {
        queued.shift();
        at = 0;
      }
    }
  };

  function resume(): void {
    if (socket.destroyed) return;
    pump();
    if (queued.length === 0) {
      shared.waiting.delete(resume);
      socket.resume();
    } else if (shared.unsent >= limits.tcpUnsentTotal) shared.waiting.add(resume);
  }

  active();
  socket.on("error", () => socket.destroy());
  socket.on("close", () => {
    clearTimeout(deadline);
    clearTimeout(idleTimer);
    shared.waiting.delete(resume);
  });
  socket.on("drain", resume);
  socket.on("data", (chunk: Buffer) => {
    queued.push(chunk);
    pump();
    if (queued.length > 0 && !socket.destroyed) {
      socket.pause();
      if (shared.unsent >= limits.tcpUnsentTotal) shared.waiting.add(resume);
    }
  });
}

/** The oldest idle connection, if any (closed at the cap for a new one, R18-5). */
function oldestIdle(connections: Map<Socket, Connection>): Connection | undefined {
  let oldest: Connection | undefined;
  for (const c of connections.values()) if (c.idle() && (!oldest || c.lastActive < oldest.lastActive)) oldest = c;
  return oldest;
}

/** Binds UDP and TCP on `host:port` (port 0: one free port for both). */
export async function listen(options: TransportOptions): Promise<Listeners> {
  const { host, limits } = options;
  for (let attempt = 0; ; attempt++) {
    const udp = await bindUdp(host, options.port);
    const port = udp.address().port;
    const perKey = new Map<string, number>();
    const connections = new Map<Socket, Connection>();
    const shared: Shared = { unsent: 0, waiting: new Set() };
    const tcp = createServer({ pauseOnConnect: false }, (socket) => {
      const key = clientKey(socket.remoteAddress ?? "");
      const mine = perKey.get(key) ?? 0;
      const evict = connections.size >= limits.tcpConnections ? oldestIdle(connections) : undefined;
      if (mine >= limits.tcpPerIp || (connections.size >= limits.tcpConnections && !evict)) {
        options.dropped("tcp_cap");
        socket.destroy();
        return;
      }
      if (evict) {
        options.dropped("tcp_evicted");
        evict.socket.destroy();
        connections.delete(evict.socket); // its close event comes later; the slot is the new one's now
      }
      perKey.set(key, mine + 1);
      const conn: Connection = { socket, key, lastActive: Date.now(), idle: () => true };
      connections.set(socket, conn);
      socket.once("close", () => {
        connections.delete(socket);
        const left = (perKey.get(key) ?? 1) - 1;
        if (left > 0) perKey.set(key, left);
        else perKey.delete(key);
      });
      serveConnection(socket, options, shared, conn);
    });
    tcp.on("error", (error) => options.log.warn({ err: error.message }, "DNS: TCP server error"));
    try {
      await listenTcp(tcp, host, port);
    } catch (error) {
      udp.close();
      // Port 0 picked a UDP port whose TCP twin is taken: pick again.
      if (options.port === 0 && attempt < 10 && (error as NodeJS.ErrnoException).code === "EADDRINUSE") continue;
      throw error;
    }
    udp.on("error", (error) => options.log.warn({ err: error.message }, "DNS: UDP socket error"));
    udp.on("message", (msg, rinfo) => {
      const response = options.handle(msg, false, rinfo.address);
      if (response) udp.send(response, rinfo.port, rinfo.address);
    });
    return {
      host,
      port,
      tcpConnections: () => connections.size,
      tcpUnsentBytes: () => shared.unsent,
      async close() {
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        for (const socket of connections.keys()) socket.destroy();
        await new Promise<void>((resolve) => tcp.close(() => resolve()));
      },
    };
  }
}
