/**
 * What a role (host, gateway, stargate) gets from the daemon, and what it gives back (RoleModule).
 *
 * A role sees only what it uses, never the daemon itself:
 * - every role (RoleContext): the signer (the device key and the chain id; the key's address is the device),
 *   the log, the work tracker (draining waits for what it counts), `serving()` (admitted, synced, not draining,
 *   not closing), the metrics and the tracing;
 * - a role that sends to the oracle or billing (SendingContext: gateway, stargate) also the outbox with its
 *   delivery bound (`outgoing`) and the epoch clock (offchain/common/epochs.ts: the later of the wall clock and
 *   the chain head's time, the clock the oracle counts by, kept at the head by the daemon);
 * - the gateway (GatewayContext) also which devices the chain view admits (`chainAdmits`), whether the view is
 *   stale, and a contract reader with PaymentVault's address for customers' standing.
 * Each role takes its own slice of the configuration besides (HostConfig, GatewayConfig, StargateConfig).
 */
import type { FastifyBaseLogger } from "fastify";
import type { Address, Hex, LocalAccount, PublicClient } from "viem";

import type { EpochClock } from "../offchain/common/epochs";
import type { NetworkConfig, Region } from "../offchain/common/protocol";
import type { Sealed } from "../offchain/common/seal";
import type { Tracing } from "../offchain/common/tracing";
import type { TypedApp } from "../offchain/common/http";
import type { StakeType } from "../offchain/common/stakeMap";
import type { NodeConfig } from "./config";
import type { LoadReport } from "./loadReport";
import type { NodeMetrics } from "./metrics";
import type { OutboxItem } from "./outbox";
import type { WorkTracker } from "./workTracker";

/** The device key, which signs every message a role sends, and the chain its signatures are for. */
export interface Signer {
  account: Pick<LocalAccount, "address" | "signTypedData">;
  chainId: number;
}

/** The outbox with delivery bound: `put` persists a message, `flush` sends what is pending to its receiver. */
export interface Outgoing {
  put(item: OutboxItem): void;
  /** Returns how many items were delivered. */
  flush(): Promise<number>;
  /** The items not acknowledged by their receiver yet. */
  pending(): readonly OutboxItem[];
}

export interface RoleContext {
  signer: Signer;
  log: FastifyBaseLogger;
  work: WorkTracker;
  metrics: Pick<NodeMetrics, "jobs" | "registry">;
  /** Spans for requests' traces (D47): W3C trace context always, exported over OTLP when configured. */
  tracing: Pick<Tracing, "startSpan">;
  /** Admitted, synced, not draining and not closing: the node takes new work. */
  serving(): boolean;
}

export interface SendingContext extends RoleContext {
  outgoing: Outgoing;
  clock: EpochClock;
}

export interface GatewayContext extends SendingContext {
  /** Whether the node's chain view admits `device` with a stake of `type` now. */
  chainAdmits(device: string, type: StakeType): boolean;
  /** The chain view is older than the staleness bound. */
  stale(): boolean;
  contracts: Pick<PublicClient, "readContract">;
  /** From the address book; without one the gateway serves the --allow-customers list. */
  paymentVault: Address | undefined;
  /** Opens a box sealed to this device's key (offchain/common/seal.ts): certificates' private keys (D64). */
  unseal(sealed: Sealed, context: string): Buffer;
}

/**
 * The stargate: what a gateway sees of the chain, plus the admitted devices (the endpoints it checks, D51) and the
 * chain id's RPC for ConfigRegistry reads and the anchoring transactions.
 */
export interface StargateContext extends Omit<GatewayContext, "paymentVault" | "unseal"> {
  /** ConfigRegistry's address, from the address book (undefined: the deployment has none). */
  configRegistry: Address | undefined;
  /** The RPC URL, for the wallet client that anchors versions with --config-key. */
  rpc: string;
  /** The devices the chain view admits now, with their stake type. */
  admittedDevices(): { device: Address; type: StakeType }[];
}

export type HostConfig = Pick<
  NodeConfig,
  | "gateway"
  | "publicUrl"
  | "linkPingMs"
  | "maxJobRounds"
  | "capacity"
  | "cacheMemoryMb"
  | "cacheDiskMb"
  | "allowPrivateOrigins"
  | "jobTimeoutMs"
  | "region"
