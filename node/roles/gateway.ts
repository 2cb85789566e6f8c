/**
 * Gateway role: accepts hosts that prove they hold an admitted host device key, accepts client jobs from
 * customers in good standing, dispatches them to admitted hosts only, counts the jobs each host returned per
 * epoch, and sends signed job reports to the oracle and signed usage batches to billing through the outbox.
 *
 * A host stops receiving jobs the moment the gateway's own chain view says it is no longer admitted, whatever
 * the host does. While the view is stale, hosts already routed keep working but no new host is accepted.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TypedApp } from "../../offchain/common/http";
import { type Address, type Hex, getAddress } from "viem";

import { paymentVaultAbi } from "../../offchain/common/generated/abis";
import {
  ClientJobBodySchema,
  ClientJobHeadersSchema,
  type HostJobBody,
  type HostJobReply,
  HostRegistrationBodySchema,
  type JobReportEntry,
  type UsageRecord,
  signJobReport,
  signUsageBatch,
  verifyHostRegistration,
  verifyJobRequest,
} from "../../offchain/common/protocol";
import { StakeType } from "../../offchain/common/stakeMap";
import { type NodeContext, type RoleModule, epochAt } from "../context";
import { nodeError } from "../errors";

/** How far a signed request's timestamp may be from the gateway's clock. */
export const SIGNATURE_WINDOW_SECONDS = 300n;

interface HostEntry {
  url: string;
  token: string;
  lastSeen: number;
  lastTimestamp: bigint;
  failures: number;
}

interface GatewayState {
  sequence: number;
  usageSequence: number;
  /** epoch -> host -> jobs returned */
  counts: Record<string, Record<string, string>>;
  /** epochs whose final report is in the outbox */
  finalized: string[];
}

