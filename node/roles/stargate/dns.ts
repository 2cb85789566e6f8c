/**
 * Edge DNS (issue 18, D57): the stargate's authoritative DNS server over UDP and TCP on --listen-host:--dns-port.
 * The parts, one idea each:
 * - dnsZones.ts: zones' semantic checks, their index, and their master file (for Knot);
 * - dnsIndex.ts: the index answers are read from (zones, site names, serving gateways), rebuilt on change only;
 * - dnsAnswer.ts: the answer to one question; dnsWire.ts: bytes in, bytes out (EDNS, truncation, FORMERR);
 * - dnsTransport.ts: the sockets; dnsLimits.ts: per-client buckets, TCP caps, RRL, billing per second;
 * - dnsSpill.ts: dynamic sites' spill between regions by their gateways' reported load (D71);
 * - dnsGroup.ts: announcing to and withdrawing from the serving group; dnsMetrics.ts: the metrics.
 * This file wires them to the stargate (its configuration, catalogue and usage meter).
 */
import { performance } from "node:perf_hooks";

import type { Address, Hex, LocalAccount } from "viem";

import type { NetworkConfig } from "../../../offchain/common/protocol";
import type { Catalogue, StargateConfig, StargateContext } from "../../context";
import type { LoadReport } from "../../loadReport";
import { type DnsIndex, RCODE, type Reply, answerClient } from "./dnsAnswer";
import { DnsGroup } from "./dnsGroup";
import { DnsIndexer, servingEndpoints, servingGateways } from "./dnsIndex";
import { AnswerLimits, BillingTally, ClientBuckets, DEFAULT_LIMITS, type DnsLimits, clientKey } from "./dnsLimits";
import { createDnsMetrics } from "./dnsMetrics";
import { DnsSpill } from "./dnsSpill";
import { type Listeners, listen } from "./dnsTransport";
import { type ClientSubnet, type ResponseCache, respond } from "./dnsWire";
import { zoneOf } from "./dnsZones";

