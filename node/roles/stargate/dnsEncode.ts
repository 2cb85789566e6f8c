/**
 * Edge DNS response encoding with name compression (RFC 1035 4.1.4). dns-packet decodes queries; its encoder
 * writes every name in full, which makes answers larger than other servers' (40 A records: 1,280 bytes against
 * Knot's 640) and so truncates them where others do not. This writer handles the types we answer (A, AAAA,
 * CNAME, NS, MX, TXT, SOA, OPT), copies the question's bytes as asked, and points later names at earlier ones
 * (matching case-insensitively, so answers at the asked name carry its case).
 */
import type { Answer, OptAnswer, SoaData } from "dns-packet";

const TYPES: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, OPT: 41 };

/** The bytes of an IPv6 address (validated before: zoneProblems, the catalogue's URL parse). */
export function ipv6Bytes(text: string): Buffer {
  const out = Buffer.alloc(16);
  let address = text;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (v4) {
    for (const octet of v4[1].split(".")) tail.push(Number(octet));
    address = address.slice(0, -v4[1].length) + "0:0";
  }
  const [head, rest] = address.includes("::") ? address.split("::") : [address, undefined];
  const left = head ? head.split(":") : [];
  const right = rest ? rest.split(":") : [];
  const groups = [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || "0", 16), i * 2));
  if (tail.length === 4) Buffer.from(tail).copy(out, 12);
  return out;
}

class Writer {
  readonly buf: Buffer;
  at = 0;
  private readonly names = new Map<string, number>();

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  u8(n: number) {
    this.buf.writeUInt8(n, this.at);
    this.at += 1;
  }
  u16(n: number) {
    this.buf.writeUInt16BE(n, this.at);
    this.at += 2;
  }
  u32(n: number) {
    this.buf.writeUInt32BE(n >>> 0, this.at);
    this.at += 4;
  }
  bytes(b: Uint8Array) {
    if (this.at + b.length > this.buf.length) throw new RangeError("the message is over its size");
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /** Registers the question's name (wire form, at `offset`): each of its suffixes can be pointed at. */
  question(wire: Buffer, offset: number) {
    const starts: number[] = [];
    const labels: string[] = [];
    for (let at = 0; wire[at] !== 0; at += 1 + wire[at]) {
      starts.push(at);
      labels.push(wire.toString("latin1", at + 1, at + 1 + wire[at]));
    }
    const lower = labels.join(".").toLowerCase();
    for (let i = 0, pos = 0; i < labels.length; pos += labels[i].length + 1, i++) {
      const key = pos === 0 ? lower : lower.slice(pos);
      if (!this.names.has(key)) this.names.set(key, offset + starts[i]);
    }
  }

  name(text: string) {
    const name = text.endsWith(".") ? text.slice(0, -1) : text;
    const lower = name.toLowerCase();
    for (let pos = 0; pos < name.length;) {
      const key = pos === 0 ? lower : lower.slice(pos);
      const pointer = this.names.get(key);
      if (pointer !== undefined) return this.u16(0xc000 | pointer);
      if (this.at < 0x3fff) this.names.set(key, this.at);
      const dot = name.indexOf(".", pos);
      const end = dot < 0 ? name.length : dot;
      const length = this.buf.write(name.slice(pos, end), this.at + 1, "utf8");
      if (length === 0 || length > 63) throw new RangeError(`a label of ${length} bytes`);
      this.buf[this.at] = length;
      this.at += 1 + length;
      pos = end + 1;
    }
    this.u8(0);
  }
}

function rdata(w: Writer, r: Answer): void {
  const data = (r as { data: unknown }).data;
  switch (r.type) {
    case "A":
      for (const octet of (data as string).split(".")) w.u8(Number(octet));
      return;
    case "AAAA":
      return w.bytes(ipv6Bytes(data as string));
    case "CNAME":
    case "NS":
      return w.name(data as string);
    case "MX": {
      const mx = data as { preference: number; exchange: string };
      w.u16(mx.preference);
      return w.name(mx.exchange);
    }
    case "TXT":
      for (const s of data as string[]) {
        const b = Buffer.from(s);
        w.u8(b.length);
        w.bytes(b);
      }
      return;
    case "SOA": {
      const soa = data as Required<SoaData>;
      w.name(soa.mname);
      w.name(soa.rname);
      for (const n of [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum]) w.u32(n);
      return;
    }
    default:
      throw new Error(`no encoder for ${r.type}`);
  }
}

function record(w: Writer, r: Answer): void {
  if (r.type === "OPT") {
    const opt = r as OptAnswer;
    w.u8(0);
    w.u16(41);
    w.u16(opt.udpPayloadSize);
    w.u8(opt.extendedRcode);
    w.u8(opt.ednsVersion);
    w.u16(opt.flags);
    // Options given as wire data (the client subnet echoed, dnsWire.ts); others are not sent.
    const lengthAt = w.at;
    w.u16(0);
    for (const o of (opt.options ?? []) as Array<{ code: number; data?: Buffer }>) {
      if (!o.data) continue;
      w.u16(o.code);
      w.u16(o.data.length);
      w.bytes(o.data);
    }
    w.buf.writeUInt16BE(w.at - lengthAt - 2, lengthAt);
    return;
  }
  w.name(r.name);
  w.u16(TYPES[r.type]);
  w.u16(1);
  w.u32((r as { ttl?: number }).ttl ?? 0);
  const lengthAt = w.at;
  w.u16(0);
  rdata(w, r);
  w.buf.writeUInt16BE(w.at - lengthAt - 2, lengthAt);
}

/** Encoding is synchronous: one buffer serves every response, the result is copied out of it. */
const scratch = Buffer.allocUnsafe(65_535);

export interface Sections {
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

/**
 * A response: `header` = the id and the flags word (QR, opcode, AA, TC, RD, rcode), `question` = the query's
 * question bytes as received (name, type, class). Throws a RangeError past 65535 bytes.
 */
export function encodeResponse(id: number, flags: number, question: Buffer, sections: Sections): Buffer {
  const w = new Writer(scratch);
  w.u16(id);
  w.u16(flags);
  w.u16(1);
  w.u16(sections.answers.length);
  w.u16(sections.authorities.length);
  w.u16(sections.additionals.length);
  w.question(question, 12);
  w.bytes(question);
  for (const r of sections.answers) record(w, r);
  for (const r of sections.authorities) record(w, r);
  for (const r of sections.additionals) record(w, r);
  return Buffer.from(w.buf.subarray(0, w.at));
}

/** The question's bytes (name, type, class) of a query, or undefined if its name is not plain labels. */
export function questionBytes(msg: Buffer): Buffer | undefined {
  let at = 12;
  while (at < msg.length && msg[at] !== 0) {
    if ((msg[at] & 0xc0) !== 0) return undefined;
    at += 1 + msg[at];
  }
  if (at + 5 > msg.length) return undefined;
  return msg.subarray(12, at + 5);
}
