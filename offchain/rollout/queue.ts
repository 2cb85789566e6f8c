/**
 * The rollout queue (issue 18, D59; docs/rollout.md): nodes updated one at a time, each taken out of service
 * first and put back after. `rollout(plan, deps)` is the whole workflow; everything it touches outside the
 * network (the update action, credentials, progress output, metrics, the clock) comes in `deps`.
 *
 * A gateway: drain (Network API node.drain) -> dns-out (no DNS server of the plan returns its address for the
 * site) -> traffic (its edge_cdn_requests_total rate over quietMs at most maxTrafficPerSecond, 0 by default, and
 * edge_node_jobs_in_flight 0) -> update -> ready
 * (/ready 200, a host linked, and every stargate's catalogue says healthy) -> undrain -> dns-in (every DNS server returns it).
 * A stargate: leave (POST /admin/leave) -> quiet (no configuration subscribers and edge_dns_queries_total's
 * rate likewise) -> update -> ready (/ready 200) -> join (POST /admin/join; in its group, DNS announced).
 * Every wait has a timeout from the plan. The first failure stops the queue: the failed node stays as it is
 * (drained, or out of its group: the message says so), the nodes after it are untouched.
 */
import { errorClass } from "../common/errors";
import { type HttpAnswer, describe, http, metricSum, resolveAddresses } from "./probes";
import type { RolloutMetrics, NodeState } from "./metrics";
import type { Plan, PlanNode } from "./plan";

export type StepName =
  "drain" | "dns-out" | "traffic" | "update" | "ready" | "undrain" | "dns-in" | "leave" | "quiet" | "join";

export interface ProgressEvent {
  node: string;
  role: PlanNode["role"];
  step: StepName;
  phase: "start" | "done" | "failed";
  /** The step's duration (done, failed). */
  ms?: number;
  message?: string;
}

export interface RolloutDeps {
  /** Updates the node (restart on the new build, ...); resolves once the action is done. */
  update(node: PlanNode, signal: AbortSignal): Promise<void>;
  /** A Network API bearer token with node:drain (drain, undrain, and stargates' leave/join). */
  token?: string;
  /** Stargates' EDGE_NODE_ADMIN_TOKEN for /admin/leave and /admin/join when there is no token. */
  adminToken?: string;
  progress?(event: ProgressEvent): void;
  metrics?: RolloutMetrics;
  /** The addresses a DNS server answers for a name (default: a real query, probes.ts). */
  resolve?(server: string, name: string, timeoutMs: number): Promise<string[]>;
}

export interface NodeResult {
  name: string;
  role: PlanNode["role"];
  state: NodeState;
  steps: { step: StepName; ms: number }[];
}

export interface RolloutResult {
  ok: boolean;
  seconds: number;
  nodes: NodeResult[];
  failure?: { node: string; step: StepName; message: string };
}

/** A step's failure: its message names what was expected and what was last seen (exit 1 in the CLI). */
export const StepFailed = errorClass("StepFailed", "ROLLOUT_STEP_FAILED", 502);

export async function rollout(plan: Plan, deps: RolloutDeps): Promise<RolloutResult> {
  const started = Date.now();
  const results: NodeResult[] = plan.nodes.map((n) => ({ name: n.name, role: n.role, state: "pending", steps: [] }));
  const count = () => {
    const counts = { pending: 0, running: 0, done: 0, failed: 0 };
    for (const r of results) counts[r.state] += 1;
    deps.metrics?.setNodes(counts);
  };
  count();
  for (const [i, node] of plan.nodes.entries()) {
    const result = results[i];
    result.state = "running";
    count();
    const run = new NodeRun(plan, deps, node, result);
    try {
      await (node.role === "gateway" ? run.gateway() : run.stargate());
      result.state = "done";
      count();
    } catch (error) {
      result.state = "failed";
      count();
      const message = `${(error as Error).message}${run.leftAs()}`;
      return {
        ok: false,
        seconds: (Date.now() - started) / 1000,
        nodes: results,
        failure: { node: node.name, step: run.current, message },
      };
    }
  }
  return { ok: true, seconds: (Date.now() - started) / 1000, nodes: results };
}

