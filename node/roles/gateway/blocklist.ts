/**
 * The network's blocklist at a gateway's front door (issue 17, D54): client addresses and ranges, and path prefixes
 * per site hostname (or "*" for every site), from the configuration document's `blocklist` section. Built once
 * per configuration (`compileBlocklist`, which names every invalid entry), then swapped whole; a request costs one
 * `net.BlockList` check for its address and, only when its hostname has rules, one path normalisation and a
 * `startsWith` per rule of that hostname and of "*".
 *
 * Addresses: IPv4 and IPv6 addresses and CIDR ranges. A client on an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
 * what a dual-stack socket reports) matches IPv4 rules, and a mapped rule (`::ffff:a.b.c.0/120`) matches IPv4
 * clients. The address is the TCP peer's: X-Forwarded-For is client input and never consulted.
 *
 * Paths: a rule's prefix and a request's path are compared after the same normalisation (`normalizePath`), which
 * undoes what an attacker uses to slip past a prefix while the origin still serves the blocked file: the query
 * and fragment are dropped, percent-escapes are decoded (repeatedly, for double encodings; a path still encoded
 * after MAX_DECODINGS rounds is refused outright), backslashes become slashes, runs of slashes collapse to one,
 * and `.` and `..` segments are resolved (RFC 3986 5.2.4). The result is at least as reduced as what any origin
 * makes of the forwarded path, so a match errs on the side of refusing. A prefix is a plain string prefix:
 * "/private" refuses "/private", "/private/x" and "/privateer"; "/private/" only what is inside the folder.
 * Matching is case-sensitive (RFC 3986 paths are; a case-insensitive origin is its owner's choice).
 */
import { BlockList, isIP } from "node:net";

import type { Blocklist as BlocklistSection } from "../../../offchain/common/protocol/netConfig";
import { nodeError } from "../../errors";
import { normalizeHost } from "./parseSites";

/** Percent-decoding rounds at most; a path that still changes after them is refused. */
export const MAX_DECODINGS = 4;
/** Problems listed at most when a blocklist is refused. */
const MAX_PROBLEMS = 50;

export interface BlockMatch {
  kind: "ip" | "path";
  /** The rule as the configuration wrote it: an address or range, or `hostname prefix`. */
  rule: string;
}

interface Range {
  /** The rule as written. */
  rule: string;
  family: 4 | 6;
  network: bigint;
  prefix: number;
}

interface PathEntry {
  rule: string;
  prefix: string;
}

/** An accepted blocklist: what the front door checks each request against. Immutable. */
export class CompiledBlocklist {
  private readonly list = new BlockList();
  /** family -> prefix length -> masked network -> the rule (to name what matched). */
  private readonly ranges = new Map<4 | 6, Map<number, Map<bigint, string>>>([
    [4, new Map()],
    [6, new Map()],
  ]);
  private readonly paths = new Map<string, PathEntry[]>();
  readonly ipRules: number;
  readonly pathRules: number;

  constructor(ranges: readonly Range[], paths: ReadonlyMap<string, PathEntry[]>) {
    for (const range of ranges) {
      const byPrefix = this.ranges.get(range.family)!;
      let networks = byPrefix.get(range.prefix);
      if (!networks) byPrefix.set(range.prefix, (networks = new Map()));
      if (!networks.has(range.network)) networks.set(range.network, range.rule);
      const text = range.family === 4 ? v4Text(range.network) : v6Text(range.network);
      this.list.addSubnet(text, range.prefix, range.family === 4 ? "ipv4" : "ipv6");
    }
    for (const [host, entries] of paths) this.paths.set(host, [...entries]);
    this.ipRules = ranges.length;
    this.pathRules = [...paths.values()].reduce((n, e) => n + e.length, 0);
  }

  /** The rule refusing the client at `address` (the socket's remote address), if any. */
  address(address: string | undefined): BlockMatch | undefined {
    if (this.ipRules === 0 || address === undefined) return undefined;
    const parsed = parseAddress(address);
    if (!parsed) return undefined;
    const family = parsed.family === 4 ? "ipv4" : "ipv6";
    if (!this.list.check(parsed.text, family)) return undefined;
    return { kind: "ip", rule: this.nameRange(parsed.family, parsed.value) ?? parsed.text };
  }

