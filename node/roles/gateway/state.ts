/**
 * The gateway's persisted state: report and usage sequence numbers, the job counts per epoch and host, and each
 * host's latest signed tally (F11). It
 * is saved with every report and usage batch (so a crash loses at most the jobs of the last report interval),
 * by an atomic write: a crash leaves the old file or the new one, never half of one.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface GatewayState {
  sequence: number;
  usageSequence: number;
  /** epoch -> host -> jobs returned */
  counts: Record<string, Record<string, string>>;
  /** epochs whose final report is in the outbox */
  finalized: string[];
  /** epoch -> host -> the host's latest verified tally at this gateway (F11) */
  tallies?: Record<string, Record<string, KeptTally>>;
}

/** A host's signed tally as the gateway keeps it: what a report entry carries. */
export interface KeptTally {
  jobs: string;
  sequence: string;
  signature: string;
}

export class GatewayStateFile {
  readonly state: GatewayState;
  private readonly file: string;

  /** Reads `<dir>/state.json`, or starts afresh when there is none. */
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, "state.json");
    this.state = existsSync(this.file)
      ? (JSON.parse(readFileSync(this.file, "utf8")) as GatewayState)
      : { sequence: 0, usageSequence: 0, counts: {}, finalized: [] };
  }

  save(): void {
    writeFileSync(`${this.file}.tmp`, JSON.stringify(this.state));
    renameSync(`${this.file}.tmp`, this.file);
  }
}
