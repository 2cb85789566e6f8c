/**
 * The rollout queue (offchain/rollout, D59) against real servers (sim.ts): HTTP nodes, a stargate's API and
 * catalogue, and a UDP DNS server queried with real DNS queries.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { main } from "../../../offchain/rollout/cli";
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
      /timed out after 800 ms \(last: edge_cdn_requests_total \d+, unchanged for \d+ ms\)/,
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
});
