/**
 * Edge DNS (issue 18, D57): the stargate's authoritative DNS server over UDP and TCP. STUB: the DNS helper
 * replaces this file; the interface below is the seam the stargate role (index.ts) is wired to.
 */
import type { Address } from "viem";

import type { NetworkConfig } from "../../../offchain/common/protocol";
import type { Catalogue, StargateConfig, StargateContext } from "../../context";

export interface DnsSources {
  /** The configuration in force (zones, sites, draining); undefined before the first one. */
  config(): NetworkConfig | undefined;
  /** The stargates' catalogue (healthy by the majority rule, admitted endpoints). */
  catalogue(): Catalogue;
  /** Counts answered queries of a customer zone for billing (`dns` `queries`, billed to the zone's owner). */
  bill(owner: Address, queries: bigint): void;
}

export interface DnsServer {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Where it listens (after start). */
  address(): { host: string; port: number } | undefined;
  /** Withdraws this stargate from the serving group (--dns-announce); it keeps answering what still arrives. */
  leave(): Promise<void>;
  /** Announces it again. */
  join(): Promise<void>;
  status(): Record<string, unknown>;
}

/** The DNS server, or undefined without --dns-port. */
export function createDns(_ctx: StargateContext, config: StargateConfig, _sources: DnsSources): DnsServer | undefined {
  if (config.dnsPort === undefined) return undefined;
  throw new Error("Edge DNS is not built yet");
}