  /** The rule refusing `path` (a request target's path and query) on site `hostname`, if any. */
  path(hostname: string, path: string): BlockMatch | undefined {
    const own = this.paths.get(hostname);
    const every = this.paths.get("*");
    if (!own && !every) return undefined;
    const normal = normalizePath(path);
    const first = (own ?? every)![0];
    if (normal === undefined) return { kind: "path", rule: first.rule };
    for (const entries of [own, every])
      for (const entry of entries ?? []) if (normal.startsWith(entry.prefix)) return { kind: "path", rule: entry.rule };
    return undefined;
  }

  /** The first rule (longest prefix first) covering `value`. */
  private nameRange(family: 4 | 6, value: bigint): string | undefined {
    const byPrefix = this.ranges.get(family)!;
    const bits = family === 4 ? 32 : 128;
    const lengths = [...byPrefix.keys()].sort((a, b) => b - a);
    for (const length of lengths) {
      const rule = byPrefix.get(length)!.get(mask(value, length, bits));
      if (rule !== undefined) return rule;
    }
    // An IPv4 client covered by a mapped IPv6 rule.
    if (family === 4) return this.nameRange(6, MAPPED | value);
    return undefined;
  }
}

/** The front door's refusal for `match`: 403 EDGE_NODE_BLOCKED naming the rule as written; `counter` counts it. */
export function blockedError(match: BlockMatch, counter?: { inc(labels: { kind: BlockMatch["kind"] }): void }): Error {
  counter?.inc({ kind: match.kind });
  const what = match.kind === "ip" ? "the client's address" : "this path";
  return nodeError("EDGE_NODE_BLOCKED", `${what} is blocked by the network's blocklist (rule ${match.rule})`, {
    details: { kind: match.kind, rule: match.rule },
  });
}

/** The empty blocklist: refuses nothing. */
export const EMPTY_BLOCKLIST = new CompiledBlocklist([], new Map());

/**
 * Validates and compiles a configuration's blocklist section. Throws an Error naming every invalid entry (at
 * most 50): an address or range that is no IP or CIDR, a prefix length past the family's, a hostname that is
 * neither "*" nor a site hostname.
 */
export function compileBlocklist(section: BlocklistSection): CompiledBlocklist {
  const problems: string[] = [];
  const ranges: Range[] = [];
  section.ipRanges.forEach((rule, i) => {
    const range = parseRange(rule);
    if (typeof range === "string") problems.push(`blocklist.ipRanges[${i}] "${rule.slice(0, 64)}" ${range}`);
    else ranges.push(range);
  });
  const paths = new Map<string, PathEntry[]>();
  section.paths.forEach(({ hostname, prefix }, i) => {
    const host = hostname === "*" ? "*" : normalizeHost(hostname);
    if (host === undefined || (host !== hostname && host !== hostname.toLowerCase().replace(/\.$/, ""))) {
      problems.push(`blocklist.paths[${i}].hostname "${hostname.slice(0, 80)}" is neither "*" nor a DNS name`);
      return;
    }
    const normal = normalizePath(prefix);
    if (normal === undefined) {
      problems.push(`blocklist.paths[${i}].prefix is percent-encoded more than ${MAX_DECODINGS} times`);
      return;
    }
    let entries = paths.get(host);
    if (!entries) paths.set(host, (entries = []));
    entries.push({ rule: `${hostname} ${prefix}`, prefix: normal });
  });
  if (problems.length > 0) {
    const listed = problems.slice(0, MAX_PROBLEMS);
    if (problems.length > MAX_PROBLEMS) listed.push(`and ${problems.length - MAX_PROBLEMS} more problems`);
    throw new Error(`invalid blocklist: ${listed.join("; ")}`);
  }
  return new CompiledBlocklist(ranges, paths);
}

