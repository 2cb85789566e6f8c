/**
 * The gateway's queue placing with the engine (D69), on a clock the test moves: a dynamic site's jobs stay on the
 * gateway's own region until its queue depth (or p99) passes the site's thresholds, spill to the next region, and
 * come back once the region has been below the return level for the hold; the spill is visible in the queue's
 * `placement()` (the gateway's /status) and the `edge_placement_spilled` gauge while it lasts. And fairness: a
 * freed slot goes to the oldest job that may run there, however many jobs of other placements wait before it.
 */
import { expect } from "chai";
import { Registry } from "prom-client";

import type { Placement, Region } from "../../../offchain/common/protocol";
import { createPlacementMetrics } from "../../../node/roles/gateway/placementMetrics";
import { JobQueue, type QueuedJob, type Slot } from "../../../node/roles/gateway/queue";

const A: Region = { country: "DE", region: "eu-central" };
const B: Region = { country: "FR", region: "eu-west" };
const US: Region = { country: "US", region: "us-east" };
const KEY_A = "DE/eu-central";

interface TestLink extends Slot {
  region: Region | undefined;
  rttMs?: number;
}
const link = (host: string, region: Region | undefined, capacity: number): TestLink => ({
  host,
  region,
  capacity,
  inflight: 0,
});

/** A queue on the test's clock (no tick timer), its links offered, and the jobs it ran: job name -> host. */
function rig(links: TestLink[]) {
  const clock = { now: 0 };
  const queue = new JobQueue<TestLink>(
    { maxLength: 1_000, maxWaitMs: 600_000, tickMs: 0, now: () => clock.now },
    () => true,
    (except, eligible) => links.some((l) => l.host !== except && (!eligible || eligible(l))),
  );
  for (const l of links) queue.offer(l, l.capacity);
  const ran = new Map<string, { link: TestLink; at: number }>();
  const expired: string[] = [];
  const submit = (name: string, site: { name: string; placement?: Placement }, origin: Region = A) =>
    queue.submit({
      site,
      origin,
      run: (l, at) => void ran.set(name, { link: l, at }),
      // Jobs a test leaves waiting expire after maxWaitMs, long after it ended: recorded, never thrown then.
      expire: (error) => void expired.push(`${name}: ${error.message}`),
    } satisfies QueuedJob<TestLink>);
  /** Ends job `name` (on the test's clock: its time on the host counts in its region's p99). */
  const finish = (name: string) => {
    const job = ran.get(name)!;
    queue.done(job.link, job.at);
  };
  const where = (name: string) => ran.get(name)?.link.host;
  return { clock, queue, submit, finish, where, expired };
}

