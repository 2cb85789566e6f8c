/**
 * Dispatch of compute jobs through the job queue (queue.ts) to hosts' links (links.ts): a job goes to the first
 * host with a free slot; a host that fails it (error, timeout, a cut link) gets it retried once on another host.
 * The result is checked (jobChecks.ts: every small job and a sample of large ones recomputed) and counted for the
 * host's job report only if it passed and the chain still admits the host when it answers. A host caught with a
 * wrong result is banned (hosts.ts), its result neither counted, billed nor returned, and the job goes to
 * another host.
 *
 * Also here: `exchange`, one request and its whole (small) answer over a link, which the tally collection
 * (reports.ts) uses too.
 */
import type http2 from "node:http2";
import type { Hex } from "viem";

import { isEdgeError } from "../../../offchain/common/errors";
import type { HostJobBody } from "../../../offchain/common/protocol";
import type { RoleContext } from "../../context";
import { nodeError } from "../../errors";
import { shouldVerify, wrongResult } from "../jobChecks";
import type { HostRegistry } from "./hosts";
import type { HostLink } from "./links";
import type { JobQueue } from "./queue";
import type { JobReports } from "./reports";

/** Largest answer `exchange` reads. */
const MAX_ANSWER_BYTES = 64 * 1024;

export class Dispatcher {
  constructor(
    private readonly ctx: { metrics: Pick<RoleContext["metrics"], "jobs"> },
    private readonly hosts: Pick<HostRegistry, "ban" | "countable">,
    private readonly queue: Pick<JobQueue<HostLink>, "submit" | "done" | "failed" | "succeeded">,
    private readonly reports: Pick<JobReports, "count">,
    private readonly jobTimeoutMs: number,
    /** Whether to recompute a result of `rounds` rounds (jobChecks.ts `shouldVerify`). */
    private readonly verify: (rounds: number) => boolean = shouldVerify,
  ) {}

  /** Results recomputed, and those found wrong. */
  readonly checked = { verified: 0, wrong: 0 };

  /** Runs `job` on a host; `traceparent` (the request's span, D47) goes to the host with it. */
  async dispatch(job: HostJobBody, traceparent?: string): Promise<{ host: string; result: Hex }> {
    let lastError = "";
    let avoid: string | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      let started;
      try {
        started = await this.onLink(job, avoid, traceparent);
      } catch (error) {
        // No other host for the retry: the customer learns why the first failed.
        if (attempt > 0 && isEdgeError(error) && error.code === "EDGE_NODE_NO_HOSTS") break;
        throw error;
      }
      const { link, answer } = started;
      try {
        const { status, body } = await answer;
        const reply = JSON.parse(body.toString("utf8")) as { result?: string; error?: string };
        if (status !== 200 || typeof reply.result !== "string")
          throw new Error(`host answered ${status} ${reply.error ?? ""}`.trim());
        const verify = this.verify(job.rounds);
        const wrong = await wrongResult(job, reply.result, verify);
        if (verify) this.checked.verified += 1;
        if (wrong !== undefined) {
          this.checked.wrong += 1;
          this.hosts.ban(link.host, { at: Date.now(), jobId: job.jobId, reason: wrong });
          this.ctx.metrics.jobs.inc({ outcome: "wrong_result" });
          lastError = `host ${link.host} returned a wrong result`;
        } else {
          this.queue.succeeded(link);
          if (this.hosts.countable(link.host)) this.reports.count(link.host);
          return { host: link.host, result: reply.result as Hex };
        }
      } catch (error) {
        lastError = (error as Error).message;
        this.queue.failed(link);
        this.ctx.metrics.jobs.inc({ outcome: "host_failed" });
      }
      avoid = link.host;
    }
    throw nodeError("EDGE_NODE_HOST_FAILED", `hosts failed to run the job: ${lastError}`);
  }

  /** Waits for a host's slot (avoiding `avoid`), then sends the job; the link and its pending answer. */
  private onLink(job: HostJobBody, avoid: string | undefined, traceparent: string | undefined) {
    return new Promise<{ link: HostLink; answer: Promise<{ status: number; body: Buffer }> }>((resolve, reject) => {
      this.queue.submit({
        avoid,
        expire: reject,
        run: (link, startedAt) => {
          const answer = exchange(
            link,
            {
              ":method": "POST",
              ":path": "/compute",
              "x-edge-kind": "compute",
              "content-type": "application/json",
              ...(traceparent ? { traceparent } : {}),
            },
            Buffer.from(JSON.stringify(job)),
            this.jobTimeoutMs,
          ).finally(() => this.queue.done(link, startedAt));
          resolve({ link, answer });
        },
      });
    });
  }
}

/** One request over `link` and its whole answer (at most MAX_ANSWER_BYTES), within `timeoutMs`. */
export function exchange(
  link: HostLink,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer | null,
  timeoutMs: number,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = link.request(headers, body === null);
    } catch (error) {
      reject(error as Error);
      return;
    }
    let status = 0;
    const chunks: Buffer[] = [];
    let size = 0;
    stream.setTimeout(timeoutMs, () =>
      stream.close(0x8, () => reject(nodeError("EDGE_NODE_HOST_TIMEOUT", `no answer within ${timeoutMs} ms`))),
    );
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) stream.close(0x8);
      else chunks.push(chunk);
    });
    stream.on("end", () => resolve({ status, body: Buffer.concat(chunks) }));
    stream.on("close", () => reject(new Error(`the link to ${link.host} closed the job's stream`)));
    stream.on("error", reject);
    if (body !== null) stream.end(body);
  });
}
