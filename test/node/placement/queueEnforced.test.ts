/**
 * The gateway's job queue under sites' placements (issue 20, D69): the property the issue asks for, on the queue
 * that really dispatches content jobs (node/roles/gateway/queue.ts) with the eligibility the front door gives it
 * (sitePlacement.ts `hostsFor`): an enforced site's job never starts on a host outside its countries, nor on an
 * undeclared one, under any mix of load (jobs submitted, finished), host failures (the breaker), evictions, leaves,
 * joins and retries; and it is refused at once (503 EDGE_NODE_NO_ELIGIBLE_HOST) exactly when no linked host may
 * run it. 1,000 cases in CI, fixed seed.
 */
import { expect } from "chai";
import fc from "fast-check";

import { isEdgeError } from "../../../offchain/common/errors";
import type { Placement, Region } from "../../../offchain/common/protocol";
import { allows } from "../../../node/placement";
import { JobQueue, type Slot } from "../../../node/roles/gateway/queue";
import { hostsFor } from "../../../node/roles/gateway/sitePlacement";
import type { Site } from "../../../node/roles/gateway/sites";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";

const REGIONS: Array<Region | undefined> = [
  { country: "DE", region: "eu-central" },
  { country: "FR", region: "eu-west" },
  { country: "US", region: "us-east" },
  { country: "JP", region: "ap-northeast" },
  undefined,
];
const COUNTRIES = ["DE", "FR", "US", "JP"];

interface TestLink extends Slot {
  region: Region | undefined;
  linked: boolean;
  evicted: boolean;
}

type Op =
  | { kind: "submit"; site: number; avoid: number | null }
  | { kind: "finish" | "fail"; job: number }
  | { kind: "evict" | "leave" | "join"; host: number }
  | { kind: "tick" };

/** A plain check (chai's matchers, wrapped by hardhat's, cost more than the queue itself in this hot loop). */
function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

const site = (n: number, placement?: Placement): Site =>
  ({ id: `s${n}`, hostname: `s${n}.test`, owner: "0x", origin: "http://o", cache: {}, placement }) as unknown as Site;

describe("gateway queue under placements (D69)", () => {
  it("ENFORCED: a job never starts outside its site's countries under any load, failures, evictions and joins; refused exactly when no linked host may run it", () => {
    const arbitrary = fc.record({
      hosts: fc.array(fc.record({ region: fc.nat(REGIONS.length - 1), capacity: fc.integer({ min: 1, max: 3 }) }), {
        minLength: 1,
        maxLength: 10,
      }),
      countries: fc.subarray(COUNTRIES, { minLength: 1 }),
      ops: fc.array(
        fc.oneof(
          { weight: 5, arbitrary: fc.record({ kind: fc.constant("submit" as const), site: fc.nat(2), avoid: fc.option(fc.nat(9)) }) }, // prettier-ignore
          { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom("finish" as const, "fail" as const), job: fc.nat(40) }) }, // prettier-ignore
          { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom("evict" as const, "leave" as const, "join" as const), host: fc.nat(9) }) }, // prettier-ignore
          { weight: 1, arbitrary: fc.record({ kind: fc.constant("tick" as const) }) },
        ),
        { maxLength: 60 },
      ) as fc.Arbitrary<Op[]>,
    });
    fc.assert(
      fc.property(arbitrary, ({ hosts, countries, ops }) => {
        const links: TestLink[] = hosts.map((h, i) => ({
          host: `h${i}`,
          region: REGIONS[h.region],
          capacity: h.capacity,
          inflight: 0,
          linked: true,
          evicted: false,
        }));
        const usable = (l: TestLink) => l.linked && !l.evicted;
        let clock = 0;
        const options = { maxLength: 1_000, maxWaitMs: 60_000, tickMs: 0, now: () => clock };
        const queue = new JobQueue<TestLink>(options, usable, (except, eligible) =>
          links.some((l) => usable(l) && l.host !== except && (!eligible || eligible(l))),
        );
        // Site 0: enforced; site 1: no policy; site 2: dynamic (declared hosts only).
        const sites = [
          site(0, { mode: "enforced", countries }),
          site(1),
          site(2, { mode: "dynamic", queueDepth: 1, p99Ms: 10 }),
        ];
        const allowed = new Set(countries);
        const running: Array<{ link: TestLink; site: number }> = [];
        for (const link of links) queue.offer(link, link.capacity);
        for (const o of ops) {
          if (o.kind === "submit") {
            const placed = hostsFor(sites[o.site], REGIONS[0]);
            const avoid = o.avoid === null ? undefined : `h${o.avoid}`;
            const couldRun = links.some((l) => usable(l) && l.host !== avoid && allows(sites[o.site].placement, l.region, l.host)); // prettier-ignore
            try {
              queue.submit({
                avoid,
                ...placed,
                run: (link) => {
                  check(link.host !== avoid, "started on the avoided host");
                  check(link.inflight <= link.capacity, "over capacity");
                  check(usable(link), "started on an unusable link");
                  if (o.site === 0) {
                    check(link.region !== undefined, `enforced job on undeclared ${link.host}`);
                    check(allowed.has(link.region!.country), `enforced job on ${link.region!.country}`);
                  }
                  if (o.site === 2) check(link.region !== undefined, "dynamic job on an undeclared host");
                  running.push({ link, site: o.site });
                },
                expire: () => undefined,
              });
              check(couldRun, "accepted a job no linked host may run (it must fail at once)");
            } catch (error) {
              if (!isEdgeError(error)) throw error;
              if (error.code === "EDGE_NODE_NO_ELIGIBLE_HOST" || error.code === "EDGE_NODE_NO_HOSTS")
                check(!couldRun, `${error.code} while a linked host could run it`);
              else check(error.code === "EDGE_NODE_QUEUE_FULL", `unexpected ${error.code}`);
            }
          } else if (o.kind === "tick") {
            clock += 700;
            queue.tick();
          } else if (o.kind === "finish" || o.kind === "fail") {
            if (running.length === 0) continue;
            const [job] = running.splice(o.job % running.length, 1);
            if (o.kind === "fail") queue.failed(job.link);
            queue.done(job.link, clock - 5);
          } else {
            const link = links[(o as { host: number }).host % links.length];
            if (o.kind === "evict") link.evicted = true;
            else if (o.kind === "leave") link.linked = false;
            else if (!link.linked) {
              link.linked = true;
              queue.offer(link, link.capacity - link.inflight);
            }
          }
        }
      }),
      { seed: FC_SEED, numRuns: fcRuns(1_000) },
    );
  });

  it("hostsFor gives the queue the site (its id and placement) and this gateway's region", () => {
    const de: Region = { country: "DE", region: "eu-central" };
    const placement: Placement = { mode: "dynamic", queueDepth: 5, p99Ms: 100 };
    expect(hostsFor(site(0, placement), de)).to.deep.equal({ site: { name: "s0", placement }, origin: de });
    expect(hostsFor(site(2), undefined)).to.deep.equal({ site: { name: "s2", placement: undefined }, origin: undefined }); // prettier-ignore
  });
});
