/**
 * Stargate role: while admitted, sends the oracle a signed heartbeat every interval (one per epoch is what
 * scoring needs; more keep the oracle sure the stargate is alive). Heartbeats go through the outbox.
 */
import type { TypedApp } from "../../offchain/common/http";
import { signHeartbeat } from "../../offchain/common/protocol";

import { type NodeContext, type RoleModule, epochAt } from "../context";

export function createStargate(ctx: NodeContext): RoleModule {
  const log = ctx.log.child({ component: "stargate" });
  let timer: NodeJS.Timeout | undefined;
  let sent = 0;
  let lastHeartbeat: { epoch: string; timestamp: string } | null = null;
  if (!ctx.config.oracle) log.warn({}, "no --oracle: heartbeats are not sent");

  async function beat(): Promise<void> {
    if (!ctx.serving() || !ctx.config.oracle || !ctx.epochs) return;
    const timestamp = ctx.epochClockSeconds();
    const epoch = epochAt(ctx.epochs, timestamp);
    ctx.outbox.put({
      id: `heartbeat:${epoch}:${timestamp}`,
      key: `heartbeat:${epoch}`,
      target: "oracle",
      path: "/heartbeats",
      body: await signHeartbeat(ctx.account, ctx.chainId, epoch, timestamp),
    });
    lastHeartbeat = { epoch: epoch.toString(), timestamp: timestamp.toString() };
    sent += await ctx.outbox.flush(ctx.deliver);
  }

  const safeBeat = () =>
    beat().catch((error: Error) => log.warn({ err: error.message }, "heartbeat failed; it stays in the outbox"));

  return {
    register(_app: TypedApp) {},
    start() {
      timer = setInterval(() => void safeBeat(), ctx.config.heartbeatIntervalMs);
    },
    async stop() {
      if (timer) clearInterval(timer);
    },
    async onAdmission(admitted: boolean) {
      if (admitted) await safeBeat();
    },
    onViewChange() {},
    status() {
      return { heartbeatsDelivered: sent, lastHeartbeat };
    },
    routableHosts: () => 0,
  };
}
