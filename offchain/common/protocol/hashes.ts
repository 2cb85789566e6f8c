/**
 * The canonical encodings and hashes that signed messages carry instead of big payloads (an EIP-712 hash of
 * 1,000 structs costs ~35 ms): the receiver recomputes them from the body it got.
 */
import canonicalize from "canonicalize";
import type { Hex } from "viem";

import { keccak256 } from "../crypto";

export interface JobReportEntry {
  host: string;
  /** A bigint, or a decimal string as it arrives in JSON. */
  jobs: bigint | string;
  /** The host's latest signed tally for this gateway and epoch (hostTally.ts), when it handed one: its count, */
  attested?: bigint | string;
  /** its sequence (below 10^15) */
  tallySeq?: bigint | string;
  /** and its signature (not covered by the entries hash: the host's signature binds the tally by itself). */
  tallySig?: string;
}

const DECIMAL = /^\d+$/;
const PACKED_HEX = /^[0-9a-f]*$/;

/** jobs as 64 hex digits (uint256). */
function jobsWord(jobs: bigint | string): string {
  let hex: string;
  if (typeof jobs === "string") {
    if (!DECIMAL.test(jobs)) throw new TypeError(`jobs "${jobs}" is not a decimal integer`);
    hex = jobs.length <= 15 ? Number(jobs).toString(16) : BigInt(jobs).toString(16);
  } else {
    if (jobs < 0n) throw new RangeError(`jobs ${jobs} is negative`);
    hex = jobs.toString(16);
  }
  if (hex.length > 64) throw new RangeError(`jobs ${jobs} does not fit 256 bits`);
  return hex.padStart(64, "0");
}

/** A tally's sequence as 16 hex digits (it is below 10^15). */
function sequenceWord(sequence: bigint | string): string {
  const word = jobsWord(sequence);
  if (!word.startsWith(HIGH_ZEROS)) throw new RangeError(`tally sequence ${sequence} does not fit 64 bits`);
  return word.slice(48);
}
const HIGH_ZEROS = "0".repeat(48);

const NO_TALLY = "00" + "0".repeat(64 + 16);
/** Bytes per packed entry: host 20, jobs 32, has-tally 1, attested 32, tally sequence 8. */
const ROW_BYTES = 93;

/**
 * Entries sorted by host (lowercase), each packed as host (20 bytes) || jobs (32) || 01 when the entry carries a
 * host tally else 00 (1) || attested (32) || tally sequence (8), zeros without a tally; then keccak256. A report's
 * signature so covers the attested counts it carries; the tally signatures are checked on their own.
 */
export function jobEntriesHash(entries: readonly JobReportEntry[]): Hex {
  // Each row is the packed entry in hex; hosts have a fixed width, so sorting rows sorts by host. This is the hot
  // path of ingestion (1,000 entries a report): no per-entry regex or BigInt when counts are small.
  const rows = entries.map(({ host, jobs, attested, tallySeq }) => {
    if (host.length !== 42 || host[0] !== "0" || (host[1] !== "x" && host[1] !== "X"))
      throw new TypeError(`host ${host} is not an address`);
    const tally =
      attested === undefined || tallySeq === undefined ? NO_TALLY : "01" + jobsWord(attested) + sequenceWord(tallySeq);
    return host.slice(2).toLowerCase() + jobsWord(jobs) + tally;
  });
  const packed = Buffer.from(rows.sort().join(""), "hex");
  // Hex decoding stops at the first non-hex digit, so a full length means every host was hex.
  if (packed.length !== ROW_BYTES * rows.length) {
    const bad = rows.find((row) => !PACKED_HEX.test(row))!;
    throw new TypeError(`host 0x${bad.slice(0, 40)} is not an address`);
  }
  return keccak256(packed);
}

export interface UsageRecord {
  id: string;
  gateway: string;
  customer: string;
  service: string;
  metric: string;
  /** Decimal integer string. */
  quantity: string;
  /** Unix milliseconds. */
  time: number;
}

/** The body hash a customer signs in a JobRequest: keccak256 of the JSON body's RFC 8785 canonical form. */
export function jobBodyHash(body: unknown): Hex {
  return keccak256(Buffer.from(canonicalize(body) ?? "", "utf8"));
}

/** keccak256 of the records' RFC 8785 canonical JSON. */
export function usageRecordsHash(records: readonly UsageRecord[]): Hex {
  return keccak256(Buffer.from(canonicalUsageRecords(records), "utf8"));
}

/** A usage record's keys in RFC 8785 order (UTF-16 code units). */
const RECORD_KEYS = ["customer", "gateway", "id", "metric", "quantity", "service", "time"];
const isString = (value: unknown): value is string => typeof value === "string";
const isSafeInteger = (value: unknown): value is number => Number.isSafeInteger(value);

/**
 * RFC 8785 of usage records, on billing's ingestion path (1,000 records a batch). For records of exactly the
 * documented shape (string fields; quantity a string or safe integer; time a safe integer) RFC 8785 is what
 * JSON.stringify writes with the keys in sorted order (ES string escaping, integers in decimal): one native call
 * with the key list as replacer, a tenth of the general `canonicalize`. Any other input goes through
 * `canonicalize`. Property-tested against it in test/offchain/common/crypto.test.ts.
 */
export function canonicalUsageRecords(records: readonly UsageRecord[]): string {
  for (const r of records) {
    if (
      typeof r !== "object" ||
      r === null ||
      Object.keys(r).length !== RECORD_KEYS.length ||
      !isString(r.customer) ||
      !isString(r.gateway) ||
      !isString(r.id) ||
      !isString(r.metric) ||
      !(isString(r.quantity) || isSafeInteger(r.quantity)) ||
      !isString(r.service) ||
      !isSafeInteger(r.time)
    ) {
      return canonicalize(records) ?? "[]";
    }
  }
  return JSON.stringify(records, RECORD_KEYS);
}
