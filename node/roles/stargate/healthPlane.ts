/**
 * The stargate's health part (D55), wired: the checker (health.ts) checks the configuration subscribers
 * (`server.subscribers()`: gateways, hosts, relaying stargates) and the endpoints the peer stargates check; the
 * catalogue (catalogue.ts) signs this stargate's verdicts for its peers, each with the hello its device signed
 * (the subscribers' from `server.helloProofs()`, R17-5), fetches theirs, applies the majority rule
 * and publishes the catalogue to the subscribers (`server.publishCatalogue`) when it changes. Routes:
 * GET /health/verdicts (signed, for peers) and GET /health/catalogue.
 */
import type { TypedApp } from "../../../offchain/common/http";
import { StakeType } from "../../../offchain/common/stakeMap";
import { WorkLoop } from "../../../offchain/common/workLoop";
import type { Catalogue, StargateConfig, StargateContext } from "../../context";
import { CatalogueProducer } from "./catalogue";
import { type EndpointRole, HealthChecker, type HealthTarget } from "./health";
import type { SubscriberView } from "./configServer";
import type { ProvenHellos } from "./helloProofs";

const STAKE_OF: Record<EndpointRole, StakeType> = {
  gateway: StakeType.Gateway,
  host: StakeType.Host,
  stargate: StakeType.Stargate,
};

export interface HealthPlane {
  checker: HealthChecker;
  catalogue: CatalogueProducer;
  register(app: TypedApp): void;
  start(): void;
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

export interface CatalogueSink {
  subscribers(): SubscriberView[];
  /** The hellos the subscribers signed: relayed with this stargate's verdicts (R17-5). */
  helloProofs(): ProvenHellos;
  publishCatalogue(catalogue: Catalogue): void;
}

/** Subscribers first (their URL and acknowledged version are their own word), then what peers check besides. */
export function targetsOf(subscribers: readonly SubscriberView[], fromPeers: readonly HealthTarget[]): HealthTarget[] {
  const seen = new Set<string>();
  const targets: HealthTarget[] = [];
  for (const s of subscribers) {
    if (!(s.role in STAKE_OF) || seen.has(s.device.toLowerCase())) continue;
    seen.add(s.device.toLowerCase());
    targets.push({ device: s.device, role: s.role as EndpointRole, url: s.url, version: s.version });
  }
  for (const t of fromPeers) {
    if (seen.has(t.device.toLowerCase())) continue;
    seen.add(t.device.toLowerCase());
    targets.push(t);
  }
  return targets;
}

export function createHealthPlane(
  ctx: StargateContext,
  config: Pick<StargateConfig, "peers" | "healthIntervalMs">,
  sink: CatalogueSink,
): HealthPlane {
  const log = ctx.log.child({ component: "health" });
  const intervalMs = config.healthIntervalMs;
  const registry = ctx.metrics.registry;
  const admits = (device: `0x${string}`, role: EndpointRole) => ctx.chainAdmits(device, STAKE_OF[role]);
  const peerErrors = new Map<string, string>();
  const catalogue: CatalogueProducer = new CatalogueProducer({
    signer: ctx.signer,
    admits,
    ownVerdicts: () => checker.verdicts(),
    loadOf: (device) => checker.verdict(device)?.load,
    helloProofs: () => sink.helloProofs(),
    peers: config.peers,
    intervalMs,
    registry,
    publish: (c) => sink.publishCatalogue(c),
    onPeerError: (peer, message) => {
      // Logged when a peer's problem changes, not every interval it lasts.
      if (peerErrors.get(peer) !== message) log.warn({ peer, err: message }, "peer stargate's verdicts not taken");
      peerErrors.set(peer, message);
    },
  });
  const checker: HealthChecker = new HealthChecker({
    targets: () => targetsOf(sink.subscribers(), catalogue.peerTargets()),
    admits,
    intervalMs,
    registry,
    onChange: (v) => log.info({ device: v.device, role: v.role, url: v.url, healthy: v.healthy }, "endpoint health"),
  });
  const loop = new WorkLoop(
    async () => {
      await catalogue.pass();
      for (const peer of catalogue.status().peers as { url: string; error?: string }[]) {
        if (!peer.error) peerErrors.delete(peer.url);
      }
    },
    Math.min(1_000, intervalMs),
    (error) => log.warn({ err: error.message }, "catalogue pass failed"),
  );
  return {
    checker,
    catalogue,
    register: (app) => catalogue.register(app),
    start() {
      checker.start();
      loop.start();
    },
    async stop() {
      await loop.stop();
      await checker.stop();
      await catalogue.close();
    },
    status: () => ({ targets: checker.size(), checksInFlight: checker.inFlight(), catalogue: catalogue.status() }),
  };
}
