/**
 * The rollout under load (issue 18 Deliver 4, D60): on the network of rolloutNet.ts, Newton's engine (LoadRun)
 * loads the site at a constant rate through names resolved by the anycast router (the stargates' DNS), while a
 * watcher asks the router for the site's A records every `watchMs` (each from a fresh source port, so both
 * stargates answer in turn) and the rollout (offchain/rollout) rolls every gateway and stargate, one at a time,
 * with update = restart the daemon's process. Reports failed requests, latency before and during, per node seconds,
 * and every DNS answer that named a gateway while it was drained.
 */
import { createSocket } from "node:dgram";
import * as dnsPacket from "dns-packet";

import { LoadRun, type Target } from "../../offchain/newton/engine";
import { parsePlan } from "../../offchain/rollout/plan";
import { type ProgressEvent, type RolloutResult, login, rollout } from "../../offchain/rollout/queue";
import { ADMIN_TOKEN, ROLLOUT_USER, type RolloutNet } from "./rolloutNet";

export interface DnsSample {
  at: number;
  /** "router", or the stargate asked directly. */
  server?: string;
  rcode: string;
  addresses: string[];
}

/** One A query for `name` to host:port from a fresh socket; undefined after `timeoutMs`. */
export async function askA(
  host: string,
  port: number,
  name: string,
  timeoutMs = 1_000,
): Promise<DnsSample | undefined> {
  const socket = createSocket("udp4");
  const at = Date.now();
  try {
    return await new Promise((resolve) => {
      const id = Math.floor(Math.random() * 65535);
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      socket.on("message", (message) => {
        const packet = dnsPacket.decode(message);
        if (packet.id !== id) return;
        clearTimeout(timer);
        const addresses = (packet.answers ?? [])
          .filter((a) => a.type === "A")
          .map((a) => (a as { data: unknown }).data as string);
        resolve({ at, rcode: (packet as { rcode?: string }).rcode ?? "NOERROR", addresses: addresses.sort() });
      });
      socket.on("error", () => resolve(undefined));
      socket.send(dnsPacket.encode({ id, type: "query", questions: [{ name, type: "A" }] }), port, host);
    });
  } finally {
    socket.close();
  }
}

/**
 * Asks the router for the site every `everyMs` until stopped, and each stargate in the group directly too (samples'
 * `server`); unanswered queries are kept as rcode "TIMEOUT".
 */
export function watchDns(net: RolloutNet, everyMs = 100): { samples: DnsSample[]; stop(): Promise<void> } {
  const samples: DnsSample[] = [];
  const servers = [
    { server: "router", host: net.router.host, port: net.router.port },
    ...net.nodes
      .filter((n) => n.role === "stargate")
      .map((n) => ({ server: n.name, host: "127.0.0.1", port: n.dnsPort!, member: n.address.toLowerCase() })),
  ];
  // A stargate is asked directly only while it is in the group: queries to one that left would keep its query
  // counter moving, and the rollout waits for it to stand still.
  const inGroup = (member?: string) => !member || net.router.members().some((m) => m.member === member);
  let stopped = false;
  const loop = async (server: (typeof servers)[number]) => {
    while (!stopped) {
      const at = Date.now();
      if (inGroup((server as { member?: string }).member)) {
        const sample = await askA(server.host, server.port, net.site);
        samples.push({ ...(sample ?? { at, rcode: "TIMEOUT", addresses: [] }), server: server.server });
      }
      await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - at))));
    }
  };
  const loops = Promise.all(servers.map(loop));
  return {
    samples,
    async stop() {
      stopped = true;
      await loops;
    },
  };
}

export interface RequestRecord {
  at: number;
  ok: boolean;
  status?: number;
  kind?: string;
  ms: number;
}

/** The engine's target for the site through DNS: `http://<site>:<cdnPort>/…`, names resolved by the router. */
export function siteTarget(net: RolloutNet): Target {
  return {
    id: "site",
    url: `http://${net.site}:${net.cdnPort}/item`,
    method: "GET",
    headers: {},
    paths: Array.from({ length: 20 }, (_, i) => `/item/${i}`),
    resolve: { servers: [`${net.router.host}:${net.router.port}`] },
  };
}

/** A constant-rate load on the site through DNS; every request's outcome is recorded with its time. */
export function startLoad(net: RolloutNet, { rate = 20, durationMs = 600_000, timeoutMs = 10_000 } = {}) {
  const records: RequestRecord[] = [];
  const run = new LoadRun(
    [siteTarget(net)],
    { rate, durationMs, maxConcurrency: 64, timeoutMs },
    {
      response: (_target, status, _ttfb, ms) => records.push({ at: Date.now(), ok: status === 200, status, ms }),
      error: (_target, kind) => records.push({ at: Date.now(), ok: false, kind, ms: NaN }),
      dropped: () => records.push({ at: Date.now(), ok: false, kind: "dropped", ms: NaN }),
    },
  );
  const done = run.start();
  return { run, records, done };
}

export function latencyOf(records: RequestRecord[]): { n: number; p50: number; p99: number } {
  const ms = records.filter((r) => r.ok).map((r) => r.ms);
  ms.sort((a, b) => a - b);
  const at = (p: number) => (ms.length ? ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)] : NaN);
  return { n: ms.length, p50: Math.round(at(50) * 10) / 10, p99: Math.round(at(99) * 10) / 10 };
}

