/**
 * Host role: registers with its gateway while admitted, executes the jobs the gateway sends, and leaves the
 * gateway when it is no longer admitted (or drains).
 *
 * The job is a real, checkable computation: `rounds` iterations of SHA-256 over the payload. The gateway hands
 * out a session token at registration; only requests carrying it are executed.
 */
import { createHash } from "node:crypto";
import type { Address, Hex } from "viem";

import type { NodeContext, RoleModule } from "../context";
import { type TypedApp, bearerMatches } from "../../offchain/common/http";
import {
  HostJobBodySchema,
  type HostJobReply,
  type HostRegistrationReply,
  signHostRegistration,
} from "../../offchain/common/protocol";
import { nodeError } from "../errors";

/** `rounds` iterations of SHA-256: the first over the payload's UTF-8 bytes, each next over the previous digest. */
export function runJob(payload: string, rounds: number): Hex {
  let digest = createHash("sha256").update(payload, "utf8").digest();
  for (let i = 1; i < rounds; i++) digest = createHash("sha256").update(digest).digest();
  return `0x${digest.toString("hex")}`;
}

/**
 * {runJob} that yields to the event loop every `chunk` rounds, so a large job never stalls /health, /status
 * or the chain view of the process running it.
 */
export async function runJobAsync(payload: string, rounds: number, chunk = 2_000): Promise<Hex> {
  let digest = createHash("sha256").update(payload, "utf8").digest();
  for (let i = 1; i < rounds; i++) {
    digest = createHash("sha256").update(digest).digest();
    if (i % chunk === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return `0x${digest.toString("hex")}`;
}

export function createHost(ctx: NodeContext): RoleModule {
  const gatewayUrl = ctx.config.gateway!.replace(/\/$/, "");
  const log = ctx.log.child({ component: "host" });
  let token: string | null = null;
  let gatewayDevice: Address | null = null;
  let registeredAt: number | null = null;
  let lastError: string | null = null;
  let executed = 0;
  let timer: NodeJS.Timeout | undefined;
  let busy: Promise<void> = Promise.resolve();

  async function send(leaving: boolean): Promise<void> {
    if (!gatewayDevice) {
      const response = await fetch(`${gatewayUrl}/status`, { signal: AbortSignal.timeout(5_000) });
      if (!response.ok) throw new Error(`gateway status answered ${response.status}`);
      gatewayDevice = ((await response.json()) as { device: Address }).device;
    }
    const registration = await signHostRegistration(ctx.account, ctx.chainId, {
      gateway: gatewayDevice,
      url: ctx.config.publicUrl,
      leaving,
      // Milliseconds: a registration and a leave in the same second must still be ordered.
      timestamp: BigInt(Date.now()),
    });
    const response = await fetch(`${gatewayUrl}/hosts/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(registration),
      signal: AbortSignal.timeout(5_000),
    });
    const body = (await response.json().catch(() => ({}))) as Partial<HostRegistrationReply> & { error?: string };
    if (!response.ok) throw new Error(`gateway refused: ${response.status} ${body.error ?? ""}`.trim());
    if (leaving) {
      token = null;
      registeredAt = null;
      log.info({ gateway: gatewayUrl }, "left the gateway");
    } else {
      if (token === null) log.info({ gateway: gatewayUrl }, "registered with the gateway");
      token = "token" in body ? (body.token ?? null) : null;
      registeredAt = Date.now();
    }
    lastError = null;
  }

  /** Registration and leaving never overlap; failures are retried on the next tick. */
  function schedule(leaving: boolean): Promise<void> {
    busy = busy.then(() =>
      send(leaving).catch((error: Error) => {
        lastError = error.message;
        log.warn(
          { err: error.message, leaving },
          leaving ? "could not leave the gateway" : "could not register with the gateway",
        );
      }),
    );
    return busy;
  }

  return {
    register(app: TypedApp) {
      app.post("/jobs", { schema: { body: HostJobBodySchema } }, async (request): Promise<HostJobReply> => {
        const body = request.body;
        if (!ctx.serving())
          throw nodeError("EDGE_NODE_NOT_SERVING", "this host is not serving (not admitted or draining)");
        if (!token || !bearerMatches(request.headers.authorization, token)) {
          throw nodeError("EDGE_NODE_UNAUTHORIZED", "jobs come from this host's gateway only");
        }
        if (body.rounds > ctx.config.maxJobRounds) {
          throw nodeError("EDGE_NODE_JOB_TOO_LARGE", `rounds ${body.rounds} exceeds ${ctx.config.maxJobRounds}`);
        }
        const done = ctx.work.begin();
        try {
          const result = await runJobAsync(body.payload, body.rounds);
          executed += 1;
          ctx.metrics.jobs.inc({ outcome: "executed" });
          return { jobId: body.jobId, result, host: ctx.device };
        } finally {
          done();
        }
      });
    },
    start() {
      timer = setInterval(() => {
        if (ctx.serving()) void schedule(false);
      }, ctx.config.registerIntervalMs);
    },
    async stop() {
      if (timer) clearInterval(timer);
      if (token !== null) await schedule(true);
      await busy;
    },
    async onAdmission(admitted: boolean) {
      if (admitted) await schedule(false);
      else {
        // Finish what is in flight, then leave: the gateway stops routing here at once anyway.
        await ctx.work.waitIdle();
        if (token !== null) await schedule(true);
      }
    },
    onViewChange() {},
    status() {
      return { gateway: gatewayUrl, registered: token !== null, registeredAt, jobsExecuted: executed, lastError };
    },
    routableHosts: () => 0,
  };
}
