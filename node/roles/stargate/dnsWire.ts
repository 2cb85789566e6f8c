/**
 * Edge DNS on the wire (D57): one query's bytes in, one response's bytes out (or nothing), with dns-packet.
 *
 * - Shorter than a header, or a response (QR set): dropped. Undecodable, not one question, or several OPT
 *   records: FORMERR (the header's id echoed). An opcode other than QUERY: NOTIMP. A class other than IN, and
 *   AXFR/IXFR: REFUSED.
 * - EDNS (RFC 6891): an OPT in the query is answered with one (payload size 1232, version 0); a version above 0
 *   is BADVERS. A client subnet option (RFC 7871) goes to the lookup (the client's region, D69) and is echoed
 *   with the scope the answer holds for; a malformed one, or two, is FORMERR. The UDP limit is 512 bytes without EDNS, else the client's size between 512 and 1232.
 * - Over the limit: the additional section goes first; if still over, TC with the question only (the client
 *   retries over TCP, where the limit is 65535).
 * - The question is echoed as asked (case and all), and answers at the asked name carry its case (dnsEncode.ts).
 */
import * as packet from "dns-packet";
import type { Answer, DecodedPacket, OptAnswer, Question } from "dns-packet";
import ipaddr from "ipaddr.js";

import { type Kind, RCODE, type Reply, refused } from "./dnsAnswer";
import { encodeResponse, questionBytes } from "./dnsEncode";

/** The EDNS payload size we advertise and the most we send over UDP (the DNS flag day 2020 figure). */
export const EDNS_MAX_UDP = 1232;
const BADVERS = 16;
const QR = 1 << 15;

export interface Outcome {
  /** Undefined: dropped, nothing is sent. */
  response?: Buffer;
  kind: Kind;
  rcode: number;
  truncated: boolean;
  reply?: Reply;
  /** The question (lower-case name, type), when one was read. */
  qname?: string;
  qtype?: string;
}

/** A query's EDNS client subnet (RFC 7871): the client's network as its resolver gave it. */
export interface ClientSubnet {
  family: 1 | 2;
  sourcePrefixLength: number;
  ip: string;
}

/** `scope`: for a client subnet's echo, the prefix length the answer holds for (set by the lookup). */
export type Lookup = (qname: string, qtype: string, subnet?: ClientSubnet) => Reply & { scope?: number };

const CLIENT_SUBNET = 8;

/**
 * The query's client subnet; undefined when it has none; "bad" when it is malformed (a family other than IPv4 or
 * IPv6, a source prefix longer than the family's, a scope other than 0: FORMERR, RFC 7871 7.1.1), or more than one.
 */
function clientSubnet(query: OptAnswer | undefined): ClientSubnet | "bad" | undefined {
  const found = (query?.options ?? []).filter((o) => o.code === CLIENT_SUBNET);
  if (found.length === 0) return undefined;
  if (found.length > 1) return "bad";
  const o = found[0] as { family?: number; sourcePrefixLength?: number; scopePrefixLength?: number; ip?: string };
  const max = o.family === 1 ? 32 : o.family === 2 ? 128 : -1;
  const source = o.sourcePrefixLength ?? -1;
  if (max < 0 || source < 0 || source > max || o.scopePrefixLength !== 0 || typeof o.ip !== "string") return "bad";
  return { family: o.family as 1 | 2, sourcePrefixLength: source, ip: o.ip };
}

/** The client subnet option echoed with `scope` (RFC 7871 7.2.1): family, source, scope, the source's bytes. */
function subnetEcho(subnet: ClientSubnet, scope: number): { code: number; data: Buffer } {
  const head = Buffer.from([0, subnet.family, subnet.sourcePrefixLength, scope]);
  const address = Buffer.from(ipaddr.parse(subnet.ip).toByteArray());
  return { code: CLIENT_SUBNET, data: Buffer.concat([head, address.subarray(0, Math.ceil(subnet.sourcePrefixLength / 8))]) }; // prettier-ignore
}

/** A header-only response (FORMERR/NOTIMP to what could not be read). */
function bare(msg: Buffer, rcode: number): Buffer {
  const out = Buffer.alloc(12);
  msg.copy(out, 0, 0, 2);
  out.writeUInt16BE(QR | (msg.readUInt16BE(2) & 0x7900) | rcode, 2); // keeps opcode and RD
  return out;
}

const malformed = (msg: Buffer, rcode: number = RCODE.FORMERR): Outcome => ({
  response: bare(msg, rcode),
  kind: "malformed",
  rcode,
  truncated: false,
});

function opt(
  query: OptAnswer | undefined,
  extendedRcode = 0,
  options: Array<{ code: number; data: Buffer }> = [],
): Answer[] {
  if (!query) return [];
  return [
    {
      name: ".",
      type: "OPT",
      udpPayloadSize: EDNS_MAX_UDP,
      extendedRcode,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      // Wire-form options: dnsEncode.ts writes `data` as is.
      options: options as unknown as OptAnswer["options"],
    },
  ];
}