export function createGateway(ctx: NodeContext): RoleModule {
  const log = ctx.log.child({ component: "gateway" });
  const hosts = new Map<string, HostEntry>();
  const dir = join(ctx.config.dataDir, `${ctx.device.toLowerCase()}-gateway`);
  const stateFile = join(dir, "state.json");
  const state: GatewayState = loadState(stateFile);
  const usage = new Map<string, bigint>(); // `${customer}|${metric}` -> quantity since the last flush
  const seenRequests = new Map<string, number>(); // signature -> expiry (ms), against replays
  const standing = new Map<string, { ok: boolean; at: number }>();
  const vault = ctx.book.contracts.PaymentVault?.address as Address | undefined;
  const allowed = new Set(ctx.config.allowCustomers.map((c) => c.toLowerCase()));
  const hostTtlMs = ctx.config.registerIntervalMs * 3;
  const timers: NodeJS.Timeout[] = [];
  let cursor = 0;
  let dispatched = 0;
  let rejectedHosts = 0;

  if (!ctx.config.oracle) log.warn({}, "no --oracle: job reports are counted but not sent");
  if (!ctx.config.billing) log.warn({}, "no --billing: usage is not recorded");
  if (!vault)
    log.warn({ allowed: allowed.size }, "no PaymentVault in the address book: serving the --allow-customers list");

  const hostAdmitted = (host: string) => {
    const stake = ctx.view.map.stakeOfDevice(host);
    return stake !== undefined && stake.stakeType === StakeType.Host && ctx.view.map.isAdmitted(host);
  };

  function routable(): Array<[string, HostEntry]> {
    const now = Date.now();
    return [...hosts].filter(([host, entry]) => hostAdmitted(host) && now - entry.lastSeen <= hostTtlMs);
  }

  /** Drops every host the chain no longer admits: they get no further job, whatever they say. */
  function prune(): void {
    for (const host of [...hosts.keys()]) {
      if (!hostAdmitted(host)) {
        hosts.delete(host);
        log.info({ host }, "host no longer admitted: removed from routing");
      }
    }
  }

  async function inGoodStanding(customer: Address): Promise<boolean> {
    if (!vault) return allowed.has(customer.toLowerCase());
    const cached = standing.get(customer);
    if (cached && Date.now() - cached.at < 5_000) return cached.ok;
    try {
      const ok = await ctx.client.readContract({
        address: vault,
        abi: paymentVaultAbi,
        functionName: "isInGoodStanding",
        args: [customer],
      });
      standing.set(customer, { ok, at: Date.now() });
      return ok;
    } catch (error) {
      if (cached) return cached.ok; // an RPC hiccup keeps the last answer
      throw nodeError(
        "EDGE_NODE_VIEW_STALE",
        `cannot check the customer's standing now: ${(error as Error).message.split("\n")[0]}`,
      );
    }
  }

  function count(host: string): void {
    const epoch = ctx.epochs ? epochAt(ctx.epochs, ctx.epochClockSeconds()).toString() : "0";
    const perHost = (state.counts[epoch] ??= {});
    perHost[host] = (BigInt(perHost[host] ?? "0") + 1n).toString();
  }

  function addUsage(customer: string, metric: string, quantity: bigint): void {
    if (!ctx.config.billing) return;
    const key = `${customer.toLowerCase()}|${metric}`;
    usage.set(key, (usage.get(key) ?? 0n) + quantity);
  }

  async function dispatch(job: HostJobBody): Promise<{ host: string; result: Hex }> {
    const candidates = routable();
    if (candidates.length === 0) throw nodeError("EDGE_NODE_NO_HOSTS", "no admitted host is available");
    let lastError = "";
    for (let attempt = 0; attempt < Math.min(2, candidates.length); attempt++) {
      const [host, entry] = candidates[(cursor++ + attempt) % candidates.length];
      try {
        const response = await fetch(`${entry.url.replace(/\/$/, "")}/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${entry.token}` },
          body: JSON.stringify(job),
          signal: AbortSignal.timeout(ctx.config.jobTimeoutMs),
        });
        const body = (await response.json().catch(() => ({}))) as Partial<HostJobReply> & { error?: string };
        if (!response.ok || !body.result)
          throw new Error(`host answered ${response.status} ${body.error ?? ""}`.trim());
        // The chain may have evicted the host while it worked: count only jobs of hosts admitted now.
        if (hostAdmitted(host)) count(host);
        entry.failures = 0;
        return { host, result: body.result as Hex };
      } catch (error) {
        entry.failures += 1;
        lastError = (error as Error).message;
        ctx.metrics.jobs.inc({ outcome: "host_failed" });
      }
    }
    throw nodeError("EDGE_NODE_HOST_FAILED", `hosts failed to run the job: ${lastError}`);
  }

  /** Queues a signed report for every epoch with counts: the current one, and a final one for past epochs. */
  async function report(): Promise<void> {
    if (!ctx.config.oracle || !ctx.epochs) return;
    const current = epochAt(ctx.epochs, ctx.epochClockSeconds());
    for (const epochText of Object.keys(state.counts)) {
      const epoch = BigInt(epochText);
      if (state.finalized.includes(epochText)) continue;
      const entries: JobReportEntry[] = Object.entries(state.counts[epochText]).map(([host, jobs]) => ({
        host,
        jobs: BigInt(jobs),
      }));
      state.sequence += 1;
      const sequence = BigInt(state.sequence);
      ctx.outbox.put({
        id: `report:${epoch}:${sequence}`,
        key: `report:${epoch}`,
        target: "oracle",
        path: "/reports",
        body: await signJobReport(ctx.account, ctx.chainId, epoch, sequence, entries),
      });
      if (epoch < current) state.finalized.push(epochText);
    }
    // Forget epochs whose final report is queued (the outbox holds it until the oracle has it).
    for (const epochText of [...state.finalized]) {
      if (BigInt(epochText) < current - 1n) {
        delete state.counts[epochText];
        state.finalized.splice(state.finalized.indexOf(epochText), 1);
      }
    }
    saveState(stateFile, state);
  }

  async function flushUsage(): Promise<void> {
    if (!ctx.config.billing || usage.size === 0) return;
    state.usageSequence += 1;
    const sequence = state.usageSequence;
    const time = Date.now();
    const records: UsageRecord[] = [...usage].map(([key, quantity], i) => {
      const [customer, metric] = key.split("|");
      return {
        id: `${ctx.device.toLowerCase()}:${sequence}:${i}`,
        gateway: ctx.device.toLowerCase(),
        customer,
        service: "compute",
        metric,
        quantity: quantity.toString(),
        time,
      };
    });
    usage.clear();
    ctx.outbox.put({
      id: `usage:${sequence}`,
      target: "billing",
      path: "/usage",
      body: await signUsageBatch(ctx.account, ctx.chainId, BigInt(sequence), records),
    });
    saveState(stateFile, state);
  }

  async function tick(kind: "report" | "usage"): Promise<void> {
    try {
      if (kind === "report") await report();
      else await flushUsage();
      await ctx.outbox.flush(ctx.deliver);
    } catch (error) {
      log.warn({ err: (error as Error).message, kind }, "could not queue or send");
    }
    const now = Date.now();
    for (const [signature, expiry] of seenRequests) if (expiry < now) seenRequests.delete(signature);
  }

  return {
    register(app: TypedApp) {
      app.post("/hosts/register", { schema: { body: HostRegistrationBodySchema } }, async (request) => {
        const body = request.body;
        const timestamp = BigInt(body.timestamp); // milliseconds
        const now = BigInt(Date.now());
        const window = SIGNATURE_WINDOW_SECONDS * 1000n;
        if (getAddress(body.gateway) !== ctx.device) {
          throw nodeError("EDGE_NODE_WRONG_GATEWAY", `this registration is for gateway ${body.gateway}`);
        }
        if (timestamp > now + window || timestamp < now - window) {
          throw nodeError("EDGE_NODE_SIGNATURE_EXPIRED", "the registration's timestamp is too far from now");
        }
        const host = getAddress(body.host);
        if (!(await verifyHostRegistration(ctx.chainId, body)))
          throw nodeError("EDGE_NODE_BAD_SIGNATURE", "the registration is not signed by the host's device key");
        const entry = hosts.get(host);
        if (entry && timestamp <= entry.lastTimestamp) {
          throw nodeError("EDGE_NODE_REPLAYED", "a newer registration of this host was already seen");
        }
        if (body.leaving) {
          hosts.delete(host);
          log.info({ host }, "host left");
          return { left: true };
        }
        if (!hostAdmitted(host)) {
          rejectedHosts += 1;
          throw nodeError("EDGE_NODE_HOST_NOT_ADMITTED", "the chain does not admit this device as a host");
        }
        if (!entry && ctx.stale()) {
          throw nodeError("EDGE_NODE_VIEW_STALE", "the gateway's chain view is stale: no new hosts until it is fresh");
        }
        if (!entry && !ctx.serving()) throw nodeError("EDGE_NODE_NOT_SERVING", "this gateway is not serving");
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
        if (!entry) log.info({ host, url: body.url }, "host registered");
        hosts.set(host, next);
        return { token: next.token, gateway: ctx.device };
      });

      app.get("/hosts", async () => ({
        hosts: routable().map(([host, entry]) => ({ host, url: entry.url, lastSeen: entry.lastSeen })),
      }));

      app.post("/jobs", { schema: { body: ClientJobBodySchema, headers: ClientJobHeadersSchema } }, async (request) => {
        const { body, headers } = request;
        if (!ctx.serving())
          throw nodeError("EDGE_NODE_NOT_SERVING", "this gateway is not serving (not admitted or draining)");
        if (body.rounds > ctx.config.maxJobRounds) {
          throw nodeError("EDGE_NODE_JOB_TOO_LARGE", `rounds ${body.rounds} exceeds ${ctx.config.maxJobRounds}`);
        }
        const customer = getAddress(headers["x-edge-customer"]);
        const timestamp = BigInt(headers["x-edge-timestamp"]);
        // The customer signs with its wall clock: freshness goes by ours (epochs go by ctx.epochClockSeconds()).
        const now = BigInt(Math.floor(Date.now() / 1000));
        if (timestamp > now + SIGNATURE_WINDOW_SECONDS || timestamp < now - SIGNATURE_WINDOW_SECONDS) {
          throw nodeError("EDGE_NODE_SIGNATURE_EXPIRED", "the request's timestamp is too far from now");
        }
        const signature = headers["x-edge-signature"];
        if (!(await verifyJobRequest(ctx.chainId, ctx.device, headers, body)))
          throw nodeError("EDGE_NODE_BAD_SIGNATURE", "the request is not signed by the customer");
        if (seenRequests.has(signature))
          throw nodeError("EDGE_NODE_REPLAYED", "this signed request was already served");
        if (!(await inGoodStanding(customer))) {
          throw nodeError(
            "EDGE_NODE_CUSTOMER_NOT_ALLOWED",
            "the customer is not in good standing (debt, or no balance)",
          );
        }
        seenRequests.set(signature, Date.now() + Number(SIGNATURE_WINDOW_SECONDS) * 2_000);
        const done = ctx.work.begin();
        try {
          const jobId = `${ctx.device.toLowerCase()}:${Date.now()}:${dispatched++}`;
          const { host, result } = await dispatch({ jobId, payload: body.payload, rounds: body.rounds });
          ctx.metrics.jobs.inc({ outcome: "completed" });
          addUsage(customer, "jobs", 1n);
          addUsage(customer, "rounds", BigInt(body.rounds));
          return { jobId, host, result };
        } finally {
          done();
        }
      });
    },
    start() {
      if (ctx.config.oracle) timers.push(setInterval(() => void tick("report"), ctx.config.reportIntervalMs));
      if (ctx.config.billing) timers.push(setInterval(() => void tick("usage"), ctx.config.usageFlushMs));
    },
    async stop() {
      for (const timer of timers) clearInterval(timer);
      await report();
      await flushUsage();
      saveState(stateFile, state);
    },
    async onAdmission(admitted: boolean) {
      if (!admitted) {
        await ctx.work.waitIdle();
        hosts.clear(); // an evicted gateway routes nothing
      }
    },
    onViewChange: prune,
    status() {
      return {
        hosts: routable().length,
        registeredHosts: hosts.size,
        rejectedHosts,
        jobsDispatched: dispatched,
        counts: state.counts,
        reportSequence: state.sequence,
        pendingUsage: usage.size,
      };
    },
    routableHosts: () => routable().length,
  };

  function loadState(file: string): GatewayState {
    mkdirSync(dir, { recursive: true });
    if (!existsSync(file)) return { sequence: 0, usageSequence: 0, counts: {}, finalized: [] };
    return JSON.parse(readFileSync(file, "utf8")) as GatewayState;
  }
}

/** Atomic write: a crash leaves the old file or the new one, never half of one. */
function saveState(file: string, state: GatewayState): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(state));
  renameSync(`${file}.tmp`, file);
}