describe("gateway queue: the engine's placement, spill and return (D69)", () => {
  const dynamic = { name: "shop", placement: { mode: "dynamic", queueDepth: 2, p99Ms: 600_000, holdMs: 1_000 } as Placement }; // prettier-ignore

  it("DYNAMIC: jobs stay in the gateway's region until its queue depth passes 2, spill to the next region, and come back after the hold", async () => {
    const { clock, queue, submit, finish, where } = rig([link("a1", A, 1), link("b1", B, 4)]);
    const registry = new Registry();
    createPlacementMetrics(registry, queue);
    const spilledGauge = async () => (await registry.getSingleMetric("edge_placement_spilled")!.get()).values;

    submit("j1", dynamic);
    expect(where("j1")).to.equal("a1"); // own region first, though b1 has more free slots
    submit("j2", dynamic);
    submit("j3", dynamic);
    expect([where("j2"), where("j3")]).to.deep.equal([undefined, undefined]); // routed to A: they wait for a1
    expect(queue.depthOf(KEY_A)).to.equal(2);
    expect(queue.placement().spilled).to.deep.equal([]);

    clock.now = 100;
    submit("j4", dynamic); // A's queue depth 3 > 2: the site spills to B, its waiting jobs with it, oldest first
    expect([where("j2"), where("j3"), where("j4")]).to.deep.equal(["b1", "b1", "b1"]);
    expect(queue.depthOf(KEY_A)).to.equal(0);
    expect(queue.placement().spilled).to.deep.equal([{ site: "shop", region: KEY_A, since: 100 }]);
    expect(await spilledGauge()).to.deep.equal([{ value: 1, labels: { site: "shop", region: KEY_A } }]);

    // Load falls: every job ends; within the hold the site stays spilled (a1 is free, yet B serves).
    clock.now = 600;
    for (const job of ["j1", "j2", "j3", "j4"]) finish(job);
    queue.tick();
    submit("j5", dynamic);
    expect(where("j5")).to.equal("b1");
    finish("j5");

    // The hold (1 s from the first observation below, at 100) has passed: the tick returns it, then A serves.
    clock.now = 1_100;
    queue.tick();
    expect(queue.placement().spilled).to.deep.equal([]);
    expect(await spilledGauge()).to.deep.equal([]);
    submit("j6", dynamic);
    expect(where("j6")).to.equal("a1");
  });

  it("DYNAMIC: one sample over the return level restarts the hold (no flapping)", () => {
    const { clock, queue, submit, finish, where } = rig([link("a1", A, 1), link("b1", B, 8)]);
    for (const job of ["j1", "j2", "j3", "j4"]) submit(job, dynamic); // j1 on a1, then spilled
    expect(queue.placement().spilled.map((s) => s.region)).to.deep.equal([KEY_A]);
    // While spilled, a job of another dynamic site waits for a1 (its own state: home): A's depth 1, not below 1.
    clock.now = 500;
    submit("k1", { name: "blog", placement: { mode: "dynamic", queueDepth: 5, p99Ms: 600_000 } });
    expect(where("k1")).to.equal(undefined);
    clock.now = 1_200;
    queue.tick();
    submit("j5", dynamic);
    expect(where("j5")).to.equal("b1"); // below since 0, not below at 500: the hold restarts
    finish("j1"); // a1 frees: k1 takes it; A's depth is 0 from now (1,200)
    expect(where("k1")).to.equal("a1");
    clock.now = 2_100;
    queue.tick();
    expect(queue.placement().spilled).to.have.length(1);
    clock.now = 2_200;
    queue.tick();
    expect(queue.placement().spilled).to.deep.equal([]);
  });

  it("DYNAMIC: a region's p99 over the threshold spills the site; it returns once the slow jobs leave the window", () => {
    const slow = { name: "api", placement: { mode: "dynamic", queueDepth: 100, p99Ms: 200, holdMs: 0 } as Placement }; // prettier-ignore
    const { clock, queue, submit, finish, where } = rig([link("a1", A, 2), link("b1", B, 2)]);
    submit("j1", slow);
    clock.now = 500; // j1 ran 500 ms on a1
    finish("j1");
    queue.tick();
    expect(queue.p99Of(KEY_A)).to.equal(500);
    submit("j2", slow);
    expect(where("j2")).to.equal("b1");
    finish("j2");
    clock.now = 11_000; // the slow job is out of the 10 s window: p99 0, below; hold 0
    queue.tick();
    submit("j3", slow);
    expect(where("j3")).to.equal("a1");
  });

  it("FAIR: a freed slot goes to the oldest job that may run there, behind any number of other placements' jobs", () => {
    const { submit, finish, where, queue } = rig([link("us1", US, 1), link("de1", A, 1)]);
    const us = { name: "us-site", placement: { mode: "enforced", countries: ["US"] } as Placement };
    const de = { name: "de-site", placement: { mode: "enforced", countries: ["DE"] } as Placement };
    submit("u0", us);
    submit("d0", de);
    for (let i = 1; i <= 100; i++) submit(`u${i}`, us); // a flood for us1 only
    submit("any", { name: "plain" }); // no placement: any host
    submit("d1", de);
    expect(queue.depth).to.equal(102);
    finish("d0"); // de1's slot: the oldest job that may run there is "any" (older than d1), never a US job
    expect(where("any")).to.equal("de1");
    finish("any");
    expect(where("d1")).to.equal("de1"); // behind 100 US jobs (the old queue's scan stopped at 16)
    finish("u0"); // us1's slot: the US jobs in order
    expect(where("u1")).to.equal("us1");
    expect(where("u2")).to.equal(undefined);
    // Another site with the same enforced policy shares the class: it queues behind the flood.
    submit("other", { name: "us-site-2", placement: { mode: "enforced", countries: ["US"] } });
    finish("u1");
    expect(where("u2")).to.equal("us1");
    expect(where("other")).to.equal(undefined);
  });

  it("DYNAMIC: spills to the nearest region by the links' measured round trips (median per region), not by key", () => {
    // Origin A; B (FR) and US each with hosts. By key FR would come first; by round trip US is nearer.
    const links = [link("a1", A, 1), link("b1", B, 4), link("b2", B, 4), link("u1", US, 4)];
    links[1].rttMs = 80;
    links[2].rttMs = 60;
    links[3].rttMs = 5;
    const { clock, queue, submit, where } = rig(links);
    queue.measureLatency(clock.now, true);
    submit("j1", dynamic);
    submit("j2", dynamic);
    submit("j3", dynamic);
    submit("j4", dynamic); // A over its depth: the site spills to the nearest measured region
    expect([where("j2"), where("j3"), where("j4")]).to.deep.equal(["u1", "u1", "u1"]);

    // The round trips change (FR's median now 7 ms, US 90): the next spill goes to FR.
    const again = rig(links);
    links[1].rttMs = 7;
    links[2].rttMs = 9;
    links[3].rttMs = 90;
    again.queue.measureLatency(again.clock.now, true);
    for (const name of ["k1", "k2", "k3", "k4"]) again.submit(name, dynamic);
    expect(["k2", "k3", "k4"].map(again.where).every((h) => h === "b1" || h === "b2")).to.equal(true);
  });
});
