/**
 * The gateway's front door for a customer's job: the gateway serves, the job is not too large, the customer's
 * signed request is admitted (customers.ts); then the job is dispatched to a host, counted in flight until it
 * returns, and its usage (one job, its rounds) recorded for billing. A job no host ran correctly is not billed,
 * and its signed request is released from the replay guard so the customer may send it again. With billing,
 * the job's price is reserved against the customer's credit before the work (credit.ts, D43): 402 when it is
 * used up, and a job that ran is always recorded.
 */
import type { ClientJobBody, ClientJobHeaders, ClientJobReply } from "../../../offchain/common/protocol";
import type { RoleContext } from "../../context";
import { assertJobSize, assertServing } from "../jobChecks";
import type { CreditLimiter } from "./credit";
import type { Customers } from "./customers";
import type { Dispatcher } from "./dispatch";
import type { UsageMeter } from "../../usage";

export class JobFrontDoor {
  private dispatched = 0;

  constructor(
    private readonly ctx: Pick<RoleContext, "signer" | "serving" | "work" | "metrics"> &
      Partial<Pick<RoleContext, "tracing">>,
    private readonly parts: {
      customers: Pick<Customers, "admit">;
      dispatcher: Pick<Dispatcher, "dispatch">;
      usage: Pick<UsageMeter, "add">;
      /** Absent without billing or PaymentVault: no credit bound. */
      credit?: Pick<CreditLimiter, "reserve" | "complete" | "release">;
    },
    private readonly maxJobRounds: number,
  ) {}

  /** Jobs handed to a host so far (whatever their outcome). */
  get dispatchedCount(): number {
    return this.dispatched;
  }

  async serve(headers: ClientJobHeaders & { traceparent?: string }, body: ClientJobBody): Promise<ClientJobReply> {
    // W3C trace context (D47): the client's, or a new trace; its context goes to the host with the job.
    const span = this.ctx.tracing?.startSpan("gateway compute job", { parent: headers.traceparent, kind: "server" });
    try {
      const reply = await this.run(headers, body, span?.traceparent);
      span?.setAttributes({ "edge.host": reply.host, "edge.job": reply.jobId });
      span?.end();
      return reply;
    } catch (error) {
      span?.end({ error: (error as Error).message });
      throw error;
    }
  }

  private async run(headers: ClientJobHeaders, body: ClientJobBody, traceparent?: string): Promise<ClientJobReply> {
    assertServing(this.ctx.serving(), "gateway");
    assertJobSize(body.rounds, this.maxJobRounds);
    const { customer, release } = await this.parts.customers.admit(headers, body);
    const { credit } = this.parts;
    const usage = [
      { service: "compute", metric: "jobs", quantity: 1n },
      { service: "compute", metric: "rounds", quantity: BigInt(body.rounds) },
    ];
    let reservation: Awaited<ReturnType<CreditLimiter["reserve"]>> | undefined;
    try {
      reservation = await credit?.reserve(customer, usage);
    } catch (error) {
      release(); // refused before the work: the customer may send it again once it has credit
      throw error;
    }
    return this.ctx.work.track(async () => {
      const jobId = `${this.ctx.signer.account.address.toLowerCase()}:${Date.now()}:${this.dispatched++}`;
      let outcome: { host: string; result: string };
      try {
        outcome = await this.parts.dispatcher.dispatch(
          { jobId, payload: body.payload, rounds: body.rounds },
          traceparent,
        );
      } catch (error) {
        release(); // not served, not billed: the same signed request may come again
        if (reservation) credit!.release(reservation);
        throw error;
      }
      const { host, result } = outcome;
      this.ctx.metrics.jobs.inc({ outcome: "completed" });
      // Recorded and moved from reserved to served in one tick (the credit refresh snapshots between ticks).
      for (const line of usage) this.parts.usage.add(customer, line.metric, line.quantity);
      if (reservation) credit!.complete(reservation);
      return { jobId, host, result };
    });
  }
}
