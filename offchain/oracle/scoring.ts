/**
 * Peer-relative scoring, exactly as PROTOCOL.md "Scoring (exact)" states it. Pure: the oracle service, its CLI
 * and anyone re-running published inputs get the same result.
 *
 * For epoch e, with the reports of gateways admitted at e's end:
 *   - per (gateway, epoch) the report with the highest sequence wins;
 *   - hosts not admitted at e's end are dropped from a gateway's entries before anything else;
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
 * report counts the sum of its entries.
 */

export const MAX_SCORE = 20_000;
const UNIT = 10_000;
const SAFE = Number.MAX_SAFE_INTEGER;

export type Jobs = number | bigint;

export interface ReportInput {
  gateway: string;
  epoch: number | string | bigint;
  sequence: number | string | bigint;
  entries: Array<{ host: string; jobs: number | string | bigint }>;
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

export class ScoringInputError extends Error {
  override readonly name = "ScoringInputError";
}

const lower = (address: string) => address.toLowerCase();

/** A non-negative integer from a JSON number or a decimal string; a number only while exact. */
export function parseJobs(value: number | string | bigint, where: string): Jobs {
  if (typeof value === "bigint") {
    if (value < 0n) throw new ScoringInputError(`${where}: jobs must not be negative`);
    return value <= BigInt(SAFE) ? Number(value) : value;
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new ScoringInputError(
        `${where}: jobs ${value} is not a safe non-negative integer (give large counts as decimal strings)`,
      );
    }
    return value;
  }
  if (typeof value !== "string" || !/^\d+$/.test(value)) {
    throw new ScoringInputError(`${where}: jobs must be a non-negative integer or a decimal string`);
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
  /** The canonical form of the entries, computed only when two reports tie on the sequence. */
  key?: string;
  entries: Map<string, Jobs>;
}

const canonical = (entries: Map<string, Jobs>) =>
  [...entries]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([host, jobs]) => `${host}:${jobs}`)
    .join(",");

/** Scores one epoch. Throws ScoringInputError naming the bad field for malformed input. */
export function scoreEpoch(
  epochValue: number | string | bigint,
  reports: readonly ReportInput[],
  admitted: AdmittedInput,
  heartbeats: readonly HeartbeatInput[] = [],
): Score[] {
  const epoch = toBigInt(epochValue, "epoch");
  const admittedHosts = new Set(admitted.hosts.map(lower));
  const admittedGateways = new Set(admitted.gateways.map(lower));
  const admittedStargates = new Set(admitted.stargates.map(lower));

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
    const entries = new Map<string, Jobs>();
    report.entries.forEach((entry, k) => {
      if (typeof entry?.host !== "string")
        throw new ScoringInputError(`${where}.entries[${k}].host must be an address`);
      const jobs = parseJobs(entry.jobs, `${where}.entries[${k}]`);
      const host = lower(entry.host);
      entries.set(host, add(entries.get(host) ?? 0, jobs));
    });
    // Equal sequences: keep the canonically greatest entries, so the result is independent of input order.
    if (current && current.sequence === sequence) {
      current.key ??= canonical(current.entries);
      const key = canonical(entries);
      if (key > current.key) winners.set(gateway, { sequence, key, entries });
      return;
    }
    winners.set(gateway, { sequence, entries });
  });

  // Per host: sum of jobs J_h and sum of j * s.
  const jobsOf = new Map<string, Jobs>();
  const weightedOf = new Map<string, Jobs>();
  for (const { entries } of winners.values()) {
    const peers: Array<[string, Jobs]> = [];
    let total: Jobs = 0;
    for (const [host, jobs] of entries) {
      if (!admittedHosts.has(host)) continue;
      peers.push([host, jobs]);
      total = add(total, jobs);
    }
    for (const [host, jobs] of peers) {
      const s = peerScore(jobs, peers.length, total);
      jobsOf.set(host, add(jobsOf.get(host) ?? 0, jobs));
      const weighted: Jobs = typeof jobs === "number" && jobs * s <= SAFE ? jobs * s : toJobs(BigInt(jobs) * BigInt(s));
      weightedOf.set(host, add(weightedOf.get(host) ?? 0, weighted));
    }
  }

  const scores: Score[] = [];
  for (const [host, jobs] of jobsOf) {
    const weighted = weightedOf.get(host)!;
    let score = 0;
    if (typeof jobs === "number" && typeof weighted === "number") score = jobs === 0 ? 0 : floorDiv(weighted, jobs);
    else if (BigInt(jobs) !== 0n) score = Number(BigInt(weighted) / BigInt(jobs));
    scores.push({ device: host, role: "host", score });
  }
  for (const gateway of winners.keys()) scores.push({ device: gateway, role: "gateway", score: UNIT });
  const beating = new Set<string>();
  heartbeats.forEach((hb, i) => {
    if (typeof hb?.stargate !== "string") throw new ScoringInputError(`heartbeats[${i}].stargate must be an address`);
    if (toBigInt(hb.epoch, `heartbeats[${i}].epoch`) === epoch) beating.add(lower(hb.stargate));
  });
  for (const stargate of beating) {
    if (admittedStargates.has(stargate)) scores.push({ device: stargate, role: "stargate", score: UNIT });
  }
  return scores.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.role < b.role ? -1 : 1));
}
