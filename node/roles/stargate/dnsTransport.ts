/**
 * Edge DNS sockets (D57): one UDP socket and one TCP server on the same host and port. A message's handler is
 * synchronous and never throws out (dnsWire.ts turns what it cannot read into FORMERR or a drop); a socket error
 * is logged, never fatal.
 *
 * TCP (RFC 7766): messages are length-prefixed (2 bytes, so at most 65535); a connection idle for `tcpIdleMs` is
 * closed; connections are capped in all and per client IP; a client that does not read its answers stops being
 * read from until they drain (so its queries in flight are bounded by `tcpPendingBytes`).
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { type Server, type Socket, createServer, isIPv6 } from "node:net";

import type { FastifyBaseLogger } from "fastify";

import type { DropReason } from "./dnsMetrics";
import type { DnsLimits } from "./dnsLimits";

/** Answers one message from `ip`; undefined: send nothing. */
export type Handler = (msg: Buffer, tcp: boolean, ip: string) => Buffer | undefined;

export interface Listeners {
  host: string;
  port: number;
  close(): Promise<void>;
  tcpConnections(): number;
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

function serveConnection(socket: Socket, options: TransportOptions, ip: string): void {
  const { limits, handle } = options;
  let pending: Buffer = Buffer.alloc(0);
  socket.setTimeout(limits.tcpIdleMs, () => socket.destroy());
  socket.on("error", () => socket.destroy());
  socket.on("drain", () => socket.resume());
  socket.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (pending.length - at >= 2) {
      const length = pending.readUInt16BE(at);
      if (pending.length - at - 2 < length) break;
      const msg = pending.subarray(at + 2, at + 2 + length);
      at += 2 + length;
      const response = handle(msg, true, ip);
      if (!response) continue;
      const framed = Buffer.allocUnsafe(response.length + 2);
      framed.writeUInt16BE(response.length, 0);
      response.copy(framed, 2);
      socket.write(framed);
    }
    pending = at === pending.length ? Buffer.alloc(0) : Buffer.from(pending.subarray(at));
    if (socket.writableLength > limits.tcpPendingBytes) socket.pause();
  });
}

/** Binds UDP and TCP on `host:port` (port 0: one free port for both). */
export async function listen(options: TransportOptions): Promise<Listeners> {
  const { host, limits } = options;
  for (let attempt = 0; ; attempt++) {
    const udp = await bindUdp(host, options.port);
    const port = udp.address().port;
    const perIp = new Map<string, number>();
    const sockets = new Set<Socket>();
    const tcp = createServer({ pauseOnConnect: false }, (socket) => {
      const ip = socket.remoteAddress ?? "";
      const mine = perIp.get(ip) ?? 0;
      if (sockets.size >= limits.tcpConnections || mine >= limits.tcpPerIp) {
        options.dropped("tcp_cap");
        socket.destroy();
        return;
      }
      perIp.set(ip, mine + 1);
      sockets.add(socket);
      socket.once("close", () => {
        sockets.delete(socket);
        const left = (perIp.get(ip) ?? 1) - 1;
        if (left > 0) perIp.set(ip, left);
        else perIp.delete(ip);
      });
      serveConnection(socket, options, ip);
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
      tcpConnections: () => sockets.size,
      async close() {
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => tcp.close(() => resolve()));
      },
    };
  }
}
