/**
 * Dispatch: sends a job to a routable host (round robin; a failing host gets one retry elsewhere), checks the
 * result (jobChecks.ts: every small job and a sample of large ones recomputed), and counts it for the host's job
 * report only if it passed and the chain still admits the host when it answers (it may have been evicted while
 * it worked). A host caught with a wrong result is banned (hosts.ts), its result neither counted, billed nor
 * returned, and the job goes to another host.
 */
import type { Hex } from "viem";

import type { HostJobBody, HostJobReply, HostTallyBody } from "../../../offchain/common/protocol";
import type { RoleContext } from "../../context";
import { nodeError } from "../../errors";
import { shouldVerify, wrongResult } from "../jobChecks";
import type { HostRegistry } from "./hosts";
import type { JobReports } from "./reports";

export class Dispatcher {
  private cursor = 0;

  constructor(
    private readonly ctx: Pick<RoleContext, "metrics">,
    private readonly hosts: HostRegistry,
    private readonly reports: Pick<JobReports, "count">,
    private readonly jobTimeoutMs: number,
    /** Whether to recompute a result of `rounds` rounds (jobChecks.ts `shouldVerify`). */
    private readonly verify: (rounds: number) => boolean = shouldVerify,
  ) {}

  /** Results recomputed, and those found wrong. */
  readonly checked = { verified: 0, wrong: 0 };

  async dispatch(job: HostJobBody): Promise<{ host: string; result: Hex }> {
    const candidates = this.hosts.routable();
    if (candidates.length === 0) throw nodeError("EDGE_NODE_NO_HOSTS", "no admitted host is available");
    let lastError = "";
    const start = this.cursor++;
    for (let attempt = 0; attempt < Math.min(2, candidates.length); attempt++) {
      // One cursor step per job: the retry goes to the next host, not back to the same one.
      const [host, entry] = candidates[(start + attempt) % candidates.length];
      try {
        const { result, tally } = await this.call(entry.url, entry.token, job);
        const verify = this.verify(job.rounds);
        const wrong = await wrongResult(job, result, verify);
        if (verify) this.checked.verified += 1;
        if (wrong !== undefined) {
          this.checked.wrong += 1;
          this.hosts.ban(host, { at: Date.now(), jobId: job.jobId, reason: wrong });
          this.ctx.metrics.jobs.inc({ outcome: "wrong_result" });
          lastError = `host ${host} returned a wrong result`;
          continue;
        }
        if (this.hosts.admitted(host)) this.reports.count(host, tally);
        entry.failures = 0;
        return { host, result };
      } catch (error) {
        entry.failures += 1;
        lastError = (error as Error).message;
        this.ctx.metrics.jobs.inc({ outcome: "host_failed" });
      }
    }
    throw nodeError("EDGE_NODE_HOST_FAILED", `hosts failed to run the job: ${lastError}`);
  }

  /** POSTs the job to a host's /jobs with the host's session token; the host's result, or an error. */
  private async call(url: string, token: string, job: HostJobBody): Promise<{ result: Hex; tally?: HostTallyBody }> {
    const response = await fetch(`${url.replace(/\/$/, "")}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(job),
      signal: AbortSignal.timeout(this.jobTimeoutMs),
    });
    const body = (await response.json().catch(() => ({}))) as Partial<HostJobReply> & { error?: string };
    if (!response.ok || !body.result) throw new Error(`host answered ${response.status} ${body.error ?? ""}`.trim());
    return { result: body.result as Hex, tally: body.tally };
  }
}
