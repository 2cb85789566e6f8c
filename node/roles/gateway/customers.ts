/**
 * Which customers' jobs a gateway takes: a request signed (canonically) by the customer for this gateway within
 * SIGNATURE_WINDOW_SECONDS of the gateway's clock, never served before (the replay guard, keyed on the signed
 * digest and reserved before any await, so N identical requests at once serve one), from a customer in good
 * standing at PaymentVault (the answer cached 5 s; an RPC hiccup keeps the last one), or on the
 * --allow-customers list when the deployment has no PaymentVault.
 */
import { type Address, getAddress } from "viem";

import { paymentVaultAbi } from "../../../offchain/common/generated/abis";
import {
  type ClientJobBody,
  type ClientJobHeaders,
  checkJobRequest,
  unixSeconds,
} from "../../../offchain/common/protocol";
import type { GatewayContext } from "../../context";
import { nodeError } from "../../errors";
import { ReplayGuard } from "../../../offchain/common/replayGuard";

/** How far a signed request's timestamp may be from the gateway's clock. */
export const SIGNATURE_WINDOW_SECONDS = 300n;

const STANDING_CACHE_MS = 5_000;
/**
 * Served requests remembered at most (each until its timestamp leaves the window): ~350 bytes each (measured in
 * test/node/gatewaySecurity.test.ts), so ~70 MB; room for 330 requests a second held for the whole 600 s a
 * timestamp can stay fresh. Past it: 503, retry later.
 */
export const REPLAY_CAPACITY = 200_000;

/** An admitted request: its customer, and `release` to call when it was not served after all (so it may be retried). */
export interface Admission {
  customer: Address;
  release(): void;
}

export type CustomersContext = Pick<GatewayContext, "signer" | "contracts" | "paymentVault"> & {
  /** D43: billing's credit (credit.ts) decides whom to serve, after admission: no on-chain standing check here. */
  creditBound?: boolean;
};

export class Customers {
  private readonly standing = new Map<string, { ok: boolean; at: number }>();
  /** Digests of the requests served (or being served), each until its timestamp is stale. */
  private readonly served: ReplayGuard;
  private readonly allowed: Set<string>;

  constructor(
    private readonly ctx: CustomersContext,
    allowCustomers: readonly string[],
    replayCapacity = REPLAY_CAPACITY,
  ) {
    this.allowed = new Set(allowCustomers.map((c) => c.toLowerCase()));
    this.served = new ReplayGuard(replayCapacity);
  }

  /** Requests the replay guard holds now. */
  get replayEntries(): number {
    return this.served.size;
  }

  /** How many customers the --allow-customers list holds. */
  get allowedCount(): number {
    return this.allowed.size;
  }

  /**
   * Checks a signed job request: fresh, signed canonically by the customer it names for this gateway, not served
   * before, from a customer in good standing. Returns the customer; the same signed request (same digest, however
   * its signature is encoded) is refused from now on, unless the caller `release`s it because it was not served.
   */
  async admit(headers: ClientJobHeaders, body: ClientJobBody): Promise<Admission> {
    const customer = getAddress(headers["x-edge-customer"]);
    const timestamp = BigInt(headers["x-edge-timestamp"]);
    // The customer signs with its wall clock: freshness goes by ours (epochs go by the epoch clock).
    const now = unixSeconds();
    if (timestamp > now + SIGNATURE_WINDOW_SECONDS || timestamp < now - SIGNATURE_WINDOW_SECONDS) {
      throw nodeError("EDGE_NODE_SIGNATURE_EXPIRED", "the request's timestamp is too far from now");
    }
    const { account, chainId } = this.ctx.signer;
    const check = await checkJobRequest(chainId, account.address, headers, body);
    if (!check.ok) {
      if (check.reason === "non-canonical") throw nodeError("EDGE_NODE_NONCANONICAL_SIGNATURE", check.message);
      throw nodeError("EDGE_NODE_BAD_SIGNATURE", "the request is not signed by the customer");
    }
    // Reserved before any further await: a concurrent copy of this request finds it taken.
    const digest = check.digest;
    const expiresAtMs = Number(timestamp + SIGNATURE_WINDOW_SECONDS + 1n) * 1000;
    const reservation = this.served.reserve(digest, expiresAtMs);
    if (reservation === "seen") throw nodeError("EDGE_NODE_REPLAYED", "this signed request was already served");
    if (reservation === "full")
      throw nodeError("EDGE_NODE_REPLAY_MEMORY_FULL", "too many requests within the signature window: retry later");
    const release = () => this.served.release(digest);
    try {
      if (!(await this.inGoodStanding(customer))) {
        throw nodeError("EDGE_NODE_CUSTOMER_NOT_ALLOWED", "the customer is not in good standing (debt, or no balance)");
      }
    } catch (error) {
      release(); // not served: the customer may send it again once the standing is known or restored
      throw error;
    }
    return { customer, release };
  }

  async inGoodStanding(customer: Address): Promise<boolean> {
    if (this.ctx.creditBound) return true;
    const vault = this.ctx.paymentVault;
    if (!vault) return this.allowed.has(customer.toLowerCase());
    const cached = this.standing.get(customer);
    if (cached && Date.now() - cached.at < STANDING_CACHE_MS) return cached.ok;
    try {
      const ok = await this.ctx.contracts.readContract({
        address: vault,
        abi: paymentVaultAbi,
        functionName: "isInGoodStanding",
        args: [customer],
      });
      this.standing.set(customer, { ok, at: Date.now() });
      return ok;
    } catch (error) {
      if (cached) return cached.ok; // an RPC hiccup keeps the last answer
      throw nodeError(
        "EDGE_NODE_VIEW_STALE",
        `cannot check the customer's standing now: ${(error as Error).message.split("\n")[0]}`,
      );
    }
  }
}
