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
  MAX_DOCUMENT_BYTES,
  type NetworkConfig,
  NetworkConfigSchema,
  encodeDocument,
} from "../../../offchain/common/protocol";
import { nodeError } from "../../errors";
import { parseBlocklist } from "../gateway/blocklist";
import { parseSites } from "../gateway/parseSites";

/**
 * Room kept below MAX_DOCUMENT_BYTES for appends (1 MiB): the fold of an accepted effective document only changes
 * its version number and drops expired revocations, so it always fits, and an upload of the next version by hand
 * has space to fix things.
 */
export const DOCUMENT_HEADROOM_BYTES = 1024 * 1024;
export const MAX_APPEND_DOCUMENT_BYTES = MAX_DOCUMENT_BYTES - DOCUMENT_HEADROOM_BYTES;

const invalid = (message: string) => nodeError("EDGE_NODE_CONFIG_INVALID", message);

/**
 * Throws EDGE_NODE_CONFIG_INVALID naming the problem when a subscriber would refuse `doc`; returns its canonical
 * bytes. With `op` (the one delta that made `doc` from an accepted document), a `blocklist.add` has only its entry
 * validated, as gateways do for appended entries, and a removal or revocation does not re-validate the sections it
 * cannot make invalid; without it, everything is checked.
 */
export function checkDocument(doc: NetworkConfig, maxBytes: number, op?: DeltaOp): Buffer {
  if (!Value.Check(NetworkConfigSchema, doc)) {
    const first = Value.Errors(NetworkConfigSchema, doc)[0];
    throw invalid(`the configuration would not match its schema at ${first?.instancePath || "/"}: ${first?.message}`);
  }
  let bytes: Buffer;
  try {
    bytes = encodeDocument(doc);
  } catch (error) {
    throw invalid(`the configuration has no canonical form: ${messageOf(error)}`);
  }
  if (bytes.length > maxBytes)
    throw invalid(`the configuration would be ${bytes.length} bytes, over the ${maxBytes} allowed`);
  if (op === undefined || op.kind === "site.put") parseSites({ sites: doc.sites }); // throws EDGE_NODE_SITES_INVALID
  const list = doc.blocklist;
  try {
    if (op === undefined) parseBlocklist(list);
    else if (op.kind === "blocklist.add")
      parseBlocklist("ipRange" in op ? { ipRanges: [op.ipRange], paths: [] } : { ipRanges: [], paths: [op.path] });
  } catch (error) {
    throw invalid(messageOf(error));
  }
  return bytes;
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
