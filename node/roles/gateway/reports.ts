/**
 * Job reports for the oracle: the gateway counts the jobs each host returned per epoch (by the epoch clock, the
 * oracle's), and queues a signed cumulative JobReport per epoch into the outbox each time it is asked, with a
 * final one once the epoch is over. A newer report of an epoch supersedes an unsent older one (outbox key).
 * Counts are saved with each report.
 *
 * Host tallies (F11, D40): each job's reply carries the host's signed count of the jobs it returned here in the
 * epoch. The gateway keeps a host's latest by sequence once it checks it (this gateway, the host that answered,
 * the current or previous epoch, the host's signature, never fewer jobs than the one kept), and each report
 * entry carries it; the oracle scores min(count, tally). A report of an epoch still running repeats the tally it
 * last sent for a host until that is TALLY_REFRESH_MS old, so the oracle, which remembers tallies it verified,
 * recovers a signature per host about once per refresh instead of once per report; a final report (epoch over)
 * carries every latest tally.
 */
import type { Address } from "viem";

import type { HostTallyBody, JobReportEntry } from "../../../offchain/common/protocol";
import { hostTallySigner, signJobReport } from "../../../offchain/common/protocol";
import type { SendingContext } from "../../context";
import type { GatewayStateFile, KeptTally } from "./state";

export type ReportsContext = Pick<SendingContext, "signer" | "outgoing" | "clock">;

/** How long a report of a running epoch may repeat a host's tally before sending its newer one. */
export const TALLY_REFRESH_MS = 10 * 60_000;

export class JobReports {
  constructor(
    private readonly ctx: ReportsContext,
    private readonly store: GatewayStateFile,
    /** Without an oracle the jobs are counted but no report is queued. */
    private readonly enabled: boolean,
  ) {}

  /** Tallies last put in a report of a running epoch, per `${epoch}:${host}`, and when. */
  private readonly sent = new Map<string, { tally: KeptTally; at: number }>();
  private refused = 0;

  /** Counts one job returned by `host` in the current epoch, and keeps the tally it handed over if valid. */
  count(host: string, tally?: HostTallyBody): void {
    const perHost = (this.store.state.counts[this.ctx.clock.currentEpoch().toString()] ??= {});
    perHost[host] = (BigInt(perHost[host] ?? "0") + 1n).toString();
    if (tally && !this.attest(host, tally)) this.refused += 1;
  }

  /** Keeps `tally` as `host`'s latest if it checks out and is newer than the one kept; false when refused. */
  attest(host: string, tally: HostTallyBody): boolean {
    try {
      return this.keep(host, tally);
    } catch {
      return false; // a malformed tally (the reply is the host's JSON)
    }
  }

  private keep(host: string, tally: HostTallyBody): boolean {
    const self: Address = this.ctx.signer.account.address;
    const current = this.ctx.clock.currentEpoch();
    const epoch = BigInt(tally.epoch);
    const epochText = epoch.toString();
    if (tally.host.toLowerCase() !== host.toLowerCase() || tally.gateway.toLowerCase() !== self.toLowerCase())
      return false;
    if (epoch > current || epoch < current - 1n) return false;
    const kept = this.store.state.tallies?.[epochText]?.[host];
    if (kept && BigInt(kept.sequence) >= BigInt(tally.sequence))
      return BigInt(kept.sequence) === BigInt(tally.sequence);
    if (kept && BigInt(kept.jobs) > BigInt(tally.jobs)) return false;
    const signer = hostTallySigner(this.ctx.signer.chainId, tally, tally.signature);
    if (signer?.toLowerCase() !== host.toLowerCase()) return false;
    const tallies = (this.store.state.tallies ??= {});
    (tallies[epochText] ??= {})[host] = {
      jobs: BigInt(tally.jobs).toString(),
      sequence: BigInt(tally.sequence).toString(),
      signature: tally.signature,
    };
    return true;
  }

  /** Tallies refused (wrong gateway, host or epoch, bad signature, a lower count). */
  get refusedTallies(): number {
    return this.refused;
  }

  /** The tally a report of `epoch` carries for `host` (see TALLY_REFRESH_MS). */
  private tallyFor(epochText: string, host: string, final: boolean): KeptTally | undefined {
    const latest = this.store.state.tallies?.[epochText]?.[host];
    if (!latest || final) return latest;
    const key = `${epochText}:${host}`;
    const sent = this.sent.get(key);
    const now = Date.now();
    if (sent && now - sent.at < TALLY_REFRESH_MS) return sent.tally;
    this.sent.set(key, { tally: latest, at: now });
    return latest;
  }

  /** Queues a signed report for every epoch with counts: the current one, and a final one for past epochs. */
  async queue(): Promise<void> {
    if (!this.enabled) return;
    const state = this.store.state;
    const current = this.ctx.clock.currentEpoch();
    for (const epochText of Object.keys(state.counts)) {
      const epoch = BigInt(epochText);
      if (state.finalized.includes(epochText)) continue;
      const final = epoch < current;
      const entries: JobReportEntry[] = Object.entries(state.counts[epochText]).map(([host, jobs]) => {
        const tally = this.tallyFor(epochText, host, final);
        return tally
          ? { host, jobs: BigInt(jobs), attested: tally.jobs, tallySeq: tally.sequence, tallySig: tally.signature }
          : { host, jobs: BigInt(jobs) };
      });
      state.sequence += 1;
      const sequence = BigInt(state.sequence);
      this.ctx.outgoing.put({
        id: `report:${epoch}:${sequence}`,
        key: `report:${epoch}`,
        target: "oracle",
        path: "/reports",
        body: await signJobReport(this.ctx.signer.account, this.ctx.signer.chainId, epoch, sequence, entries),
      });
      if (epoch < current) state.finalized.push(epochText);
    }
    // Forget epochs whose final report is queued (the outbox holds it until the oracle has it).
    for (const epochText of [...state.finalized]) {
      if (BigInt(epochText) < current - 1n) {
        delete state.counts[epochText];
        delete state.tallies?.[epochText];
        for (const key of this.sent.keys()) if (key.startsWith(`${epochText}:`)) this.sent.delete(key);
        state.finalized.splice(state.finalized.indexOf(epochText), 1);
      }
    }
    this.store.save();
  }
}