>;

export type GatewayConfig = Pick<
  NodeConfig,
  | "dataDir"
  | "oracle"
  | "billing"
  | "allowCustomers"
  | "linkPingMs"
  | "listenHost"
  | "sites"
  | "stargates"
  | "cdnPort"
  | "queueMax"
  | "queueWaitMs"
  | "verifyOneIn"
  | "reportIntervalMs"
  | "usageFlushMs"
  | "creditRefreshMs"
  | "creditMaxStaleMs"
  | "jobTimeoutMs"
  | "maxJobRounds"
  | "certs"
  | "tlsPort"
  | "acmeDirectory"
  | "acmeCa"
  | "acmeEmail"
  | "certSyncMs"
  | "region"
  | "storageQuotaMb"
  | "storageRepairGraceMs"
  | "storageRepairMs"
>;

export type StargateConfig = Pick<
  NodeConfig,
  | "oracle"
  | "heartbeatIntervalMs"
  | "dataDir"
  | "listenHost"
  | "grpcPort"
  | "configKey"
  | "anchorIntervalMs"
  | "peers"
  | "users"
  | "healthIntervalMs"
  | "tokenTtlMs"
  | "stargates"
  | "publicUrl"
  | "billing"
  | "usageFlushMs"
  | "dnsPort"
  | "dnsSiteTtl"
  | "dnsNameserver"
  | "dnsAnnounce"
  | "region"
>;

/**
 * The network configuration a node holds (D51): the anchored version, the deltas applied on top of it, and the
 * effective document (the anchored one with those deltas applied).
 */
export interface AppliedConfig {
  version: number;
  seq: number;
  /** The anchored document's hash (ConfigRegistry's for `version`). */
  hash: Hex;
  document: NetworkConfig;
}

export interface RoleModule {
  register(app: TypedApp): void;
  /** Starts the role's loops (and its own listeners: a gateway's front door). */
  start(): void | Promise<void>;
  /** Stops the role's loops and leaves the network gracefully (after in-flight work finished). */
  stop(): Promise<void>;
  onAdmission(admitted: boolean): Promise<void>;
  onViewChange(): void;
  status(): Record<string, unknown>;
  routableHosts(): number;
  /**
   * The capacity the role offers and the jobs waiting for it (D71: /ready's x-edge-load): a host's --capacity, a
   * gateway's linked hosts' total and its queue. Roles that run no jobs omit it.
   */
  load?(): { capacity: number; queueDepth: number };
  /**
   * Applies a configuration the node verified (anchored hash, delta signer). Throwing refuses it: the node
   * answers NACK with the error's message and keeps its last good configuration. Roles that use no configuration
   * omit it.
   */
  applyConfig?(config: AppliedConfig): void;
  /** The configuration a stargate holds itself (its store's effective one); other roles' is the daemon's subscriber's. */
  currentConfig?(): AppliedConfig | undefined;
  /** Takes the stargates' catalogue of endpoints and their health (D51); roles that use none omit it. */
  applyCatalogue?(catalogue: Catalogue): void;
  /**
   * Stargate (D59): leaves the serving group while still answering what arrives (the DNS announcement withdrawn,
   * configuration subscribers sent to the other stargates, no new ones taken); `joinGroup` undoes it. Both are
   * idempotent and return the role's group status. POST /admin/leave and /admin/join call them.
   */
  leaveGroup?(): Promise<Record<string, unknown>>;
  joinGroup?(): Promise<Record<string, unknown>>;
}

/** One endpoint of the stargates' health catalogue (proto/config.proto `Endpoint`). */
export interface CatalogueEndpoint {
  device: Address;
  role: "gateway" | "host" | "stargate";
  url: string;
  /** By the stargates' majority rule (D51). */
  healthy: boolean;
  /** The configuration version it last acknowledged (0: none). */
  version: number;
  /** Where it says it runs, from its signed hello (D68); absent: undeclared. */
  region?: Region;
  /**
   * Its load as this stargate's probe last read it (D71; x-edge-load): only in GET /health/catalogue's answer,
   * never in the catalogue the stargates publish (it changes at every check).
   */
  load?: LoadReport;
}

export interface Catalogue {
  atMs: number;
  endpoints: CatalogueEndpoint[];
}
