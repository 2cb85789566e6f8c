/**
 * The rollout queue (offchain/rollout, D59) against real servers (sim.ts): HTTP nodes, a stargate's API and
 * catalogue, and a UDP DNS server queried with real DNS queries.
 */
import { expect } from "chai";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { main, shellUpdate } from "../../../offchain/rollout/cli";
import { RolloutMetrics } from "../../../offchain/rollout/metrics";
import { type Plan, parsePlan } from "../../../offchain/rollout/plan";
import { type ProgressEvent, rollout } from "../../../offchain/rollout/queue";
import { promtoolProblems } from "../../shared/promtool";
import { SITE, Sim, TOKEN } from "./sim";

describe("rollout queue", function () {
  this.timeout(60_000);
  let sim: Sim;

  beforeEach(async function () {
    sim = new Sim();
    await sim.start([
      { name: "gw-1", role: "gateway" },
      { name: "gw-2", role: "gateway" },
      { name: "sg-1", role: "stargate" },
    ]);
  });
  afterEach(async () => sim.stop());

  const planOf = (over: Record<string, unknown> = {}): Plan =>
    parsePlan({
      api: sim.api,
      stargates: [sim.api],
      dns: [sim.dns],
      site: SITE,
      nodes: sim.nodes.map((n) => ({ name: n.name, role: n.role, url: n.url })),
      quietMs: 200,
      pollMs: 20,
      ...over,
    });

  it("rolls gateways then a stargate one at a time: drained, out of DNS, quiet, updated, ready, undrained, back in DNS; the stargate leaves, goes quiet, updates, rejoins; metrics count them", async function () {
    const events: ProgressEvent[] = [];
    const metrics = new RolloutMetrics();
    const inDns: string[][] = [];
    const result = await rollout(planOf(), {
      token: TOKEN,
      metrics,
      progress: (e) => events.push(e),
      update: async (node) => {
        inDns.push([
          ...sim.nodes.filter((n) => n.role === "gateway" && !sim.draining.has(n.device)).map((n) => n.name),
        ]);
        await sim.restart(node.name);
      },
    });
    expect(result.failure).to.equal(undefined);
    expect(result.ok).to.equal(true);
    expect(sim.log).to.deep.equal([
      "drain gw-1",
      "update gw-1 (drained)",
      "undrain gw-1",
      "drain gw-2",
      "update gw-2 (drained)",
      "undrain gw-2",
      "leave sg-1",
      "update sg-1 (left)",
      "join sg-1",
    ]);
    // While a gateway was updated, DNS served only the other one.
    expect(inDns.slice(0, 2)).to.deep.equal([["gw-2"], ["gw-1"]]);
    expect(sim.draining.size).to.equal(0);
    expect(result.nodes.map((n) => [n.name, n.state])).to.deep.equal([
      ["gw-1", "done"],
      ["gw-2", "done"],
      ["sg-1", "done"],
    ]);
    expect(result.nodes[0].steps.map((s) => s.step)).to.deep.equal([
      "drain",
      "dns-out",
      "traffic",
      "update",
      "ready",
      "undrain",
      "dns-in",
    ]);
    expect(result.nodes[2].steps.map((s) => s.step)).to.deep.equal(["leave", "quiet", "update", "ready", "join"]);
    // The traffic and quiet steps waited at least quietMs.
    expect(result.nodes[0].steps.find((s) => s.step === "traffic")!.ms).to.be.at.least(200);
    expect(result.nodes[2].steps.find((s) => s.step === "quiet")!.ms).to.be.at.least(200);
    expect(events.filter((e) => e.phase === "done")).to.have.length(7 + 7 + 5);
    const text = await metrics.registry.metrics();
    expect(text).to.match(/edge_rollout_nodes\{state="done"\} 3/);
    expect(text).to.match(/edge_rollout_nodes\{state="failed"\} 0/);
    expect(text).to.match(/edge_rollout_step_seconds_count\{step="update"\} 3/);
    expect(promtoolProblems(text)).to.equal("");
    const served = await metrics.serve(0);
    try {
      const scraped = await fetch(`http://127.0.0.1:${served.port}/metrics`);
      expect(scraped.status).to.equal(200);
      expect(await scraped.text()).to.equal(text);
    } finally {
      await served.close();
    }
  });

  it("the first failure stops the queue: a failing update leaves that gateway drained (the message says so and names node and step) and the rest untouched", async function () {
    const result = await rollout(planOf(), {
      token: TOKEN,
      update: async (node) => {
        if (node.name === "gw-1") throw new Error("the new build does not start");
        await sim.restart(node.name);
      },
    });
    expect(result.ok).to.equal(false);
    expect(result.failure).to.include({ node: "gw-1", step: "update" });
    expect(result.failure!.message).to.match(/gw-1 update: the new build does not start; gw-1 is left drained/);
    expect(sim.log).to.deep.equal(["drain gw-1"]);
    expect(result.nodes.map((n) => n.state)).to.deep.equal(["failed", "pending", "pending"]);
    expect([...sim.draining]).to.deep.equal([sim.node("gw-1").device]);
  });

  it("traffic that never stops times out the traffic step and stops the rollout before any update", async function () {
    sim.node("gw-1").stubborn = true;
    let updates = 0;
    const started = Date.now();
    const result = await rollout(planOf({ timeouts: { drain: 800 } }), {
      token: TOKEN,
      update: async () => void (updates += 1),
    });
    expect(Date.now() - started).to.be.below(5_000);
    expect(updates).to.equal(0);
    expect(result.failure).to.include({ node: "gw-1", step: "traffic" });
    expect(result.failure!.message).to.match(
      /timed out after 800 ms \(last: edge_cdn_requests_total \d+, \d+ more in \d+ ms \(\d+\.\d\/s, at most 0\/s allowed\)\)/,
    );
    expect(result.failure!.message).to.match(/left drained/);
    expect(result.nodes.map((n) => n.state)).to.deep.equal(["failed", "pending", "pending"]);
  });

  it("an update that hangs times out (its signal aborted); a stargate that never loses its subscribers times out quiet, left out of its group", async function () {
    let aborted = false;
    const hung = await rollout(planOf({ timeouts: { update: 300 } }), {
      token: TOKEN,
      update: (_node, signal) =>
        new Promise((_, reject) =>
          signal.addEventListener("abort", () => ((aborted = true), reject(new Error("aborted")))),
        ),
    });
    expect(hung.failure).to.include({ node: "gw-1", step: "update" });
    expect(hung.failure!.message).to.match(/timed out after 300 ms/);
    expect(aborted).to.equal(true);

    const stargate = sim.node("sg-1");
    const plan = planOf({ nodes: [{ name: "sg-1", role: "stargate", url: stargate.url }], timeouts: { drain: 500 } });
    const pinned = setInterval(() => (stargate.subscribers = 1), 10);
    try {
      const result = await rollout(plan, { adminToken: TOKEN, update: async () => undefined });
      expect(result.failure).to.include({ node: "sg-1", step: "quiet" });
      expect(result.failure!.message).to.match(/1 configuration subscribers/);
      expect(result.failure!.message).to.match(/left out of its group \(POST .*\/admin\/join undoes it\)/);
    } finally {
      clearInterval(pinned);
    }
  });

  it("a restarted gateway is not put back while no host links to it (ready waits for edge_node_routable_hosts >= 1)", async function () {
    const gateway = sim.node("gw-1");
    const plan = planOf({ nodes: [{ name: "gw-1", role: "gateway", url: gateway.url }], timeouts: { ready: 600 } });
    const lonely = await rollout(plan, { token: TOKEN, update: async () => void (gateway.hosts = 0) });
    expect(lonely.failure).to.include({ node: "gw-1", step: "ready" });
    expect(lonely.failure!.message).to.match(/no host linked yet/);
    expect(sim.draining.has(gateway.device), "left drained").to.equal(true);
    sim.draining.clear();
    gateway.hosts = 0;
    setTimeout(() => (gateway.hosts = 1), 200); // its host links again after the restart
    const relinked = await rollout(plan, { token: TOKEN, update: async () => undefined });
    expect(relinked.ok, relinked.failure?.message).to.equal(true);
  });

  it("a drain the API refuses stops the rollout with the API's code; DNS that keeps returning a drained gateway times out dns-out", async function () {
    const refused = await rollout(planOf(), { token: "wrong", update: async () => undefined });
    expect(refused.failure).to.include({ node: "gw-1", step: "drain" });
    expect(refused.failure!.message).to.match(/401 EDGE_NODE_UNAUTHORIZED/);
    expect(sim.draining.size).to.equal(0);

    // A plan naming an address DNS never stops returning (another gateway's).
    const plan = planOf({ timeouts: { dns: 400 } });
    plan.nodes[0].address = sim.node("gw-2").address;
    const stuck = await rollout(plan, { token: TOKEN, update: async () => undefined });
    expect(stuck.failure).to.include({ node: "gw-1", step: "dns-out" });
    expect(stuck.failure!.message).to.include(`${sim.dns} answers ${SITE} with [`);
  });

  it("a plan's problems are listed by path (input errors: the CLI exits 2); the CLI exits 1 (summary on stdout) when a node's update command fails", async function () {
    const bad = () =>
      parsePlan({ api: "ftp://x", stargates: [], dns: ["x"], nodes: [{ name: "a b", role: "host", url: "http://x" }] });
    expect(bad).to.throw(
      /\/api: must be an http\(s\) URL[\s\S]*\/stargates: must not have fewer than 1 items[\s\S]*\/dns\/0: must be an IP literal and a port[\s\S]*\/nodes\/0\/name: must be letters[\s\S]*\/nodes\/0\/role: must be one of "gateway", "stargate"/,
    );
    expect(() => bad())
      .to.throw()
      .that.has.property("isInputError", true);
    const dir = mkdtempSync(join(tmpdir(), "rollout-cli-"));
    try {
      const file = join(dir, "plan.json");
      const nodes = sim.nodes.map((n) => ({ name: n.name, role: n.role, url: n.url, update: "exit 3" }));
      writeFileSync(file, JSON.stringify({ ...planOf(), nodes }));
      const writes: string[] = [];
      const original = process.stdout.write.bind(process.stdout);
      const originalErr = process.stderr.write.bind(process.stderr);
      process.stdout.write = ((chunk: string) => (writes.push(chunk), true)) as typeof process.stdout.write;
      process.stderr.write = ((chunk: string) => (writes.push(chunk), true)) as typeof process.stderr.write;
      let code: number;
      try {
        code = await main(["--plan", file, "--json"], { EDGE_ROLLOUT_TOKEN: TOKEN });
      } finally {
        process.stdout.write = original;
        process.stderr.write = originalErr;
      }
      expect(code).to.equal(1);
      const output = writes.join("");
      expect(output).to.match(/gw-1 \(gateway\) drain done in \d+ ms/);
      expect(output).to.match(/stopped: gw-1 failed at update: gw-1 update: the update command exited with 3/);
      expect(output).to.match(/untouched: gw-2, sg-1/);
      expect(JSON.parse(writes.find((w) => w.startsWith("{"))!).ok).to.equal(false);
      await main(["--plan", join(dir, "missing.json")]).then(
        () => expect.fail("a missing plan is an error"),
        (error: Error & { isInputError?: boolean }) => {
          expect(error.message).to.match(/cannot read the plan/);
          expect(error.isInputError, "exit 2").to.equal(true);
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("R18-7: an update command runs without the rollout's credentials (EDGE_ROLLOUT_*, EDGE_NODE_ADMIN_TOKEN); plan URLs must be https unless loopback", async function () {
    const dir = mkdtempSync(join(tmpdir(), "rollout-env-"));
    const secrets = {
      EDGE_ROLLOUT_TOKEN: "t0ken",
      EDGE_ROLLOUT_USER: "ops",
      EDGE_ROLLOUT_PASSWORD: "pa55",
      EDGE_ROLLOUT_API_SECRET: "s3cret",
      EDGE_NODE_ADMIN_TOKEN: "adm1n",
    };
    const saved = { ...process.env };
    Object.assign(process.env, secrets, { R18_7_KEPT: "kept" });
    try {
      const file = join(dir, "env");
      const node = { name: "gw-1", role: "gateway" as const, url: sim.node("gw-1").url, update: `env > ${file}` };
      await shellUpdate(node, new AbortController().signal);
      const env = Object.fromEntries(
        readFileSync(file, "utf8")
          .trim()
          .split("\n")
          .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
      );
      for (const name of Object.keys(secrets)) expect(env, name).not.to.have.property(name);
      expect(Object.values(env).join(" ")).not.to.match(/t0ken|pa55|s3cret|adm1n/);
      expect(env).to.include({ R18_7_KEPT: "kept", EDGE_ROLLOUT_NODE: "gw-1", EDGE_ROLLOUT_ROLE: "gateway" });
      expect(env.EDGE_ROLLOUT_URL).to.equal(node.url);
    } finally {
      for (const name of [...Object.keys(secrets), "R18_7_KEPT"]) if (!(name in saved)) delete process.env[name];
      Object.assign(process.env, saved);
      rmSync(dir, { recursive: true, force: true });
    }

    const remote = () =>
      parsePlan({
        api: "http://10.0.0.5:8001",
        stargates: ["https://sg.example:8001", "http://sg2.example"],
        nodes: [
          { name: "gw", role: "gateway", url: "http://192.168.1.2:8101" },
          { name: "local", role: "gateway", url: "http://127.0.0.11:8101" },
        ],
      });
    expect(remote).to.throw(
      /\/api: "http:\/\/10\.0\.0\.5:8001" must be https[^\n]*loopback[\s\S]*\/stargates\/1: "http:\/\/sg2\.example" must be https[\s\S]*\/nodes\/0\/url: "http:\/\/192\.168\.1\.2:8101" must be https/,
    );
    expect(remote).to.throw().that.has.property("isInputError", true);
    expect(() => remote()).not.to.throw(/\/stargates\/0|\/nodes\/1/);
    for (const url of ["http://127.0.0.2:1", "http://[::1]:8001", "http://localhost:8001", "https://10.0.0.5"])
      expect(parsePlan({ api: url, stargates: [url], nodes: [{ name: "n", role: "stargate", url }] }).api).to.equal(
        url,
      );
  });

  it("R18-8: a trickle straight to a drained gateway at or below maxTrafficPerSecond passes the traffic step after quietMs; with the default (0) it times out naming the rate; requests in flight always hold it", async function () {
    const gw = sim.node("gw-1");
    const trickle = setInterval(() => (gw.requests += 1), 100); // about 10 requests a second
    try {
      const only = (over: Record<string, unknown>) =>
        planOf({ nodes: [{ name: "gw-1", role: "gateway", url: gw.url }], quietMs: 400, ...over });
      const tolerant = await rollout(only({ maxTrafficPerSecond: 25 }), {
        token: TOKEN,
        update: (node) => sim.restart(node.name),
      });
      expect(tolerant.failure, JSON.stringify(tolerant.failure)).to.equal(undefined);
      expect(tolerant.nodes[0].steps.find((s) => s.step === "traffic")!.ms).to.be.at.least(400);

      const strict = await rollout(only({ timeouts: { drain: 1_200 } }), { token: TOKEN, update: async () => {} });
      expect(only({}).maxTrafficPerSecond).to.equal(0);
      expect(strict.failure).to.include({ node: "gw-1", step: "traffic" });
      expect(strict.failure!.message).to.match(/\d+ more in \d+ ms \((\d+\.\d)\/s, at most 0\/s allowed\)/);
      expect(strict.failure!.message).to.match(/left drained/);

      gw.inFlight = 1;
      const busy = await rollout(only({ maxTrafficPerSecond: 25, timeouts: { drain: 800 } }), {
        token: TOKEN,
        update: async () => {},
      });
      expect(busy.failure).to.include({ node: "gw-1", step: "traffic" });
      expect(busy.failure!.message).to.match(/1 requests in flight/);
    } finally {
      clearInterval(trickle);
    }
  });

  it("R18-13: an update command that times out is killed with its whole process group (the shell and the child it started)", async function () {
    const dir = mkdtempSync(join(tmpdir(), "rollout-group-"));
    const pids: number[] = [];
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
      } catch {
        return false;
      }
      // A zombie (killed, not yet reaped by its new parent) is dead too.
      const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8") : "";
      return !/^\d+ \(.*\) Z/.test(stat);
    };
    try {
      const gw = sim.node("gw-1");
      const update = `echo $$ > ${dir}/sh; sleep 30 & echo $! > ${dir}/child; wait`;
      const plan = planOf({
        nodes: [{ name: "gw-1", role: "gateway", url: gw.url, update }],
        timeouts: { update: 600 },
      });
      const result = await rollout(plan, { token: TOKEN, update: (node, signal) => shellUpdate(node, signal) });
      expect(result.failure).to.include({ node: "gw-1", step: "update" });
      expect(result.failure!.message).to.match(/timed out after 600 ms/);
      pids.push(Number(readFileSync(join(dir, "sh"), "utf8")), Number(readFileSync(join(dir, "child"), "utf8")));
      expect(pids.every((pid) => pid > 1)).to.equal(true);
      const deadline = Date.now() + 4_000;
      while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(pids.filter(alive), "still running after the timeout").to.deep.equal([]);
    } finally {
      for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("R18-15: a gateway whose /status names a device the catalogue lists at another host or port (or not at all) is refused before any drain", async function () {
    const gw = sim.node("gw-1");
    const cases: [() => void, RegExp][] = [
      [() => (gw.claims = sim.node("gw-2").device), /catalogue has that device at http:\/\/127\.0\.0\.12:\d+ \(host/],
      [() => (gw.catalogueUrl = `http://127.0.0.11:1`), /catalogue has that device at http:\/\/127\.0\.0\.11:1 \(host/],
      [() => (gw.claims = `0x${"ab".repeat(20)}`), /is in no stargate's catalogue: not drained/],
    ];
    for (const [arrange, expected] of cases) {
      gw.claims = undefined;
      gw.catalogueUrl = undefined;
      arrange();
      let updates = 0;
      const result = await rollout(planOf(), { token: TOKEN, update: async () => void (updates += 1) });
      expect(result.failure).to.include({ node: "gw-1", step: "drain" });
      expect(result.failure!.message).to.match(expected);
      expect(result.failure!.message).not.to.match(/left drained/);
      expect(updates).to.equal(0);
      expect(sim.log).to.deep.equal([]);
      expect(sim.draining.size).to.equal(0);
    }
  });
});
