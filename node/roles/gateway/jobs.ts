/**
 * The gateway's front door for a customer's job: the gateway serves, the job is not too large, the customer's
 * signed request is admitted (customers.ts); then the job is dispatched to a host, counted in flight until it
 * returns, and its usage (one job, its rounds) recorded for billing. A job no host ran correctly is not billed,
 * and its signed request is released from the replay guard so the customer may send it again.
 */
import type { ClientJobBody, ClientJobHeaders, ClientJobReply } from "../../../offchain/common/protocol";
import type { RoleContext } from "../../context";
import { assertJobSize, assertServing } from "../jobChecks";
import type { Customers } from "./customers";
import type { Dispatcher } from "./dispatch";
import type { UsageMeter } from "./usage";

export class JobFrontDoor {
  private dispatched = 0;

  constructor(
    private readonly ctx: Pick<RoleContext, "signer" | "serving" | "work" | "metrics">,
    private readonly parts: {
      customers: Pick<Customers, "admit">;
      dispatcher: Pick<Dispatcher, "dispatch">;
      usage: Pick<UsageMeter, "add">;
    },
    private readonly maxJobRounds: number,
  ) {}

  /** Jobs handed to a host so far (whatever their outcome). */
  get dispatchedCount(): number {
    return this.dispatched;
  }

  async serve(headers: ClientJobHeaders, body: ClientJobBody): Promise<ClientJobReply> {
    assertServing(this.ctx.serving(), "gateway");
    assertJobSize(body.rounds, this.maxJobRounds);
    const { customer, release } = await this.parts.customers.admit(headers, body);
    return this.ctx.work.track(async () => {
      const jobId = `${this.ctx.signer.account.address.toLowerCase()}:${Date.now()}:${this.dispatched++}`;
      let outcome: { host: string; result: string };
      try {
        outcome = await this.parts.dispatcher.dispatch({ jobId, payload: body.payload, rounds: body.rounds });
      } catch (error) {
        release(); // not served, not billed: the same signed request may come again
        throw error;
      }
      const { host, result } = outcome;
      this.ctx.metrics.jobs.inc({ outcome: "completed" });
      this.parts.usage.add(customer, "jobs", 1n);
      this.parts.usage.add(customer, "rounds", BigInt(body.rounds));
      return { jobId, host, result };
    });
  }
}
