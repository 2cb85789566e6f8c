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

  /** Registers the suffixes of a name written at `offset` (its labels as written) for later pointers. */
  remember(labels: string[], offset: number) {
    let at = offset;
    for (let i = 0; i < labels.length && at < 0x3fff; i++) {
      const key = labels.slice(i).join(".").toLowerCase();
      if (!this.names.has(key)) this.names.set(key, at);
      at += 1 + Buffer.byteLength(labels[i]);
    }
  }

  /** Registers a name in wire form (length-prefixed labels, as latin1 text) written at `offset`. */
  point(wire: string, offset: number) {
    const labels: string[] = [];
    for (let i = 0; i < wire.length; i += 1 + wire.charCodeAt(i))
      labels.push(wire.slice(i + 1, i + 1 + wire.charCodeAt(i)));
    const key = labels.join(".").toLowerCase();
    if (!this.names.has(key)) this.names.set(key, offset);
  }

  name(text: string) {
    const trimmed = text.replace(/\.$/, "");
    const labels = trimmed === "" ? [] : trimmed.split(".");
    const start = this.at;
    for (let i = 0; i < labels.length; i++) {
      const pointer = this.names.get(labels.slice(i).join(".").toLowerCase());
      if (pointer !== undefined) {
        this.remember(labels.slice(0, i), start);
        this.u16(0xc000 | pointer);
        return;
      }
      const label = Buffer.from(labels[i]);
      if (label.length === 0 || label.length > 63) throw new RangeError(`a label of ${label.length} bytes`);
      this.u8(label.length);
      this.bytes(label);
    }
    this.remember(labels, start);
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
    w.u16(0);
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
  const starts: number[] = [];
  for (let at = 0; question[at] !== 0; at += 1 + question[at]) starts.push(at);
  const end = question.length - 5;
  for (const at of starts) w.point(question.toString("latin1", at, end), 12 + at);
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