/** A URL's host when it is an IP literal (a gateway's address in DNS answers, docs/dns.md), else undefined. */
function ipLiteral(url: string): string | undefined {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return /^[\d.]+$|:/.test(host) ? host : undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One node's steps. */
class NodeRun {
  current: StepName = "drain";
  private drained = false;
  private left = false;
  private device = "";

  constructor(
    private readonly plan: Plan,
    private readonly deps: RolloutDeps,
    private readonly node: PlanNode,
    private readonly result: NodeResult,
  ) {}

  async gateway(): Promise<void> {
    const { plan, node } = this;
    let address: string | undefined;
    let drainUrl = "";
    await this.step("drain", plan.timeouts.request, async () => {
      const status = await this.get(`${node.url}/status`);
      this.device = String((status.body as { device?: unknown }).device ?? "").toLowerCase();
      if (!/^0x[0-9a-f]{40}$/.test(this.device)) throw new StepFailed(`${node.url}/status names no device`);
      const catalogued = await this.catalogueUrl();
      address = node.address ?? ipLiteral(catalogued);
      if (plan.dns.length > 0 && plan.site && !address) throw new StepFailed(this.noAddress());
      drainUrl = `${plan.api}/api/nodes/${this.device}/drain`;
      await this.call("POST", plan.forceDrain ? `${drainUrl}?force=true` : drainUrl, this.deps.token);
      this.drained = true;
    });
    await this.step("dns-out", plan.timeouts.dns, () => this.dnsUntil(address, false));
    await this.step("traffic", plan.timeouts.drain, () =>
      this.quiet("edge_cdn_requests_total", async (metrics) => {
        const inFlight = metricSum(metrics, "edge_node_jobs_in_flight") ?? 0;
        return inFlight === 0 || `${inFlight} requests in flight`;
      }),
    );
    await this.update();
    await this.step("ready", plan.timeouts.ready, () => this.readyAndHealthy());
    await this.step("undrain", plan.timeouts.request, async () => {
      await this.call("DELETE", drainUrl, this.deps.token);
      this.drained = false;
    });
    await this.step("dns-in", plan.timeouts.dns, () => this.dnsUntil(address, true));
  }

  async stargate(): Promise<void> {
    const { plan, node } = this;
    const token = this.deps.token ?? this.deps.adminToken;
    this.current = "leave";
    await this.step("leave", plan.timeouts.request, async () => {
      await this.call("POST", `${node.url}/admin/leave`, token);
      this.left = true;
    });
    await this.step("quiet", plan.timeouts.drain, () =>
      this.quiet("edge_dns_queries_total", async () => {
        const group = await this.group();
        return group.subscribers === 0 || `${String(group.subscribers)} configuration subscribers`;
      }),
    );
    await this.update();
    await this.step("ready", plan.timeouts.ready, () => this.until(async () => this.ready()));
    await this.step("join", plan.timeouts.ready, async () => {
      await this.call("POST", `${node.url}/admin/join`, token);
      await this.until(async () => {
        const status = (await this.get(`${node.url}/status`)).body as { stargate?: { dns?: { inGroup?: boolean } } };
        const group = await this.group();
        if (group.inGroup !== true) return "not in its group";
        return status.stargate?.dns?.inGroup !== false || "its DNS is not announced yet";
      });
      this.left = false;
    });
  }

  /** What the failed node is left as, for the failure's message. */
  leftAs(): string {
    if (this.drained)
      return `; ${this.node.name} is left drained (DELETE ${this.plan.api}/api/nodes/${this.device}/drain undoes it)`;
    if (this.left) return `; ${this.node.name} is left out of its group (POST ${this.node.url}/admin/join undoes it)`;
    return "";
  }

  private async update(): Promise<void> {
    await this.step("update", this.plan.timeouts.update, async (signal) => this.deps.update(this.node, signal));
  }

  /** Runs `body` as `name`, with a timeout; reports it and records its time. */
  private async step(name: StepName, timeoutMs: number, body: (signal: AbortSignal) => Promise<void>): Promise<void> {
    this.current = name;
    const { node, deps } = this;
    const base = { node: node.name, role: node.role, step: name };
    deps.progress?.({ ...base, phase: "start" });
    const started = Date.now();
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(
          new StepFailed(
            `${node.name} ${name}: timed out after ${timeoutMs} ms${this.lastSeen ? ` (last: ${this.lastSeen})` : ""}`,
          ),
        );
      }, timeoutMs);
    });
    this.lastSeen = "";
    this.deadline = started + timeoutMs;
    try {
      await Promise.race([body(abort.signal), timeout]);
    } catch (error) {
      const message = error instanceof StepFailed ? error.message : `${node.name} ${name}: ${(error as Error).message}`;
      deps.progress?.({ ...base, phase: "failed", ms: Date.now() - started, message });
      throw new StepFailed(message);
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
    const ms = Date.now() - started;
    this.result.steps.push({ step: name, ms });
    deps.metrics?.step(name, ms / 1000);
    deps.progress?.({ ...base, phase: "done", ms });
  }

  private lastSeen = "";
  private deadline = 0;

  /** Polls `check` until it answers true (a string: what it saw, kept for the timeout's message). */
  private async until(check: () => Promise<true | string>): Promise<void> {
    while (Date.now() < this.deadline) {
      const seen = await check().catch((error: Error) => error.message);
      if (seen === true) return;
      this.lastSeen = seen;
      await sleep(this.plan.pollMs);
    }
    throw new StepFailed(`${this.node.name} ${this.current}: timed out (last: ${this.lastSeen || "nothing"})`);
  }

  /**
   * Waits until `counter` (summed over labels) rose at most maxTrafficPerSecond per second over the last quietMs
   * (0: unchanged for quietMs) while `also` holds (R18-8). A counter going down (a restart) starts the window again.
   */
  private async quiet(counter: string, also: (metrics: string) => Promise<true | string>): Promise<void> {
    const { quietMs, maxTrafficPerSecond: max } = this.plan;
    let samples: { at: number; value: number }[] = [];
    await this.until(async () => {
      const metrics = (await this.get(`${this.node.url}/metrics`)).text;
      const value = metricSum(metrics, counter) ?? 0;
      const now = Date.now();
      if (samples.length > 0 && value < samples[samples.length - 1].value) samples = [];
      samples.push({ at: now, value });
      // The newest sample at least quietMs old starts the window; older ones are no longer needed.
      const start = samples.findLastIndex((s) => now - s.at >= quietMs);
      if (start > 0) samples = samples.slice(start);
      const other = await also(metrics);
      if (other !== true) return other;
      const first = samples[0];
      const span = now - first.at;
      const rate = span > 0 ? ((value - first.value) * 1000) / span : 0;
      if (span >= quietMs && rate <= max) return true;
      const seen = `${counter} ${value}, ${value - first.value} more in ${span} ms`;
      return span >= quietMs ? `${seen} (${rate.toFixed(1)}/s, at most ${max}/s allowed)` : seen;
    });
  }

  private async ready(): Promise<true | string> {
    const ready = await http(`${this.node.url}/ready`, { timeoutMs: this.plan.timeouts.request });
    return ready.status === 200 || `not ready: ${describe(ready)}`;
  }

  private readyAndHealthy(): Promise<void> {
    return this.until(async () => {
      const ready = await this.ready();
      if (ready !== true) return ready;
      // A restarted gateway is ready before its hosts link again, and answers its sites 503 until one does.
      const hosts = metricSum((await this.get(`${this.node.url}/metrics`)).text, "edge_node_routable_hosts") ?? 0;
      if (hosts < this.plan.minHosts) return `no host linked yet (edge_node_routable_hosts ${hosts})`;
      for (const stargate of this.plan.stargates) {
        const endpoint = (await this.catalogue(stargate)).find((e) => e.device.toLowerCase() === this.device);
        if (!endpoint?.healthy) return `${stargate}'s catalogue says ${endpoint ? "unhealthy" : "unknown"}`;
      }
      return true;
    });
  }

  /** Waits until every DNS server of the plan returns (`present`) or no longer returns `address` for the site. */
  private async dnsUntil(address: string | undefined, present: boolean): Promise<void> {
    const { plan } = this;
    if (plan.dns.length === 0 || !plan.site) return;
    if (!address) throw new StepFailed(this.noAddress());
    const resolve = this.deps.resolve ?? resolveAddresses;
    await this.until(async () => {
      for (const server of plan.dns) {
        const answers = await resolve(server, plan.site!, plan.timeouts.request);
        if (answers.includes(address) !== present) return `${server} answers ${plan.site} with [${answers.join(", ")}]`;
      }
      return true;
    });
  }

  private noAddress(): string {
    return `${this.node.name}: its address in DNS answers is unknown (no stargate's catalogue has it with an IP literal URL): set "address" in the plan`;
  }

  /**
   * R18-15: the device a gateway's (unauthenticated) /status names must be the one at node.url: the stargates'
   * catalogue lists the device's signed URL, whose host and port must be node.url's, in every catalogue that lists
   * it (one at least). Checked before the drain, so a node naming another device never gets that device drained.
   */
  private async catalogueUrl(): Promise<string> {
    const want = new URL(this.node.url).host.toLowerCase();
    let url: string | undefined;
    for (const stargate of this.plan.stargates) {
      const endpoints = await this.catalogue(stargate).catch(() => []);
      const endpoint = endpoints.find((e) => e.device.toLowerCase() === this.device);
      if (!endpoint) continue;
      const host = new URL(endpoint.url).host.toLowerCase();
      if (host !== want)
        throw new StepFailed(
          `${this.node.name}: ${this.node.url}/status names device ${this.device}, but ${stargate}'s catalogue has that device at ${endpoint.url} (host ${host}, not ${want}): not drained`,
        );
      url ??= endpoint.url;
    }
    if (!url)
      throw new StepFailed(
        `${this.node.name}: device ${this.device} (from ${this.node.url}/status) is in no stargate's catalogue: not drained`,
      );
    return url;
  }

  private async catalogue(stargate: string): Promise<{ device: string; url: string; healthy: boolean }[]> {
    const answer = await this.get(`${stargate}/health/catalogue`);
    return ((answer.body as { endpoints?: unknown } | null)?.endpoints ?? []) as never;
  }

  private async group(): Promise<{ inGroup?: boolean; subscribers?: number }> {
    const status = (await this.get(`${this.node.url}/status`)).body as { stargate?: { group?: object } };
    if (!status.stargate?.group)
      throw new StepFailed(`${this.node.url}/status has no stargate group: is it a stargate?`);
    return status.stargate.group;
  }

  private async get(url: string): Promise<HttpAnswer> {
    const answer = await http(url, { timeoutMs: this.plan.timeouts.request });
    if (answer.status !== 200) throw new StepFailed(`GET ${url}: ${describe(answer)}`);
    return answer;
  }

  private async call(method: string, url: string, token: string | undefined): Promise<HttpAnswer> {
    const answer = await http(url, { method, token, timeoutMs: this.plan.timeouts.request });
    if (answer.status !== 200) throw new StepFailed(`${method} ${url}: ${describe(answer)}`);
    return answer;
  }
}

/** A Network API token from a password login (POST /api/login). */
export async function login(api: string, name: string, password: string, timeoutMs = 10_000): Promise<string> {
  const answer = await http(`${api}/api/login`, { method: "POST", body: { name, password }, timeoutMs });
  const token = (answer.body as { token?: unknown } | null)?.token;
  if (answer.status !== 200 || typeof token !== "string") throw new StepFailed(`login at ${api}: ${describe(answer)}`);
  return token;
}