function encode(
  query: DecodedPacket,
  rcode: number,
  aa: boolean,
  sections: Pick<Reply, "answers" | "authorities" | "additionals">,
  tc = false,
): Buffer {
  const flags =
    QR +
    (((query.flags ?? 0) >> 11) & 0xf) * 2048 +
    (aa ? packet.AUTHORITATIVE_ANSWER : 0) +
    (tc ? packet.TRUNCATED_RESPONSE : 0) +
    (query.flag_rd ? packet.RECURSION_DESIRED : 0) +
    (rcode & 0xf);
  return encodeResponse(query.id ?? 0, flags, (query as Asked).raw, sections);
}

/** A decoded query with its question's bytes as received. */
type Asked = DecodedPacket & { raw: Buffer };

function sized(query: DecodedPacket, reply: Reply, edns: Answer[], limit: number): { bytes: Buffer; tc: boolean } {
  const { answers, authorities, additionals } = reply;
  const full = encode(query, reply.rcode, reply.aa, { answers, authorities, additionals: [...additionals, ...edns] });
  if (full.length <= limit) return { bytes: full, tc: false };
  const lean = encode(query, reply.rcode, reply.aa, { answers, authorities, additionals: edns });
  // A referral's glue is needed to follow it (RFC 9471): without room for it the answer is truncated.
  const referralGlue = answers.length === 0 && authorities.some((a) => a.type === "NS") && additionals.length > 0;
  if (lean.length <= limit && !referralGlue) return { bytes: lean, tc: false };
  return {
    bytes: encode(query, reply.rcode, reply.aa, { answers: [], authorities: [], additionals: edns }, true),
    tc: true,
  };
}

/**
 * Encoded responses by limit, EDNS, type, class and lower-case name, for one index (the caller clears it when the
 * index changes). Answers with site records are not kept: they rotate per query.
 */
export type ResponseCache = Map<string, Outcome & { questionLength: number }>;
const MAX_CACHED = 10_000;

/** A kept response for a new query: its id, RD bit and question (the asker's spelling) put in. */
function reuse(hit: Outcome & { questionLength: number }, msg: Buffer, raw: Buffer): Outcome {
  const { kind, rcode, truncated, reply, qname, qtype } = hit;
  const response = Buffer.from(hit.response!);
  msg.copy(response, 0, 0, 2);
  response[2] = (response[2] & 0xfe) | (msg[2] & 0x01);
  raw.copy(response, 12);
  return { response, kind, rcode, truncated, reply, qname, qtype };
}

/** The response to one message received over UDP (`tcp` false) or TCP. */
export function respond(msg: Buffer, tcp: boolean, lookup: Lookup, cache?: ResponseCache): Outcome {
  if (msg.length < 12 || (msg.readUInt16BE(2) & QR) !== 0) return { kind: "malformed", rcode: -1, truncated: false };
  let query: DecodedPacket;
  try {
    query = packet.decode(msg);
  } catch {
    return malformed(msg);
  }
  const opcode = (msg.readUInt16BE(2) >> 11) & 0xf;
  if (opcode !== 0) return malformed(msg, RCODE.NOTIMP);
  const opts = (query.additionals ?? []).filter((a): a is OptAnswer => a.type === "OPT");
  if (query.questions?.length !== 1 || opts.length > 1) return malformed(msg);
  const subnet = clientSubnet(opts[0]);
  if (subnet === "bad") return malformed(msg);
  let edns = opt(opts[0]);
  const question: Question = query.questions[0];
  const raw = questionBytes(msg);
  if (!raw) return malformed(msg);
  (query as Asked).raw = raw;
  const empty = { answers: [], authorities: [], additionals: edns };
  try {
    if (opts[0] && opts[0].ednsVersion > 0) {
      const response = encode(query, 0, false, { ...empty, additionals: opt(opts[0], BADVERS >> 4) });
      return { response, kind: "malformed", rcode: BADVERS, truncated: false };
    }
    const lower = question.name.toLowerCase().replace(/\.$/, "");
    const limit = tcp ? 65_535 : opts[0] ? Math.min(EDNS_MAX_UDP, Math.max(512, opts[0].udpPayloadSize)) : 512;
    const key = `${limit}|${opts.length}|${question.type}|${question.class}|${lower}`;
    const hit = subnet ? undefined : cache?.get(key);
    if (hit && hit.questionLength === raw.length) return reuse(hit, msg, raw);
    const reply =
      (question.class ?? "IN") !== "IN" || question.type === "AXFR" || question.type === "IXFR"
        ? refused()
        : lookup(lower, question.type, subnet);
    // The subnet is echoed with the scope the answer holds for (0: any client), and such answers are not kept.
    if (subnet) edns = opt(opts[0], 0, [subnetEcho(subnet, (reply as { scope?: number }).scope ?? 0)]);
    const { bytes, tc } = sized(query, reply, edns, limit);
    const outcome = { response: bytes, kind: reply.kind, rcode: reply.rcode, truncated: tc, reply, qname: lower, qtype: question.type }; // prettier-ignore
    if (cache && !reply.rotated && !subnet) {
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(key, { ...outcome, questionLength: raw.length });
    }
    return outcome;
  } catch {
    // A name dns-packet decoded but cannot encode again (a label holding a dot): not a question we can answer.
    return malformed(msg);
  }
}
