/**
 * Job reports for the oracle: the gateway counts the jobs each host returned per epoch (by the epoch clock, the
 * oracle's), and queues a signed cumulative JobReport per epoch into the outbox each time it is asked, with a
 * final one once the epoch is over. A newer report of an epoch supersedes an unsent older one (outbox key).
 * Counts are saved with each report.
 */
import type { JobReportEntry } from "../../../offchain/common/protocol";
import { signJobReport } from "../../../offchain/common/protocol";
import type { SendingContext } from "../../context";
import type { GatewayStateFile } from "./state";

export type ReportsContext = Pick<SendingContext, "signer" | "outgoing" | "clock">;

export class JobReports {
  constructor(
    private readonly ctx: ReportsContext,
    private readonly store: GatewayStateFile,
    /** Without an oracle the jobs are counted but no report is queued. */
    private readonly enabled: boolean,
  ) {}

  /** Counts one job returned by `host` in the current epoch. */
  count(host: string): void {
    const perHost = (this.store.state.counts[this.ctx.clock.currentEpoch().toString()] ??= {});
    perHost[host] = (BigInt(perHost[host] ?? "0") + 1n).toString();
  }

  /** Queues a signed report for every epoch with counts: the current one, and a final one for past epochs. */
  async queue(): Promise<void> {
    if (!this.enabled) return;
    const state = this.store.state;
    const current = this.ctx.clock.currentEpoch();
    for (const epochText of Object.keys(state.counts)) {
      const epoch = BigInt(epochText);
      if (state.finalized.includes(epochText)) continue;
      const entries: JobReportEntry[] = Object.entries(state.counts[epochText]).map(([host, jobs]) => ({
        host,
        jobs: BigInt(jobs),
      }));
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
        state.finalized.splice(state.finalized.indexOf(epochText), 1);
      }
    }
    this.store.save();
  }
}
