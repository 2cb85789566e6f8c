/**
 * Which customers' jobs a gateway takes: a request signed by the customer for this gateway within
 * SIGNATURE_WINDOW_SECONDS of the gateway's clock, never served before (replay guard), from a customer in good
 * standing at PaymentVault (the answer cached 5 s; an RPC hiccup keeps the last one), or on the
 * --allow-customers list when the deployment has no PaymentVault.
 */
import { type Address, getAddress } from "viem";

import { paymentVaultAbi } from "../../../offchain/common/generated/abis";
import {
  type ClientJobBody,
  type ClientJobHeaders,
  unixSeconds,
  verifyJobRequest,
} from "../../../offchain/common/protocol";
import type { GatewayContext } from "../../context";
import { nodeError } from "../../errors";

/** How far a signed request's timestamp may be from the gateway's clock. */
export const SIGNATURE_WINDOW_SECONDS = 300n;

const STANDING_CACHE_MS = 5_000;
/** A served request's signature is remembered twice the window: by then its timestamp is refused anyway. */
const REPLAY_MEMORY_MS = Number(SIGNATURE_WINDOW_SECONDS) * 2_000;

export type CustomersContext = Pick<GatewayContext, "signer" | "contracts" | "paymentVault">;

export class Customers {
  private readonly standing = new Map<string, { ok: boolean; at: number }>();
  /** signature -> expiry (ms), in the order served, so expiries only grow along the map. */
  private readonly served = new Map<string, number>();
  private readonly allowed: Set<string>;

  constructor(
    private readonly ctx: CustomersContext,
    allowCustomers: readonly string[],
  ) {
    this.allowed = new Set(allowCustomers.map((c) => c.toLowerCase()));
  }

  /** How many customers the --allow-customers list holds. */
  get allowedCount(): number {
    return this.allowed.size;
  }

  /**
   * Checks a signed job request: fresh, signed by the customer it names for this gateway, not served before,
   * from a customer in good standing. Returns the customer; the same request is refused from now on.
   */
  async admit(headers: ClientJobHeaders, body: ClientJobBody): Promise<Address> {
    const customer = getAddress(headers["x-edge-customer"]);
    const timestamp = BigInt(headers["x-edge-timestamp"]);
    // The customer signs with its wall clock: freshness goes by ours (epochs go by the epoch clock).
    const now = unixSeconds();
    if (timestamp > now + SIGNATURE_WINDOW_SECONDS || timestamp < now - SIGNATURE_WINDOW_SECONDS) {
      throw nodeError("EDGE_NODE_SIGNATURE_EXPIRED", "the request's timestamp is too far from now");
    }
    const { account, chainId } = this.ctx.signer;
    if (!(await verifyJobRequest(chainId, account.address, headers, body)))
      throw nodeError("EDGE_NODE_BAD_SIGNATURE", "the request is not signed by the customer");
    const signature = headers["x-edge-signature"];
    if (this.served.has(signature)) throw nodeError("EDGE_NODE_REPLAYED", "this signed request was already served");
    if (!(await this.inGoodStanding(customer))) {
      throw nodeError("EDGE_NODE_CUSTOMER_NOT_ALLOWED", "the customer is not in good standing (debt, or no balance)");
    }
    this.remember(signature);
    return customer;
  }

  async inGoodStanding(customer: Address): Promise<boolean> {
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

  /** Remembers a served signature and forgets the expired ones (the oldest come first). */
  private remember(signature: string): void {
    const now = Date.now();
    for (const [old, expiry] of this.served) {
      if (expiry >= now) break;
      this.served.delete(old);
    }
    this.served.set(signature, now + REPLAY_MEMORY_MS);
  }
}
