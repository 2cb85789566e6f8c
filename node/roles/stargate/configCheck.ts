/**
 * What the authority checks before it signs or anchors anything (D53, R17-2): the document a delta or a fold
 * produces must be one every subscriber takes. A gateway validates a configuration with the sites rules
 * (parseSites) and the blocklist compiler (parseBlocklist); every node parses the document against
 * NetworkConfigSchema, in canonical JSON, at most MAX_DOCUMENT_BYTES. A document any of them would refuse is never
 * signed (the delta is refused with 400) nor anchored (the fold fails and says why).
 */
import { Value } from "typebox/value";

import { messageOf } from "../../../offchain/common/errors";
import {
  type DeltaOp,
  MAX_BLOCKLIST_ENTRIES,
  MAX_DOCUMENT_BYTES,
  MAX_DRAINING,
  MAX_REVOKED,
  MAX_ZONES,
  type NetworkConfig,
  NetworkConfigSchema,
  canonicalBytes,
} from "../../../offchain/common/protocol";
import { nodeError } from "../../errors";
import { parseBlocklist } from "../gateway/blocklist";
import { MAX_SITES, parseSites } from "../gateway/parseSites";

/**
 * Room kept below MAX_DOCUMENT_BYTES for appends (1 MiB): the fold of an accepted effective document only changes
 * its version number and drops expired revocations, so it always fits, and an upload of the next version by hand
 * has space to fix things.
 */
export const DOCUMENT_HEADROOM_BYTES = 1024 * 1024;
export const MAX_APPEND_DOCUMENT_BYTES = MAX_DOCUMENT_BYTES - DOCUMENT_HEADROOM_BYTES;

/**
 * DNS zones' budgets (R18-3, D62), checked on every zone.put: one owner's zones hold at most
 * MAX_ZONE_RECORDS_PER_OWNER records and MAX_ZONE_BYTES_PER_OWNER canonical bytes (403 EDGE_NODE_ZONE_QUOTA); all
 * zones together at most MAX_ZONES_BYTES (409 EDGE_NODE_ZONES_FULL), and a zone.put never takes the document past
 * MAX_APPEND_DOCUMENT_BYTES - RESERVED_BYTES: the last RESERVED_BYTES are for blocklist.add and token.revoke, which
 * zones can never crowd out.
 */
export const MAX_ZONE_RECORDS_PER_OWNER = 2000;
export const MAX_ZONE_BYTES_PER_OWNER = 256 * 1024;
export const MAX_ZONES_BYTES = 4 * 1024 * 1024;
export const RESERVED_BYTES = 2 * 1024 * 1024;

const invalid = (message: string) => nodeError("EDGE_NODE_CONFIG_INVALID", message);

/** Throws EDGE_NODE_CONFIG_INVALID naming the problem when a subscriber would refuse `doc`; returns its canonical bytes. */
export function checkDocument(doc: NetworkConfig, maxBytes: number): Buffer {
  if (!Value.Check(NetworkConfigSchema, doc)) {
    const first = Value.Errors(NetworkConfigSchema, doc)[0];
    throw invalid(`the configuration would not match its schema at ${first?.instancePath || "/"}: ${first?.message}`);
  }
  const bytes = canonical(doc);
  if (bytes.length > maxBytes)
    throw invalid(`the configuration would be ${bytes.length} bytes, over the ${maxBytes} allowed`);
  parseSites({ sites: doc.sites }); // throws EDGE_NODE_SITES_INVALID
  try {
    parseBlocklist(doc.blocklist);
  } catch (error) {
    throw invalid(messageOf(error));
  }
  return bytes;
}

/** The canonical JSON bytes of `value`, or 400 when it has none (a lone surrogate). */
export function canonical(value: unknown): Buffer {
  try {
    return canonicalBytes(value);
  } catch (error) {
    throw invalid(`the configuration has no canonical form: ${messageOf(error)}`);
  }
}

/**
 * Checks the document `op` makes from an accepted one, as `checkDocument` would, without re-reading what cannot have
 * changed (the schema held for the rest, the op matched its own; a full check of 10,000 sites and 100,000 ranges
 * takes about a second): the lists' lengths, `size` (an upper bound of its encoded size: the accepted document's plus
 * the operation's), the sites after a `site.put`, the entry of a `blocklist.add`.
 */
export function checkAppend(doc: NetworkConfig, op: DeltaOp, size: number): void {
  const lengths: [string, number, number][] = [
    ["sites", doc.sites.length, MAX_SITES],
    ["blocklist.ipRanges", doc.blocklist.ipRanges.length, MAX_BLOCKLIST_ENTRIES],
    ["blocklist.paths", doc.blocklist.paths.length, MAX_BLOCKLIST_ENTRIES],
    ["revoked", doc.revoked.length, MAX_REVOKED],
    ["zones", doc.zones.length, MAX_ZONES],
    ["draining", doc.draining?.length ?? 0, MAX_DRAINING],
  ];
  for (const [name, length, max] of lengths)
    if (length > max) throw invalid(`the configuration would have ${length} ${name}, over the ${max} allowed`);
  if (size > MAX_APPEND_DOCUMENT_BYTES)
    throw invalid(`the configuration would be up to ${size} bytes, over the ${MAX_APPEND_DOCUMENT_BYTES} allowed`);
  if (op.kind === "site.put") parseSites({ sites: doc.sites });
  if (op.kind === "zone.put") checkZoneBudgets(doc, op.zone.owner, size);
  if (op.kind === "blocklist.add")
    try {
      parseBlocklist("ipRange" in op ? { ipRanges: [op.ipRange], paths: [] } : { ipRanges: [], paths: [op.path] });
    } catch (error) {
      throw invalid(messageOf(error));
    }
}

/** The zone budgets of `doc` after a zone.put for `owner` (the document then up to `size` bytes). */
function checkZoneBudgets(doc: NetworkConfig, owner: string, size: number): void {
  let total = 0;
  let bytes = 0;
  let records = 0;
  for (const zone of doc.zones) {
    const length = canonical(zone).length;
    total += length;
    if (zone.owner.toLowerCase() !== owner.toLowerCase()) continue;
    bytes += length;
    records += zone.records.length;
  }
  if (records > MAX_ZONE_RECORDS_PER_OWNER || bytes > MAX_ZONE_BYTES_PER_OWNER)
    throw nodeError(
      "EDGE_NODE_ZONE_QUOTA",
      `${owner}'s zones would hold ${records} records in ${bytes} bytes, over the ${MAX_ZONE_RECORDS_PER_OWNER} records or ${MAX_ZONE_BYTES_PER_OWNER} bytes one owner may`,
    );
  const room = MAX_APPEND_DOCUMENT_BYTES - RESERVED_BYTES;
  if (total > MAX_ZONES_BYTES || size > room)
    throw nodeError(
      "EDGE_NODE_ZONES_FULL",
      `the zones would take ${total} bytes (at most ${MAX_ZONES_BYTES}) in a configuration of up to ${size} (zones may fill ${room})`,
    );
}

/** With the u flag, a pair of surrogates reads as one code point: only a lone one is of category Cs. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Strings that are not well-formed UTF-16 (a lone surrogate) have no canonical JSON form (R17-9). */
export function illFormedString(value: unknown): boolean {
  if (typeof value === "string") return LONE_SURROGATE.test(value);
  if (Array.isArray(value)) return value.some(illFormedString);
  if (typeof value === "object" && value !== null)
    return Object.entries(value).some(([k, v]) => LONE_SURROGATE.test(k) || illFormedString(v));
  return false;
}
