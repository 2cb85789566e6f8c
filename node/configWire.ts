/**
 * The configuration stream's wire (proto/config.proto, D53), shared by the stargate's server and the nodes'
 * subscriber: the loaded service definition, the messages as @grpc/proto-loader gives them (uint64 as numbers,
 * bytes as Buffers, the oneof's name in `body`), and the channel options both sides use.
 *
 * The .proto is found by walking up from this module's directory, so the same code runs from the sources
 * (node/) and from the compiled build (dist/node/, whose parent holds proto/).
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

import type { Address } from "viem";

import { MAX_DOCUMENT_BYTES, type Region, readRegionFields, regionFields } from "../offchain/common/protocol";
import type { Catalogue, CatalogueEndpoint } from "./context";

export interface HelloMsg {
  node: string;
  role: string;
  url: string;
  version: number;
  seq: number;
  signature: string;
  /** D68: both "" when undeclared. */
  country: string;
  region: string;
}
export interface AckMsg {
  version: number;
  seq: number;
}
export interface NackMsg extends AckMsg {
  reason: string;
}
export type NodeMessage =
  { body: "hello"; hello: HelloMsg } | { body: "ack"; ack: AckMsg } | { body: "nack"; nack: NackMsg };

export interface SnapshotMsg {
  version: number;
  document: Buffer;
}
export interface DeltaMsg {
  base: number;
  seq: number;
  body: Buffer;
  signature: string;
}
export interface EndpointMsg {
  device: string;
  role: string;
  url: string;
  healthy: boolean;
  version: number;
  country: string;
  region: string;
}
export interface CatalogueMsg {
  atMs: number;
  endpoints: EndpointMsg[];
}
export type StargateMessage =
  | { body: "challenge"; challenge: { stargate: string; nonce: Buffer } }
  | { body: "snapshot"; snapshot: SnapshotMsg }
  | { body: "delta"; delta: DeltaMsg }
  | { body: "catalogue"; catalogue: CatalogueMsg };

/** What the stream's receivers ask the chain: ConfigRegistry as offchain/common/configAnchor.ts reads it. */
export type { ConfigAnchorReader as AnchorReader } from "../offchain/common/configAnchor";

export type SubscribeCall = grpc.ServerDuplexStream<NodeMessage, StargateMessage>;
export type SubscribeClientCall = grpc.ClientDuplexStream<NodeMessage, StargateMessage>;

/** What a node sends (hello, acks, nacks) is small: anything over this is refused by gRPC itself. */
export const MAX_NODE_MESSAGE_BYTES = 16 * 1024;
/** What a stargate sends: a document at its largest plus the framing. */
export const MAX_STARGATE_MESSAGE_BYTES = MAX_DOCUMENT_BYTES + 64 * 1024;
/** A Nack's reason is cut to this many characters (the .proto's bound). */
export const MAX_REASON = 512;

/** Both ends ping an idle connection, so a vanished peer is noticed within keepalive time + timeout. */
const KEEPALIVE = {
  "grpc.keepalive_time_ms": 15_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 1,
};

export const SERVER_OPTIONS: grpc.ServerOptions = {
  ...KEEPALIVE,
  "grpc.max_receive_message_length": MAX_NODE_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_STARGATE_MESSAGE_BYTES,
};

export const CLIENT_OPTIONS: grpc.ChannelOptions = {
  ...KEEPALIVE,
  // A connection of its own per client (not grpc-js's process-wide pool): a stargate allows few streams on one.
  "grpc.use_local_subchannel_pool": 1,
  "grpc.max_receive_message_length": MAX_STARGATE_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_NODE_MESSAGE_BYTES,
};

/** The .proto's path: `proto/config.proto` in the first ancestor of this module's directory that has it. */
export function protoPath(from = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "proto", "config.proto");
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`proto/config.proto not found above ${from}`);
  }
}

interface ConfigStreamClient extends grpc.Client {
  Subscribe(options?: grpc.CallOptions): SubscribeClientCall;
}
export interface ConfigStreamDefinition {
  service: grpc.ServiceDefinition;
  Client: new (
    address: string,
    credentials: grpc.ChannelCredentials,
    options?: grpc.ChannelOptions,
  ) => ConfigStreamClient;
}

let loaded: ConfigStreamDefinition | undefined;

/** The ConfigStream service, loaded once. */
export function configStream(): ConfigStreamDefinition {
  if (!loaded) {
    const definition = protoLoader.loadSync(protoPath(), {
      keepCase: false,
      longs: Number,
      bytes: Buffer,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      edge: { config: { v1: { ConfigStream: grpc.ServiceClientConstructor } } };
    };
    const ctor = pkg.edge.config.v1.ConfigStream;
    loaded = { service: ctor.service, Client: ctor as unknown as ConfigStreamDefinition["Client"] };
  }
  return loaded;
}

/** A gRPC status error a server ends a call with. */
export function statusError(code: grpc.status, details: string): grpc.StatusObject & Error {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/** The catalogue a stream carried, as roles take it. */
export function catalogueOf(message: CatalogueMsg): Catalogue {
  return {
    atMs: message.atMs,
    endpoints: message.endpoints.map((e) => ({
      device: e.device as Address,
      role: e.role as CatalogueEndpoint["role"],
      url: e.url,
      healthy: e.healthy,
      version: e.version,
      ...regionOf(e),
    })),
  };
}

/** An endpoint's declared region from its two strings (D68); a malformed one is dropped (undeclared). */
function regionOf(e: EndpointMsg): { region?: Region } {
  const read = readRegionFields(e);
  return "region" in read && read.region ? { region: read.region } : {};
}

/** The catalogue as a stream carries it: regions as their two strings ("" when undeclared). */
export function catalogueMsgOf(catalogue: Catalogue): CatalogueMsg {
  return {
    atMs: catalogue.atMs,
    endpoints: catalogue.endpoints.map(({ region, ...e }) => ({ ...e, ...regionFields(region) })),
  };
}