const ESCAPES = /(?:%[0-9a-fA-F]{2})+/g;

/** One round of percent-decoding: each run of escapes is read as UTF-8 (invalid bytes become U+FFFD). */
function decodeOnce(text: string): string {
  return text.replace(ESCAPES, (run) => Buffer.from(run.replace(/%/g, ""), "hex").toString("utf8"));
}

/**
 * A path as the blocklist compares it (see the file's comment): no query or fragment, decoded, `\` as `/`, no
 * repeated slashes, dot segments resolved, always starting with "/". Undefined when it is still percent-encoded
 * after MAX_DECODINGS rounds (no legitimate path is; the front door refuses it where rules apply).
 */
export function normalizePath(target: string): string | undefined {
  let path = target;
  const cut = path.search(/[?#]/);
  if (cut >= 0) path = path.slice(0, cut);
  for (let round = 0; path.includes("%"); round++) {
    const next = decodeOnce(path);
    if (next === path) break;
    if (round === MAX_DECODINGS) return undefined;
    path = next;
  }
  if (!/[\\]|\/\/|\/\.|^[^/]/.test(path)) return path; // the usual path: nothing to resolve
  const segments = path.replace(/\\/g, "/").split("/");
  const out: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    const last = i === segments.length - 1;
    if (segment === "..") out.pop();
    else if (segment !== "." && segment !== "") out.push(segment);
    else if (last) out.push(""); // "/a/." and "/a/" keep their trailing slash
    if (segment === ".." && last) out.push("");
  }
  return `/${out.join("/")}`;
}

const MAPPED = 0xffffn << 32n;

function mask(value: bigint, prefix: number, bits: number): bigint {
  if (prefix === 0) return 0n;
  const keep = ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
  return value & keep;
}

/** An address as the blocklist compares it: a mapped IPv4 address as IPv4. */
function parseAddress(address: string): { family: 4 | 6; value: bigint; text: string } | undefined {
  const family = isIP(address);
  if (family === 4) return { family, value: v4Value(address), text: address };
  if (family !== 6) return undefined;
  const value = v6Value(address);
  if (value >> 32n === 0xffffn) {
    const v4 = value & 0xffffffffn;
    return { family: 4, value: v4, text: v4Text(v4) };
  }
  return { family: 6, value, text: address };
}

/** A rule: an address or CIDR range (a mapped IPv6 range of /96 or longer becomes the IPv4 range it covers). */
function parseRange(rule: string): Range | string {
  const slash = rule.indexOf("/");
  const address = slash >= 0 ? rule.slice(0, slash) : rule;
  const family = isIP(address);
  if (family !== 4 && family !== 6) return "is not an IPv4 or IPv6 address or CIDR range";
  const bits = family === 4 ? 32 : 128;
  const prefix = slash >= 0 ? Number(rule.slice(slash + 1)) : bits;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) return `has a prefix length past /${bits}`;
  const value = family === 4 ? v4Value(address) : v6Value(address);
  if (family === 6 && prefix >= 96 && value >> 32n === 0xffffn)
    return { rule, family: 4, network: mask(value & 0xffffffffn, prefix - 96, 32), prefix: prefix - 96 };
  return { rule, family, network: mask(value, prefix, bits), prefix };
}

function v4Value(text: string): bigint {
  return text.split(".").reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
}

function v4Text(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
}

/** A valid IPv6 address (isIP said so) as a 128-bit number; an embedded IPv4 tail is read as two groups. */
function v6Value(text: string): bigint {
  let body = text.split("%")[0];
  const tail = body.lastIndexOf(":");
  if (body.slice(tail + 1).includes(".")) {
    const v4 = v4Value(body.slice(tail + 1));
    body = `${body.slice(0, tail + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = body.includes("::") ? body.split("::") : [body, undefined];
  const left = head ? head.split(":") : [];
  const right = rest ? rest.split(":") : [];
  const groups = rest === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.reduce((n, group) => (n << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function v6Text(value: bigint): string {
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  return groups.join(":");
}
