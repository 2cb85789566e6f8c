/**
 * Peer-relative scoring, exactly as PROTOCOL.md "Scoring (exact)" states it. Pure: the oracle service, its CLI
 * and anyone re-running published inputs get the same result.
 *
 * For epoch e, with the reports of gateways admitted at e's end:
 *   - per (gateway, epoch) the report with the highest sequence wins;
 *   - hosts not admitted at e's end, and entries without `attested` (the host's own signed count), are dropped
 *     from a gateway's entries before anything else; j(h,g) = min(jobs, attested) (Revision 2);
 *   - per gateway g with remaining peers P_g: S_g = sum of j(h,g); s(h,g) = 0 if S_g = 0, else
 *     min(20000, floor(10000 * j(h,g) * |P_g| / S_g));
 *   - a host's score: J_h = sum_g j(h,g); 0 if J_h = 0, else floor(sum_g j(h,g) * s(h,g) / J_h);
 *   - a gateway that reported scores 10000; a stargate admitted at the end with a heartbeat in e scores 10000;
 *   - admitted hosts nobody reported get no entry.
 * Addresses compare case-insensitively. Job counts are exact integers of any size: arithmetic runs on plain
 * numbers while every intermediate value provably stays below 2^53, and on BigInt otherwise.
 *
 * Choices where the text is silent (docs/oracle.md): two reports with the same highest sequence keep the one
 * whose canonical entries sort last (so the result never depends on input order); a host listed twice in one
 * report counts the sum of its attested entries' jobs, capped by the largest of their attested counts (a tally
 * is cumulative, so the largest is the host's latest: listing a host twice never raises its j).
 */

import { HostIndex } from "./hostIndex";
import { errorClass } from "../common/errors";

export const MAX_SCORE = 20_000;
const UNIT = 10_000;
const SAFE = Number.MAX_SAFE_INTEGER;

export type Jobs = number | bigint;

export interface ReportInput {
  gateway: string;
  epoch: number | string | bigint;
  sequence: number | string | bigint;
  entries: Array<{ host: string; jobs: number | string | bigint; attested?: number | string | bigint | null }>;
}

export interface AdmittedInput {
  hosts: string[];
  gateways: string[];
  stargates: string[];
}

export interface HeartbeatInput {
  stargate: string;
  epoch: number | string | bigint;
}

export type ScoreRole = "host" | "gateway" | "stargate";

export interface Score {
  device: string;
  role: ScoreRole;
  score: number;
}

export const ScoringInputError = errorClass("ScoringInputError", "ORACLE_SCORING_INPUT_INVALID");
export type ScoringInputError = InstanceType<typeof ScoringInputError>;

const lower = (address: string) => address.toLowerCase();
const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const DIGITS = /^\d+$/;

/** parseJobs for the k-th entry of a report; names the entry only when it is bad (no string built per entry). */
function entryJobs(value: number | string | bigint, where: string, k: number, field = "jobs"): Jobs {
  if (typeof value === "string" && value.length < 16 && DIGITS.test(value)) return Number(value);
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  return parseJobs(value, `${where}.entries[${k}]`, field);
}

/** A non-negative integer from a JSON number or a decimal string; a number only while exact. */
export function parseJobs(value: number | string | bigint, where: string, field = "jobs"): Jobs {
  if (typeof value === "bigint") {
    if (value < 0n) throw new ScoringInputError(`${where}: ${field} must not be negative`);
    return value <= BigInt(SAFE) ? Number(value) : value;
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new ScoringInputError(
        `${where}: ${field} ${value} is not a safe non-negative integer (give large counts as decimal strings)`,
      );
    }
    return value;
  }
  if (typeof value !== "string" || !DIGITS.test(value)) {
    throw new ScoringInputError(`${where}: ${field} must be a non-negative integer or a decimal string`);
  }
  return value.length < 16 ? Number(value) : toJobs(BigInt(value));
}

function toJobs(value: bigint): Jobs {
  return value <= BigInt(SAFE) ? Number(value) : value;
}

function toBigInt(value: number | string | bigint, where: string): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === "string" && /^\d+$/.test(value)) return BigInt(value);
  throw new ScoringInputError(`${where}: not an integer`);
}

