/**
 * The stargate's part of the configuration stream, put together (D53): the store under the data directory, the
 * gRPC server on listenHost:grpcPort, the /config routes, the authority with --config-key, and with --stargates
 * the relay: a subscriber like a node's (role "stargate") whose verified configuration goes into the store, so
 * this stargate serves it to its own subscribers.
 */
import { join } from "node:path";
import { type Hex, createPublicClient, createWalletClient, defineChain, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { ConfigAnchor, anchorVersion } from "../../../offchain/common/configAnchor";
import { StakeType } from "../../../offchain/common/stakeMap";
import type { TypedApp } from "../../../offchain/common/http";
import { type ConfigChange, ConfigSubscriber, type HeldConfig } from "../../configSubscriber";
import type { AnchorReader } from "../../configWire";
import type { AppliedConfig, StargateConfig, StargateContext } from "../../context";
import { ConfigAuthority } from "./authority";
import { registerConfigRoutes } from "./configRoutes";
import { ConfigServer, type ConfigServerOptions } from "./configServer";
import { ConfigStore } from "./configStore";

export interface ConfigPlane {
  store: ConfigStore;
  server: ConfigServer;
  authority: ConfigAuthority | undefined;
  /** ConfigRegistry's reader (undefined without one): the Network API checks privileged tokens' issuers with it. */
  anchor: AnchorReader | undefined;
  /** The configuration in force: the latest anchored version with its deltas. */
  effectiveConfig(): AppliedConfig | undefined;
  register(app: TypedApp): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

export type ConfigPlaneConfig = Pick<
  StargateConfig,
  "dataDir" | "listenHost" | "grpcPort" | "configKey" | "anchorIntervalMs" | "stargates" | "publicUrl" | "region"
>;

export function createConfigPlane(
  ctx: StargateContext,
  config: ConfigPlaneConfig,
  limits: Omit<ConfigServerOptions, "host" | "port"> = {},
): ConfigPlane {
  const device = ctx.signer.account.address.toLowerCase();
  const store = new ConfigStore(join(config.dataDir, `${device}-stargate`, "config.sqlite"));
  const server = new ConfigServer(ctx, store, { host: config.listenHost, port: config.grpcPort, ...limits });
  const anchor: AnchorReader | undefined =
    ctx.configRegistry && new ConfigAnchor({ client: ctx.contracts, address: ctx.configRegistry });
  if (!anchor) ctx.log.warn({}, "the deployment has no ConfigRegistry: no configuration is served");
  const authority = config.configKey && anchor ? createAuthority(ctx, store, anchor, config) : undefined;
  const relay =
    config.stargates.length > 0 && anchor
      ? new ConfigSubscriber(ctx, {
          role: "stargate",
          url: () => config.publicUrl,
          region: config.region,
          stargates: config.stargates,
          anchor,
          isStargate: (address) => ctx.chainAdmits(address, StakeType.Stargate),
          held: () => heldOf(store),
          apply: (_config, change) => relayInto(store, change),
        })
      : undefined;
  return {
    store,
    server,
    authority,
    anchor,
    effectiveConfig: () => store.effectiveConfig(),
    register: (app) => registerConfigRoutes(app, { store, server, anchor, authority }),
    async start() {
      await server.start();
      authority?.start();
      await relay?.start();
    },
    async stop() {
      await relay?.stop();
      await authority?.stop();
      await server.stop();
      store.close();
    },
    status: () => ({
      version: store.latest()?.version ?? 0,
      seq: store.seq(),
      grpcPort: server.boundPort,
      subscribers: server.subscribers().filter((s) => s.connected).length,
      ...(authority ? { authority: authority.status() } : {}),
      ...(relay ? { upstream: relay.status() } : {}),
    }),
  };
}

function createAuthority(
  ctx: StargateContext,
  store: ConfigStore,
  anchor: AnchorReader,
  config: ConfigPlaneConfig,
): ConfigAuthority {
  const account = privateKeyToAccount(config.configKey as Hex);
  const chain = defineChain({
    id: ctx.signer.chainId,
    name: `chain ${ctx.signer.chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [ctx.rpc] } },
  });
  const transport = http(ctx.rpc, { retryCount: 0, timeout: 30_000 });
  const wallet = createWalletClient({ account, chain, transport });
  const client = createPublicClient({ chain, transport });
  const registry = ctx.configRegistry!;
  return new ConfigAuthority(ctx, store, {
    account,
    anchor,
    intervalMs: config.anchorIntervalMs,
    publish: async (version, hash) => {
      await anchorVersion(wallet, client, registry, version, hash);
    },
  });
}

/** The store's latest version and deltas, as the relay's subscriber holds them. */
function heldOf(store: ConfigStore): HeldConfig | undefined {
  const latest = store.latest();
  const effective = store.effectiveConfig();
  if (!latest || !effective) return undefined;
  return {
    ...latest,
    deltas: store.currentDeltas().map(({ body, signature, parsed }) => ({ body, signature, parsed })),
    effective: effective.document,
  };
}

/** A verified change from upstream, stored as it came (the server pushes it on). */
function relayInto(store: ConfigStore, change: ConfigChange): void {
  if (change.kind === "snapshot") store.putVersion(change);
  else store.putDelta(change);
}
