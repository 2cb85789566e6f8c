/**
 * Stargate role: while admitted, sends the oracle a signed heartbeat every interval (one per epoch is what
 * scoring needs; more keep the oracle sure the stargate is alive), and one as soon as it is admitted.
 * Heartbeats go through the outbox; a newer heartbeat of an epoch supersedes an unsent older one.
 *
 * It also serves the configuration stream (configPlane.ts, D53): `plane.server` (subscribers(),
 * publishCatalogue()), `plane.authority` (append, with --config-key) and `plane.effectiveConfig()`, and the
 * Network API under /api (api.ts, D56: logins, tokens, writes through the authority or a peer), and the health
 * checks and catalogue of endpoints (healthPlane.ts, D55) published through `plane.server`.
 *
 * With --dns-port it answers DNS (dns.ts, D57): customers' zones from the configuration and sites' hostnames with
 * the healthy, admitted, not-draining gateways of the catalogue; zones' queries are billed (usage.ts, D58). It can
 * leave and rejoin the serving group for a rollout (group.ts, D59).
 */
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import type { TypedApp } from "../../../offchain/common/http";
import { signHeartbeat } from "../../../offchain/common/protocol";
import { WorkLoop } from "../../../offchain/common/workLoop";
import type { RoleModule, StargateConfig, StargateContext } from "../../context";
import { NetworkApi } from "./api";
import { registerApiRoutes } from "./apiRoutes";
import { createConfigPlane } from "./configPlane";
import { createDns } from "./dns";
import { createGroup } from "./group";
import { createHealthPlane } from "./healthPlane";
import { createStargateUsage } from "./usage";

export function createStargate(ctx: StargateContext, config: StargateConfig): RoleModule {
  const log = ctx.log.child({ component: "stargate" });
  let sent = 0;
  let lastHeartbeat: { epoch: string; timestamp: string } | null = null;
  if (!config.oracle) log.warn({}, "no --oracle: heartbeats are not sent");
  const plane = createConfigPlane(ctx, config);
  const health = createHealthPlane(ctx, config, plane.server);
  const usage = createStargateUsage(ctx, config);
  const dns = createDns(ctx, config, {
    config: () => plane.effectiveConfig()?.document,
    catalogue: () => health.catalogue.catalogue(),
    loadOf: (device) => health.checker.verdict(device)?.load,
    bill: (owner, queries) => usage.add(owner, "dns", "queries", queries),
    billMany: (counts) =>
      usage.addMany(counts.map(([customer, quantity]) => ({ customer, service: "dns", metric: "queries", quantity }))),
  });
  const group = createGroup({ dns, server: plane.server, ctx });
  const configSigner = config.configKey ? privateKeyToAccount(config.configKey as Hex) : undefined;
  const api = new NetworkApi({
    ctx,
    users: config.users,
    tokenTtlMs: config.tokenTtlMs,
    peers: config.peers,
    publicUrl: () => config.publicUrl,
    authority: () => plane.authority,
    // Password logins' tokens are signed by the configuration key, never the device key (R17-1).
    configSigner: () => configSigner,
    anchor: plane.anchor,
    effectiveConfig: () => plane.effectiveConfig(),
    catalogue: () => health.catalogue.catalogue(),
  });

  async function beat(): Promise<void> {
    if (!ctx.serving() || !config.oracle) return;
    const timestamp = ctx.clock.nowSeconds();
    const epoch = ctx.clock.epochAt(timestamp);
    ctx.outgoing.put({
      id: `heartbeat:${epoch}:${timestamp}`,
      key: `heartbeat:${epoch}`,
      target: "oracle",
      path: "/heartbeats",
      body: await signHeartbeat(ctx.signer.account, ctx.signer.chainId, epoch, timestamp),
    });
    lastHeartbeat = { epoch: epoch.toString(), timestamp: timestamp.toString() };
    sent += await ctx.outgoing.flush();
  }

  const failed = (error: Error) => log.warn({ err: error.message }, "heartbeat failed; it stays in the outbox");
  const heartbeats = new WorkLoop(beat, config.heartbeatIntervalMs, failed);

  return {
    register(app: TypedApp) {
      plane.register(app);
      health.register(app);
      registerApiRoutes(app, api);
    },
    async start() {
      heartbeats.start();
      await plane.start();
      health.start();
      usage.start();
      await dns?.start();
    },
    async stop() {
      await heartbeats.stop();
      await dns?.stop();
      await health.stop();
      await plane.stop();
      await usage.stop();
    },
    async onAdmission(admitted: boolean) {
      if (admitted) await beat().catch(failed);
    },
    onViewChange() {},
    status() {
      return {
        heartbeatsDelivered: sent,
        lastHeartbeat,
        config: plane.status(),
        health: health.status(),
        api: api.status(),
        ...(dns && { dns: dns.status() }),
        group: group.status(),
        usage: usage.status(),
      };
    },
    leaveGroup: () => group.leave(),
    joinGroup: () => group.join(),
    currentConfig: () => plane.effectiveConfig(),
    routableHosts: () => 0,
  };
}