function add(a: Jobs, b: Jobs): Jobs {
  if (typeof a === "number" && typeof b === "number" && a + b <= SAFE) return a + b;
  return toJobs(BigInt(a) + BigInt(b));
}

/** floor(a / b) for non-negative safe integers, exact despite floating-point division. */
function floorDiv(a: number, b: number): number {
  let q = Math.floor(a / b);
  if (q * b > a) q -= 1;
  else if ((q + 1) * b <= a) q += 1;
  return q;
}

/** s(h,g) = min(20000, floor(10000 * j * peers / total)). */
function peerScore(jobs: Jobs, peers: number, total: Jobs): number {
  if (typeof jobs === "number" && typeof total === "number") {
    if (total === 0) return 0;
    const numerator = UNIT * jobs * peers;
    if (numerator <= SAFE) return Math.min(MAX_SCORE, floorDiv(numerator, total));
  }
  const t = BigInt(total);
  if (t === 0n) return 0;
  const q = (BigInt(UNIT) * BigInt(jobs) * BigInt(peers)) / t;
  return q > BigInt(MAX_SCORE) ? MAX_SCORE : Number(q);
}

interface Winner {
  sequence: bigint;
  report: ReportInput;
  where: string;
  /** The canonical form of the entries, computed only when two reports tie on the sequence. */
  key?: string;
}

const hasAttested = (entry: { attested?: unknown }) => entry.attested !== undefined && entry.attested !== null;
const larger = (a: Jobs, b: Jobs): Jobs => (a < b ? b : a);
const smaller = (a: Jobs, b: Jobs): Jobs => (a < b ? a : b);

/** A report's entries as host -> [summed jobs, largest attested or -1 when none], every field validated. */
function parseEntries(report: ReportInput, where: string): Map<string, [Jobs, Jobs]> {
  const entries = new Map<string, [Jobs, Jobs]>();
  report.entries.forEach((entry, k) => {
    if (typeof entry?.host !== "string") throw new ScoringInputError(`${where}.entries[${k}].host must be an address`);
    const jobs = entryJobs(entry.jobs, where, k);
    const attested = hasAttested(entry) ? entryJobs(entry.attested!, where, k, "attested") : -1;
    const host = lower(entry.host);
    const [j, a] = entries.get(host) ?? [0, -1];
    entries.set(host, [add(j, jobs), larger(a, attested)]);
  });
  return entries;
}

const canonical = (report: ReportInput, where: string) =>
  [...parseEntries(report, where)]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([host, [jobs, attested]]) => `${host}:${jobs}:${attested}`)
    .join(",");

