/**
 * Usage for billing: the gateway adds up, per customer and metric (`jobs`, `rounds`), what it served, and
 * queues it into the outbox as one signed UsageBatch (service `compute`) each time it is asked. The batch's
 * sequence number is saved with it, so batches after a restart never reuse one.
 */
import { type UsageRecord, signUsageBatch } from "../../../offchain/common/protocol";
import type { SendingContext } from "../../context";
import type { GatewayStateFile } from "./state";

export type UsageContext = Pick<SendingContext, "signer" | "outgoing">;

export class UsageMeter {
  /** `${customer}|${metric}` -> quantity since the last batch */
  private readonly usage = new Map<string, bigint>();

  constructor(
    private readonly ctx: UsageContext,
    private readonly store: GatewayStateFile,
    /** Without billing nothing is recorded. */
    private readonly enabled: boolean,
  ) {}

  /** Customer-metric pairs not yet in a batch. */
  get pending(): number {
    return this.usage.size;
  }

  add(customer: string, metric: string, quantity: bigint): void {
    if (!this.enabled) return;
    const key = `${customer.toLowerCase()}|${metric}`;
    this.usage.set(key, (this.usage.get(key) ?? 0n) + quantity);
  }

  /** Queues what was added since the last batch as a signed batch (nothing when nothing was added). */
  async queue(): Promise<void> {
    if (!this.enabled || this.usage.size === 0) return;
    const state = this.store.state;
    state.usageSequence += 1;
    const sequence = state.usageSequence;
    const gateway = this.ctx.signer.account.address.toLowerCase();
    const time = Date.now();
    const records: UsageRecord[] = [...this.usage].map(([key, quantity], i) => {
      const [customer, metric] = key.split("|");
      return {
        id: `${gateway}:${sequence}:${i}`,
        gateway,
        customer,
        service: "compute",
        metric,
        quantity: quantity.toString(),
        time,
      };
    });
    this.usage.clear();
    this.ctx.outgoing.put({
      id: `usage:${sequence}`,
      target: "billing",
      path: "/usage",
      body: await signUsageBatch(this.ctx.signer.account, this.ctx.signer.chainId, BigInt(sequence), records),
    });
    this.store.save();
  }
}