export interface DnsSources {
  /** The configuration in force (zones, sites, draining); undefined before the first one. */
  config(): NetworkConfig | undefined;
  /** The stargates' catalogue (healthy by the majority rule, admitted endpoints). */
  catalogue(): Catalogue;
  /** A gateway's load from this stargate's last health check of it (D71): dynamic sites spill by it. */
  loadOf?(device: Address): LoadReport | undefined;
  /** Counts answered queries of a customer zone for billing (`dns` `queries`, billed to the zone's owner). */
  bill(owner: Address, queries: bigint): void;
  /** All owners' counts of a flush at once (one journal append, R18-10); used instead of `bill` when given. */
  billMany?(counts: ReadonlyArray<readonly [Address, bigint]>): void;
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

/** What the daemon's flags do not set (tests and the benchmark set them). */
export interface DnsOptions {
  limits?: Partial<DnsLimits>;
  /** How often billing gets the counts (default 1000 ms). */
  billEveryMs?: number;
  /** The group's announcement retry (default 1000 ms). */
  announceRetryMs?: number;
  /** How often regions' loads are observed for dynamic sites' spill (default 1000 ms, D71). */
  spillObserveMs?: number;
}

/** The serving gateways of the configuration and catalogue in force (undefined before a configuration). */
function servingNow(sources: DnsSources) {
  const held = sources.config();
  return held && servingEndpoints(sources.catalogue(), held.draining);
}

const unready = (): Reply => ({
  rcode: RCODE.SERVFAIL,
  aa: false,
  answers: [],
  authorities: [],
  additionals: [],
  kind: "refused",
});

/**
 * Whether a (re)started stargate may join its group: only once it can answer sites, with a configuration held and a
 * serving gateway in its catalogue (its subscribers checked, its peers' verdicts fetched), or three health intervals
 * gone by (a network with no gateway up). Announcing earlier made it answer SERVFAIL for sites after a rollout's restart.
 */
function settledFor(config: StargateConfig, sources: DnsSources): () => boolean {
  const startedAt = Date.now();
  const settleMs = 3 * (config.healthIntervalMs ?? 10_000);
  return () => {
    const held = sources.config();
    if (held === undefined) return false;
    if (held.sites.length === 0 || Date.now() - startedAt >= settleMs) return true;
    const serving = servingGateways(sources.catalogue(), held.draining);
    return serving.a.length + serving.aaaa.length > 0;
  };
}

/** An EIP-191 personal signature with the device key (the announcer's calls, R18-9). */
function signWithDevice(ctx: StargateContext, message: string): Promise<Hex> {
  const account = ctx.signer.account as Partial<Pick<LocalAccount, "signMessage">>;
  if (!account.signMessage) throw new Error("the device key cannot sign messages");
  return account.signMessage({ message });
}

/** The DNS server, or undefined without --dns-port. */
/** The serving group's announcer (dnsGroup.ts) of this stargate. */
function announcer(
  ctx: StargateContext,
  config: StargateConfig,
  sources: DnsSources,
  options: DnsOptions,
  where: () => { host: string; port: number } | undefined,
): DnsGroup {
  return new DnsGroup({
    announce: config.dnsAnnounce,
    member: ctx.signer.account.address.toLowerCase(),
    where,
    ready: settledFor(config, sources),
    log: ctx.log.child({ component: "dns" }),
    retryMs: options.announceRetryMs,
    sign: (message) => signWithDevice(ctx, message),
  });
}

export function createDns(
  ctx: StargateContext,
  config: StargateConfig,
  sources: DnsSources,
  options: DnsOptions = {},
): DnsServer | undefined {
  if (config.dnsPort === undefined) return undefined;
  const log = ctx.log.child({ component: "dns" });
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const spill = new DnsSpill();
  const indexer = new DnsIndexer({ siteTtl: config.dnsSiteTtl, nameserver: config.dnsNameserver, log, background: true, spill }); // prettier-ignore
  const buckets = new ClientBuckets(limits);
  const billFailed = (error: Error) => log.warn({ err: error.message }, "DNS: billing the zones' queries failed");
  const tally = new BillingTally(sources.bill, billFailed, options.billEveryMs, sources.billMany);
  let listeners: Listeners | undefined;
  let queries = 0;
  let rotation = 0;
  const group = announcer(ctx, config, sources, options, () => listeners && { host: listeners.host, port: listeners.port }); // prettier-ignore
  const current = () => indexer.current(sources.config(), sources.catalogue());
  const answers = new AnswerLimits(limits, {
    dropped: () => metrics.dropped("rrl"),
    slipped: () => metrics.slipped(),
    unbilled: () => metrics.unbilled(),
    bill: (owner) => tally.add(owner),
  });
  const metrics = createDnsMetrics(ctx.metrics.registry, {
    inGroup: () => listeners !== undefined && group.inGroup(),
    zones: () => {
      const index = current();
      return { served: index?.zones.zones.size ?? 0, invalid: index?.zones.invalid.length ?? 0 };
    },
  });

  // Encoded answers of the index in force (dnsWire.ts): cleared when the index changes.
  const cache: ResponseCache = new Map();
  let cachedFor: DnsIndex | undefined;
  let index: DnsIndex | undefined;
  let asker = ""; // the address of the query being answered: its region when it sent no client subnet (D69)
  function lookup(qname: string, qtype: string, subnet?: ClientSubnet): Reply & { scope?: number } {
    rotation = (rotation + 1) % 1_000_000;
    return index ? answerClient(index, qname, qtype, rotation, asker, subnet) : { ...unready(), rotated: true };
  }

  function handle(msg: Buffer, tcp: boolean, ip: string): Buffer | undefined {
    asker = ip;
    const now = Date.now();
    const network = clientKey(ip);
    if (!buckets.take(network, now)) {
      metrics.dropped("rate");
      return undefined;
    }
    const started = performance.now();
    try {
      index = current();
      if (index !== cachedFor) {
        cache.clear();
        cachedFor = index;
      }
      const outcome = respond(msg, tcp, lookup, cache);
      if (!outcome.response) {
        metrics.dropped("unreadable");
        return undefined;
      }
      const apex = index && outcome.qname !== undefined ? zoneOf(index.zones.zones, outcome.qname)?.apex : undefined;
      const response = tcp ? outcome.response : answers.send(msg, outcome, network, apex, now);
      if (!response) return undefined;
      queries++;
      if (response === outcome.response) answers.bill(outcome, apex, now);
      metrics.answered(outcome.rcode, outcome.kind, (performance.now() - started) / 1000, outcome.truncated);
      return response;
    } catch (error) {
      // respond() catches what a message can cause; this is a bug's last guard: the server keeps serving.
      log.warn({ err: (error as Error).message }, "DNS: a query could not be answered");
      metrics.dropped("unreadable");
      return undefined;
    }
  }

  return {
    async start() {
      listeners = await listen({
        host: config.listenHost,
        port: config.dnsPort!,
        limits,
        handle,
        dropped: (reason) => metrics.dropped(reason),
        log,
      });
      tally.start();
      group.start();
      spill.start(options.spillObserveMs ?? 1_000, () => servingNow(sources), sources.loadOf);
      log.info({ host: listeners.host, port: listeners.port }, "DNS: listening on UDP and TCP");
    },
    async stop() {
      spill.stop();
      await group.stop();
      await listeners?.close();
      listeners = undefined;
      tally.stop();
    },
    address: () => listeners && { host: listeners.host, port: listeners.port },
    leave: () => group.leave(),
    join: () => group.join(),
    status() {
      const index = current();
      return {
        address: listeners?.host,
        port: listeners?.port,
        inGroup: listeners !== undefined && group.inGroup(),
        queries,
        zones: index?.zones.zones.size ?? 0,
        invalidZones: index?.zones.invalid.map((z) => z.name) ?? [],
        sites: index?.sites.size ?? 0,
        gateways: index ? index.gateways.a.length + index.gateways.aaaa.length : 0,
        tcpConnections: listeners?.tcpConnections() ?? 0,
        tcpUnsentBytes: listeners?.tcpUnsentBytes() ?? 0,
        spill: spill.status(),
      };
    },
  };
}
