/**
 * The stargate's usage for billing (issue 18, D58): `dns` `queries` per zone owner, through the meter the gateway
 * uses (node/usage.ts): every `add` is journaled before it returns, and every --usage-flush-ms what was added is
 * queued as one signed UsageBatch (target `billing`, path `/usage`) and the outbox sent. The batch sequence lives
 * in `<data dir>/<device>-stargate/usage-state.json`, the journal beside it. Without --billing nothing is recorded.
 *
 * The DNS server hands all zone owners' counts at most once a second in one `addMany` (one journal append for all
 * of them, R18-10; never per query).
 * Billing takes a stargate's batches for the `dns` service only (offchain/billing/ingest.ts).
 */
import { join } from "node:path";
import type { Address } from "viem";

import { WorkLoop } from "../../../offchain/common/workLoop";
import type { StargateConfig, StargateContext } from "../../context";
import { type UsageLine, UsageMeter, UsageStateFile } from "../../usage";

export interface StargateUsage {
  /** Adds `quantity` of `metric` of `service` for `customer` (journaled before it returns). */
  add(customer: Address, service: string, metric: string, quantity: bigint): void;
  /** Many customers' lines, journaled in one append before it returns (R18-10). */
  addMany(lines: ReadonlyArray<UsageLine>): void;
  start(): void;
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

export function createStargateUsage(
  ctx: StargateContext,
  config: Pick<StargateConfig, "billing" | "dataDir" | "usageFlushMs">,
): StargateUsage {
  const log = ctx.log.child({ component: "stargate-usage" });
  const enabled = config.billing !== undefined;
  const store = new UsageStateFile(join(config.dataDir, `${ctx.signer.account.address.toLowerCase()}-stargate`));
  const meter = new UsageMeter(ctx, store, enabled);
  let added = 0n;
  let flushes = 0;
  // One queue at a time: the flush loop and stop() both queue the meter.
  let queueing: Promise<void> = Promise.resolve();
  const queue = () => (queueing = queueing.catch(() => undefined).then(() => meter.queue()));
  const loop = new WorkLoop(
    async () => {
      await queue();
      await ctx.outgoing.flush();
      flushes++;
    },
    config.usageFlushMs,
    (error) => log.warn({ err: error.message }, "could not queue or send usage; it stays journaled or in the outbox"),
  );

  return {
    add(customer, service, metric, quantity) {
      if (!enabled || quantity <= 0n) return;
      meter.addAll(customer, service, [[metric, quantity]]);
      added += quantity;
    },
    addMany(lines) {
      const positive = lines.filter((l) => l.quantity > 0n);
      if (!enabled || positive.length === 0) return;
      meter.addMany(positive);
      for (const l of positive) added += l.quantity;
    },
    start() {
      if (!enabled) return log.warn({}, "no --billing: DNS queries are not billed");
      loop.start();
    },
    async stop() {
      if (!enabled) return;
      await loop.stop();
      await queue(); // the daemon flushes the outbox once more after the role stops
    },
    status: () => ({
      billing: enabled,
      added: added.toString(),
      pending: meter.pending,
      sequence: store.state.usageSequence,
      flushes,
    }),
  };
}