export interface RollUnderLoadResult {
  rollout: RolloutResult;
  /** Requests that did not end in a 200 (errors, other statuses, dropped). */
  failedRequests: number;
  failures: RequestRecord[];
  /** Failed requests by the step in progress when they ended ("gateway-1 undrain done: 503"). */
  failuresByStep: Record<string, number>;
  /** DNS answers other than NOERROR by server (router, stargate-n) and step; a stargate out of its group may. */
  dnsProblems: Record<string, number>;
  requests: number;
  latency: { before: ReturnType<typeof latencyOf>; during: ReturnType<typeof latencyOf> };
  /** Seconds each node took, by name. */
  nodeSeconds: Record<string, number>;
  /** DNS answers naming a gateway between DNS confirming it out (dns-out done) and its undrain. */
  drainedAnswers: DnsSample[];
  dnsSamples: number;
  events: Array<ProgressEvent & { at: number }>;
}

/**
 * Loads the site through DNS at `rate` for `beforeMs`, rolls `order` (names of net's gateways and stargates) with
 * update = restart, keeps loading for `afterMs`, and reports.
 */
export async function rollUnderLoad(
  net: RolloutNet,
  {
    order,
    rate = 20,
    beforeMs = 10_000,
    afterMs = 5_000,
    log = (_line: string) => {},
  }: {
    order: string[];
    rate?: number;
    beforeMs?: number;
    afterMs?: number;
    log?: (line: string) => void;
  },
): Promise<RollUnderLoadResult> {
  const byName = new Map(net.nodes.map((n) => [n.name, n]));
  const stargates = net.nodes.filter((n) => n.role === "stargate");
  const plan = parsePlan({
    api: net.apiUrl,
    stargates: stargates.map((s) => s.url),
    dns: [`${net.router.host}:${net.router.port}`, ...stargates.map((s) => `127.0.0.1:${s.dnsPort}`)],
    site: net.site,
    nodes: order.map((name) => ({ name, role: byName.get(name)!.role, url: byName.get(name)!.url })),
    quietMs: 2_000,
  });
  const token = await login(net.apiUrl, ROLLOUT_USER, net.password);
  const watch = watchDns(net);
  const load = startLoad(net, { rate });
  const events: Array<ProgressEvent & { at: number }> = [];
  let result: RolloutResult;
  let started: number;
  let ended: number;
  try {
    await new Promise((r) => setTimeout(r, beforeMs));
    started = Date.now();
    result = await rollout(plan, {
      token,
      adminToken: ADMIN_TOKEN,
      update: (node) => net.restart(node.name),
      progress: (event) => {
        events.push({ ...event, at: Date.now() });
        if (event.phase !== "start")
          log(
            `  ${event.node} ${event.step} ${event.phase} (${event.ms} ms)${event.message ? `: ${event.message}` : ""}`,
          );
      },
    });
    ended = Date.now();
    await new Promise((r) => setTimeout(r, afterMs));
  } finally {
    load.run.stop();
    await load.done.catch(() => undefined);
    await watch.stop();
  }
  const drainedAnswers: DnsSample[] = [];
  for (const name of order.filter((n) => byName.get(n)!.role === "gateway")) {
    const ip = new URL(byName.get(name)!.url).hostname;
    const at = (step: string, phase: string) =>
      events.find((e) => e.node === name && e.step === step && e.phase === phase)?.at;
    const out = at("dns-out", "done");
    const back = at("undrain", "start") ?? ended;
    if (out === undefined) continue;
    drainedAnswers.push(...watch.samples.filter((s) => s.at > out && s.at < back && s.addresses.includes(ip)));
  }
  const failures = load.records.filter((r) => !r.ok);
  // DNS answers other than NOERROR, by server and the step in progress.
  const dnsProblems: Record<string, number> = {};
  for (const sample of watch.samples.filter((x) => x.rcode !== "NOERROR")) {
    const last = events.filter((e) => e.at <= sample.at).pop();
    const label = `${sample.server} ${last ? `${last.node} ${last.step} ${last.phase}` : "before"}: ${sample.rcode}`;
    dnsProblems[label] = (dnsProblems[label] ?? 0) + 1;
  }
  // Each failure labelled with the rollout step in progress when it ended, for the report.
  const failuresByStep: Record<string, number> = {};
  for (const failure of failures) {
    const last = events.filter((e) => e.at <= failure.at).pop();
    const label = `${last ? `${last.node} ${last.step} ${last.phase}` : "before"}: ${failure.status ?? failure.kind}`;
    failuresByStep[label] = (failuresByStep[label] ?? 0) + 1;
  }
  return {
    rollout: result,
    failedRequests: failures.length,
    failures,
    failuresByStep,
    dnsProblems,
    requests: load.records.length,
    latency: {
      before: latencyOf(load.records.filter((r) => r.at < started)),
      during: latencyOf(load.records.filter((r) => r.at >= started && r.at <= ended)),
    },
    nodeSeconds: Object.fromEntries(
      result.nodes.map((n) => [n.name, Math.round(n.steps.reduce((s, step) => s + step.ms, 0) / 100) / 10]),
    ),
    drainedAnswers,
    dnsSamples: watch.samples.length,
    events,
  };
}
