/**
 * Host tallies at ingestion (F11, D40): every entry of a job report that carries an attested count must carry the
 * host's own signature over (host, the reporting gateway, the report's epoch, attested, tallySeq). A forged,
 * borrowed (another gateway's or epoch's) or altered tally refuses the whole report, naming the host: an honest
 * gateway checks each tally when its host hands it over, so only a gateway that tampers is refused.
 *
 * Reports are cumulative: a gateway sends the same tallies again in each report of an epoch until a host hands it
 * a newer one. A tally verified once is remembered per (gateway, epoch, host) and an entry repeating it exactly
 * (same count, sequence and signature text) costs no signature recovery (~0.1 ms native each). The memory is
 * bounded: a (gateway, epoch) group holds exactly the tallies of the gateway's latest report (at most a report's
 * entries), at most `maxEntries` tallies in all with whole groups forgotten oldest first, and groups of epochs
 * before the previous one forgotten as soon as a later epoch comes in.
 */
import { hostTallySigner } from "../common/protocol";
import { oracleError } from "./errors";

/** An entry as stored: canonical decimals, lowercase host. */
export interface TallyEntry {
  host: string;
  jobs: string;
  attested?: string;
  tallySeq?: string;
  tallySig?: string;
}

interface Verified {
  attested: string;
  tallySeq: string;
  tallySig: string;
}

export const DEFAULT_TALLY_CACHE = 1_000_000;

export class TallyVerifier {
  /** `${epoch}:${gateway}` -> host -> its last verified tally. Insertion order is age order. */
  private readonly groups = new Map<string, Map<string, Verified>>();
  private size = 0;
  private latestEpoch = -1;
  /** Signature recoveries done (for tests and the bench's reading of the cache's effect). */
  recoveries = 0;

  constructor(
    private readonly chainId: number,
    private readonly maxEntries = DEFAULT_TALLY_CACHE,
  ) {}

  /**
   * Checks every tally of a report whose own signature already verified; throws ORACLE_BAD_TALLY naming the first
   * bad host. Nothing is remembered from a report that fails.
   */
  check(gateway: string, epoch: number, entries: readonly TallyEntry[]): void {
    const key = `${epoch}:${gateway}`;
    const known = this.groups.get(key);
    const fresh: Array<[string, Verified]> = [];
    for (const entry of entries) {
      const { attested, tallySeq, tallySig } = entry;
      if (attested === undefined && tallySeq === undefined && tallySig === undefined) continue;
      if (attested === undefined || tallySeq === undefined || tallySig === undefined) {
        throw oracleError("ORACLE_BAD_TALLY", `host ${entry.host}: attested, tallySeq and tallySig go together`);
      }
      const seen = known?.get(entry.host);
      if (seen && seen.attested === attested && seen.tallySeq === tallySeq && seen.tallySig === tallySig) continue;
      this.recoveries += 1;
      const signer = hostTallySigner(
        this.chainId,
        { host: entry.host, gateway, epoch: BigInt(epoch), jobs: attested, sequence: tallySeq },
        tallySig,
      );
      if (signer === undefined || signer.toLowerCase() !== entry.host) {
        throw oracleError(
          "ORACLE_BAD_TALLY",
          `host ${entry.host}: its tally is not signed by the host for gateway ${gateway} and epoch ${epoch}`,
        );
      }
      fresh.push([entry.host, { attested, tallySeq, tallySig }]);
    }
    // The group becomes exactly this report's tallies (M2 of the review after D40): a report replaces the
    // gateway's previous one, so hosts it no longer lists are forgotten and a group never outgrows one report.
    const group = new Map<string, Verified>();
    for (const entry of entries) {
      const { attested, tallySeq, tallySig } = entry;
      if (attested !== undefined && tallySeq !== undefined && tallySig !== undefined)
        group.set(entry.host, { attested, tallySeq, tallySig });
    }
    if (group.size > 0 || known) this.remember(key, epoch, group);
  }

  private remember(key: string, epoch: number, group: Map<string, Verified>): void {
    if (epoch > this.latestEpoch) {
      this.latestEpoch = epoch;
      for (const [k, old] of this.groups) {
        if (Number(k.slice(0, k.indexOf(":"))) < epoch - 1) this.forget(k, old);
      }
    }
    const previous = this.groups.get(key);
    if (previous) this.forget(key, previous);
    // Re-inserted: the newest group, evicted last.
    this.groups.set(key, group);
    this.size += group.size;
    for (const [k, g] of this.groups) {
      if (this.size <= this.maxEntries || g === group) break;
      this.forget(k, g);
    }
  }

  private forget(key: string, group: Map<string, Verified>): void {
    this.size -= group.size;
    this.groups.delete(key);
  }

  /** Tallies remembered now. */
  get cached(): number {
    return this.size;
  }
}
