/**
 * Newton's DNS probes (D58): one query of a name and type to one server over UDP, as a stub resolver sends it (no
 * recursion desired: the servers probed are authoritative), answered with the response's rcode. One UDP socket per
 * target; query ids are taken in turn, skipping those still in flight, and an answer counts only when its id and
 * question match a query in flight (a stray or late datagram is ignored). No answer within the timeout is an error
 * of kind `timeout`.
 */
import { type Socket, createSocket } from "node:dgram";
import { isIP } from "node:net";

import * as dnsPacket from "dns-packet";

/** The record types a probe may ask for. */
export const DNS_PROBE_TYPES = ["A", "AAAA", "CNAME", "MX", "NS", "SOA", "TXT", "SRV", "CAA", "PTR"] as const;
export type DnsProbeType = (typeof DNS_PROBE_TYPES)[number];

/** `host:port` (IPv6 as `[addr]:port`) with an IP literal host; throws a RangeError naming what is wrong. */
export function parseServer(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (!match || !host || isIP(host) === 0)
    throw new RangeError(`a DNS server is "address:port" with an IP address ("[::1]:53" for IPv6), not ${text}`);
  if (!(port >= 1 && port <= 65535)) throw new RangeError(`the port of ${text} is not 1-65535`);
  return { host, port };
}

/** Thrown when no answer came in time (the engine's `timeout` kind). */
export class DnsTimeoutError extends Error {
  readonly code = "ETIMEDOUT";
}

interface Pending {
  name: string;
  type: string;
  resolve(rcode: string): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export class DnsProber {
  private readonly socket: Socket;
  private readonly server: { host: string; port: number };
  private readonly pending = new Map<number, Pending>();
  private nextId = Math.floor(Math.random() * 0x10000);
  private closed = false;

  constructor(
    server: string,
    private readonly timeoutMs: number,
  ) {
    this.server = parseServer(server);
    this.socket = createSocket(isIP(this.server.host) === 6 ? "udp6" : "udp4");
    this.socket.on("message", (message) => this.answer(message));
    this.socket.on("error", () => undefined); // a send's own callback reports its failure
    this.socket.unref();
  }

  /** The rcode of the server's answer to `name` `type` ("NOERROR", "NXDOMAIN", "REFUSED"...). */
  query(name: string, type: DnsProbeType): Promise<string> {
    if (this.closed) return Promise.reject(new Error("the prober is closed"));
    if (this.pending.size >= 0x10000) return Promise.reject(new Error("65,536 queries in flight"));
    while (this.pending.has(this.nextId)) this.nextId = (this.nextId + 1) & 0xffff;
    const id = this.nextId;
    this.nextId = (id + 1) & 0xffff;
    const packet = dnsPacket.encode({ type: "query", id, flags: 0, questions: [{ type, name }] });
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new DnsTimeoutError(`no answer from ${this.server.host}:${this.server.port} in ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { name: name.toLowerCase(), type, resolve, reject, timer });
      this.socket.send(packet, this.server.port, this.server.host, (error) => {
        if (!error) return;
        const entry = this.pending.get(id);
        if (!entry) return;
        clearTimeout(entry.timer);
        this.pending.delete(id);
        reject(error);
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(new Error("the prober closed"));
    }
    this.pending.clear();
    this.socket.close();
  }

  private answer(message: Buffer): void {
    let decoded: dnsPacket.DecodedPacket & { rcode?: string };
    try {
      decoded = dnsPacket.decode(message);
    } catch {
      return; // not a DNS message
    }
    const entry = decoded.id === undefined ? undefined : this.pending.get(decoded.id);
    const question = decoded.questions?.[0];
    if (!entry || !decoded.flag_qr) return;
    // An answer without the question (FORMERR may carry none) is taken on its id; with one, it must be ours.
    if (question && (question.name.toLowerCase() !== entry.name || question.type !== entry.type)) return;
    clearTimeout(entry.timer);
    this.pending.delete(decoded.id!);
    entry.resolve(decoded.rcode ?? "UNKNOWN");
  }
}