/** Scores one epoch. Throws ScoringInputError naming the bad field for malformed input. */
export function scoreEpoch(
  epochValue: number | string | bigint,
  reports: readonly ReportInput[],
  admitted: AdmittedInput,
  heartbeats: readonly HeartbeatInput[] = [],
): Score[] {
  const epoch = toBigInt(epochValue, "epoch");
  const admittedGateways = new Set(admitted.gateways.map(lower));
  const admittedStargates = new Set(admitted.stargates.map(lower));
  // Admitted hosts get dense ids in sorted order: per-host sums live in arrays, and the output comes out sorted.
  const hostNames = [...new Set(admitted.hosts.map(lower))].sort(byString);
  const hostIndex = new HostIndex(hostNames);

  // The winning report of each admitted gateway.
  const winners = new Map<string, Winner>();
  reports.forEach((report, i) => {
    const where = `reports[${i}]`;
    if (typeof report?.gateway !== "string" || !Array.isArray(report.entries)) {
      throw new ScoringInputError(`${where}: needs "gateway", "epoch", "sequence" and "entries"`);
    }
    if (toBigInt(report.epoch, `${where}.epoch`) !== epoch) return;
    const gateway = lower(report.gateway);
    if (!admittedGateways.has(gateway)) return;
    const sequence = toBigInt(report.sequence, `${where}.sequence`);
    const current = winners.get(gateway);
    if (current && current.sequence > sequence) return;
    // Equal sequences: keep the canonically greatest entries, so the result is independent of input order.
    if (current && current.sequence === sequence) {
      current.key ??= canonical(current.report, current.where);
      const key = canonical(report, where);
      if (key > current.key) winners.set(gateway, { sequence, report, where, key });
      return;
    }
    winners.set(gateway, { sequence, report, where });
  });

  // Per host id, interleaved so one entry touches one place: acc[2id] = J_h (-1 until reported), acc[2id + 1] = the
  // sum of j * s. Per report: seen[2id] = the last report that listed the host, seen[2id + 1] = its place in `peers`.
  const n = hostNames.length;
  const acc: Jobs[] = new Array<Jobs>(2 * n);
  for (let i = 0; i < 2 * n; i += 2) {
    acc[i] = -1;
    acc[i + 1] = 0;
  }
  const seen = new Int32Array(2 * n).fill(-1);
  let round = 0;
  for (const { report, where } of winners.values()) {
    const peers: number[] = [];
    const peerJobs: Jobs[] = [];
    const peerAttested: Jobs[] = [];
    report.entries.forEach((entry, k) => {
      if (typeof entry?.host !== "string")
        throw new ScoringInputError(`${where}.entries[${k}].host must be an address`);
      const jobs = entryJobs(entry.jobs, where, k);
      // No attested count: not a peer (the gateway's count alone proves nothing).
      if (entry.attested === undefined || entry.attested === null) return;
      const attested = entryJobs(entry.attested, where, k, "attested");
      const id = hostIndex.get(entry.host);
      if (id === undefined) return;
      if (seen[2 * id] !== round) {
        seen[2 * id] = round;
        seen[2 * id + 1] = peers.length;
        peers.push(id);
        peerJobs.push(jobs);
        peerAttested.push(attested);
      } else {
        const at = seen[2 * id + 1];
        peerJobs[at] = add(peerJobs[at], jobs);
        peerAttested[at] = larger(peerAttested[at], attested);
      }
    });
    round++;
    // j(h,g) = min(jobs, attested), then S_g over the peers.
    let total: Jobs = 0;
    for (let p = 0; p < peers.length; p++) {
      peerJobs[p] = smaller(peerJobs[p], peerAttested[p]);
      total = add(total, peerJobs[p]);
    }
    for (let p = 0; p < peers.length; p++) {
      const id = peers[p];
      const jobs = peerJobs[p];
      const s = peerScore(jobs, peers.length, total);
      const before = acc[2 * id];
      acc[2 * id] = before === -1 ? jobs : add(before, jobs);
      const weighted: Jobs = typeof jobs === "number" && jobs * s <= SAFE ? jobs * s : toJobs(BigInt(jobs) * BigInt(s));
      acc[2 * id + 1] = add(acc[2 * id + 1], weighted);
    }
  }

  const scores: Score[] = [];
  for (let id = 0; id < n; id++) {
    const jobs = acc[2 * id];
    if (jobs === -1) continue;
    const weighted = acc[2 * id + 1];
    let score = 0;
    if (typeof jobs === "number" && typeof weighted === "number") score = jobs === 0 ? 0 : floorDiv(weighted, jobs);
    else if (BigInt(jobs) !== 0n) score = Number(BigInt(weighted) / BigInt(jobs));
    scores.push({ device: hostNames[id], role: "host", score });
  }
  const others: Score[] = [];
  for (const gateway of winners.keys()) others.push({ device: gateway, role: "gateway", score: UNIT });
  const beating = new Set<string>();
  heartbeats.forEach((hb, i) => {
    if (typeof hb?.stargate !== "string") throw new ScoringInputError(`heartbeats[${i}].stargate must be an address`);
    if (toBigInt(hb.epoch, `heartbeats[${i}].epoch`) === epoch) beating.add(lower(hb.stargate));
  });
  for (const stargate of beating) {
    if (admittedStargates.has(stargate)) others.push({ device: stargate, role: "stargate", score: UNIT });
  }
  // Hosts are already in order; merge the few gateways and stargates in.
  return mergeSorted(scores, others.sort(byDevice));
}

const byDevice = (a: Score, b: Score) =>
  a.device < b.device ? -1 : a.device > b.device ? 1 : a.role < b.role ? -1 : a.role > b.role ? 1 : 0;

function mergeSorted(a: Score[], b: Score[]): Score[] {
  if (b.length === 0) return a;
  const out: Score[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j === b.length || (i < a.length && byDevice(a[i], b[j]) <= 0)) out.push(a[i++]);
    else out.push(b[j++]);
  }
  return out;
}
