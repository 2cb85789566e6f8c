/**
 * A host's session with its gateway: a signed registration (repeated while admitted, so the gateway keeps it
 * routable), the bearer token the gateway hands out for it, and a signed leave. Registrations and leaves never
 * overlap and keep their order; a failure is logged, kept for /status and retried by the next registration.
 */
import type { Address } from "viem";

import { bearerMatches } from "../../../offchain/common/http";
import { type HostRegistrationReply, signHostRegistration } from "../../../offchain/common/protocol";
import type { RoleContext } from "../../context";

export interface SessionStatus {
  gateway: string;
  registered: boolean;
  registeredAt: number | null;
  lastError: string | null;
}

export class GatewaySession {
  private token: string | null = null;
  private gatewayAddressSeen: Address | null = null;
  private registeredAt: number | null = null;
  private lastError: string | null = null;
  private busy: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: Pick<RoleContext, "signer" | "log">,
    private readonly gatewayUrl: string,
    /** Read at each registration: a node listening on port 0 learns its URL only once it listens. */
    private readonly publicUrl: () => string,
  ) {}

  /** The gateway's device address, once learnt (the first registration asks for it). */
  get gatewayDevice(): Address | null {
    return this.gatewayAddressSeen;
  }

  get registered(): boolean {
    return this.token !== null;
  }

  /** Whether a job request carries the token of the current session. */
  authorizes(authorization: string | undefined): boolean {
    return this.token !== null && bearerMatches(authorization, this.token);
  }

  register(): Promise<void> {
    return this.schedule(false);
  }

  /** Leaves the gateway if registered; waits for whatever was scheduled before. */
  leave(): Promise<void> {
    return this.token !== null ? this.schedule(true) : this.busy;
  }

  status(): SessionStatus {
    return {
      gateway: this.gatewayUrl,
      registered: this.registered,
      registeredAt: this.registeredAt,
      lastError: this.lastError,
    };
  }

  private schedule(leaving: boolean): Promise<void> {
    this.busy = this.busy.then(() =>
      this.send(leaving).catch((error: Error) => {
        this.lastError = error.message;
        this.ctx.log.warn(
          { err: error.message, leaving },
          leaving ? "could not leave the gateway" : "could not register with the gateway",
        );
      }),
    );
    return this.busy;
  }

  private async send(leaving: boolean): Promise<void> {
    const gateway = await this.gatewayAddress();
    const registration = await signHostRegistration(this.ctx.signer.account, this.ctx.signer.chainId, {
      gateway,
      url: this.publicUrl(),
      leaving,
      // Milliseconds: a registration and a leave in the same second must still be ordered.
      timestamp: BigInt(Date.now()),
    });
    const response = await fetch(`${this.gatewayUrl}/hosts/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(registration),
      signal: AbortSignal.timeout(5_000),
    });
    const body = (await response.json().catch(() => ({}))) as Partial<HostRegistrationReply> & { error?: string };
    if (!response.ok) throw new Error(`gateway refused: ${response.status} ${body.error ?? ""}`.trim());
    if (leaving) {
      this.token = null;
      this.registeredAt = null;
      this.ctx.log.info({ gateway: this.gatewayUrl }, "left the gateway");
    } else {
      if (this.token === null) this.ctx.log.info({ gateway: this.gatewayUrl }, "registered with the gateway");
      this.token = "token" in body ? (body.token ?? null) : null;
      this.registeredAt = Date.now();
    }
    this.lastError = null;
  }

  /** The gateway's device address, which the registration names, from its /status (asked once). */
  private async gatewayAddress(): Promise<Address> {
    if (!this.gatewayAddressSeen) {
      const response = await fetch(`${this.gatewayUrl}/status`, { signal: AbortSignal.timeout(5_000) });
      if (!response.ok) throw new Error(`gateway status answered ${response.status}`);
      this.gatewayAddressSeen = ((await response.json()) as { device: Address }).device;
    }
    return this.gatewayAddressSeen;
  }
}
