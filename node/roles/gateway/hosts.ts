/**
 * The hosts a gateway routes to: a host registers with a registration signed by its device key for this
 * gateway, and is routable while the gateway's own chain view admits it as a host and it re-registered within
 * three registration intervals. A host the chain no longer admits is dropped at once, whatever it says; while
 * the view is stale, hosts already known keep working but no new host is accepted.
 */
import { randomBytes } from "node:crypto";
import { getAddress } from "viem";

import {
  type HostRegistrationBody,
  type HostRegistrationReply,
  verifyHostRegistration,
} from "../../../offchain/common/protocol";
import { StakeType } from "../../../offchain/common/stakeMap";
import type { GatewayContext } from "../../context";
import { nodeError } from "../../errors";
import { SIGNATURE_WINDOW_SECONDS } from "./customers";

export interface HostEntry {
  url: string;
  /** The bearer token the gateway's job requests to this host carry. */
  token: string;
  lastSeen: number;
  /** The newest registration's timestamp (ms): an older or equal one is a replay. */
  lastTimestamp: bigint;
  failures: number;
}

export type HostsContext = Pick<GatewayContext, "signer" | "log" | "chainAdmits" | "stale" | "serving">;

export class HostRegistry {
  private readonly hosts = new Map<string, HostEntry>();
  private rejected = 0;

  constructor(
    private readonly ctx: HostsContext,
    /** A host not heard from for this long is not routable. */
    private readonly ttlMs: number,
  ) {}

  /** Registers a host, renews its registration, or lets it leave. */
  async register(body: HostRegistrationBody): Promise<HostRegistrationReply> {
    const self = this.ctx.signer.account.address;
    const timestamp = BigInt(body.timestamp); // milliseconds
    const now = BigInt(Date.now());
    const window = SIGNATURE_WINDOW_SECONDS * 1000n;
    if (getAddress(body.gateway) !== self) {
      throw nodeError("EDGE_NODE_WRONG_GATEWAY", `this registration is for gateway ${body.gateway}`);
    }
    if (timestamp > now + window || timestamp < now - window) {
      throw nodeError("EDGE_NODE_SIGNATURE_EXPIRED", "the registration's timestamp is too far from now");
    }
    const host = getAddress(body.host);
    if (!(await verifyHostRegistration(this.ctx.signer.chainId, body)))
      throw nodeError("EDGE_NODE_BAD_SIGNATURE", "the registration is not signed by the host's device key");
    const entry = this.hosts.get(host);
    if (entry && timestamp <= entry.lastTimestamp) {
      throw nodeError("EDGE_NODE_REPLAYED", "a newer registration of this host was already seen");
    }
    if (body.leaving) {
      this.hosts.delete(host);
      this.ctx.log.info({ host }, "host left");
      return { left: true };
    }
    if (!this.admitted(host)) {
      this.rejected += 1;
      throw nodeError("EDGE_NODE_HOST_NOT_ADMITTED", "the chain does not admit this device as a host");
    }
    if (!entry && this.ctx.stale()) {
      throw nodeError("EDGE_NODE_VIEW_STALE", "the gateway's chain view is stale: no new hosts until it is fresh");
    }
    if (!entry && !this.ctx.serving()) throw nodeError("EDGE_NODE_NOT_SERVING", "this gateway is not serving");
    const next: HostEntry = entry ?? {
      url: body.url,
      token: randomBytes(24).toString("hex"),
      lastSeen: 0,
      lastTimestamp: 0n,
      failures: 0,
    };
    next.url = body.url;
    next.lastSeen = Date.now();
    next.lastTimestamp = timestamp;
    if (!entry) this.ctx.log.info({ host, url: body.url }, "host registered");
    this.hosts.set(host, next);
    return { token: next.token, gateway: self };
  }

  /** Whether the gateway's chain view admits `host` as a host now. */
  admitted(host: string): boolean {
    return this.ctx.chainAdmits(host, StakeType.Host);
  }

  /** Admitted hosts heard from recently, which jobs can go to. */
  routable(): Array<[string, HostEntry]> {
    const now = Date.now();
    return [...this.hosts].filter(([host, entry]) => this.admitted(host) && now - entry.lastSeen <= this.ttlMs);
  }

  /** Drops every host the chain no longer admits: they get no further job, whatever they say. */
  prune(): void {
    for (const host of [...this.hosts.keys()]) {
      if (!this.admitted(host)) {
        this.hosts.delete(host);
        this.ctx.log.info({ host }, "host no longer admitted: removed from routing");
      }
    }
  }

  /** An evicted gateway routes nothing. */
  clear(): void {
    this.hosts.clear();
  }

  get registered(): number {
    return this.hosts.size;
  }

  /** Registrations refused because the chain does not admit the host. */
  get rejectedCount(): number {
    return this.rejected;
  }
}
