/**
 * Dispatch: sends a job to a routable host (round robin; a failing host gets one retry elsewhere), and counts
 * it for the host's job report only if the chain still admits the host when it answers (it may have been
 * evicted while it worked).
 */
import type { Hex } from "viem";

import type { HostJobBody, HostJobReply } from "../../../offchain/common/protocol";
import type { RoleContext } from "../../context";
import { nodeError } from "../../errors";
import type { HostRegistry } from "./hosts";
import type { JobReports } from "./reports";

export class Dispatcher {
  private cursor = 0;

  constructor(
    private readonly ctx: Pick<RoleContext, "metrics">,
    private readonly hosts: HostRegistry,
    private readonly reports: Pick<JobReports, "count">,
    private readonly jobTimeoutMs: number,
  ) {}

  async dispatch(job: HostJobBody): Promise<{ host: string; result: Hex }> {
    const candidates = this.hosts.routable();
    if (candidates.length === 0) throw nodeError("EDGE_NODE_NO_HOSTS", "no admitted host is available");
    let lastError = "";
    for (let attempt = 0; attempt < Math.min(2, candidates.length); attempt++) {
      const [host, entry] = candidates[(this.cursor++ + attempt) % candidates.length];
      try {
        const result = await this.call(entry.url, entry.token, job);
        if (this.hosts.admitted(host)) this.reports.count(host);
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
  private async call(url: string, token: string, job: HostJobBody): Promise<Hex> {
    const response = await fetch(`${url.replace(/\/$/, "")}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(job),
      signal: AbortSignal.timeout(this.jobTimeoutMs),
    });
    const body = (await response.json().catch(() => ({}))) as Partial<HostJobReply> & { error?: string };
    if (!response.ok || !body.result) throw new Error(`host answered ${response.status} ${body.error ?? ""}`.trim());
    return body.result as Hex;
  }
}
