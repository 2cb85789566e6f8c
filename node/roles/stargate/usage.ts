/**
 * The stargate's usage for billing (issue 18, D58): `dns` `queries` per zone owner, journaled and sent to billing
 * as signed usage batches through the outbox. STUB: the billing helper replaces this file.
 */
import type { Address } from "viem";

import type { StargateConfig, StargateContext } from "../../context";

export interface StargateUsage {
  /** Adds `quantity` of `metric` of `service` for `customer` (journaled before it returns). */
  add(customer: Address, service: string, metric: string, quantity: bigint): void;
  start(): void;
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

export function createStargateUsage(_ctx: StargateContext, _config: StargateConfig): StargateUsage {
  return { add() {}, start() {}, stop: async () => {}, status: () => ({}) };
}
