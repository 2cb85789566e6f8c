/**
 * Review of issue 20 (regions, placement, spill, the map): regression tests, each titled with its finding (R20-n,
 * docs/decisions.md).
 */
import { expect } from "chai";
import { Registry } from "prom-client";
import { type Address, type Hash, encodeFunctionData } from "viem";

import { rewardsManagerAbi } from "../../offchain/common/generated/abis";
import { PostedScores, type ScoresClient } from "../../offchain/common/postedScores";
import type { NetworkConfig } from "../../offchain/common/protocol";
import { packEntries } from "../../offchain/common/scoreBatch";
import type { Catalogue } from "../../node/context";
import type { LoadReport } from "../../node/loadReport";
import { createPlacementMetrics } from "../../node/roles/gateway/placementMetrics";
import { JobQueue, type Slot } from "../../node/roles/gateway/queue";
import { RCODE, answer } from "../../node/roles/stargate/dnsAnswer";
import { DnsIndexer, servingEndpoints } from "../../node/roles/stargate/dnsIndex";
import { DnsSpill } from "../../node/roles/stargate/dnsSpill";
import { gateway, networkConfig } from "./dnsFixture";

const DE = { country: "DE", region: "eu-central" };
const FR = { country: "FR", region: "eu-west" };
const DYNAMIC = "fast.edge.test";

describe("review of issue 20", function () {
  describe("R20-1: one gateway's unsigned load report cannot spill its whole region in Edge DNS", () => {
    // Gateways 1, 4 and 5 in DE, 3 in FR; a DE client's nearest region is DE.
    const catalogue: Catalogue = {
      atMs: 1,
      endpoints: [
        { ...gateway(1), region: DE },
        { ...gateway(3), region: FR },
        { ...gateway(4), region: DE },
        { ...gateway(5), region: DE },
      ],
    };
    const base = networkConfig(7, {
      regions: {
        clients: [{ range: "127.0.1.0/24", region: "DE/eu-central" }],
        latency: [{ from: "DE/eu-central", to: "FR/eu-west", ms: 10 }],
      },
    });
    const placement = { mode: "dynamic" as const, queueDepth: 10, p99Ms: 500, returnBelow: 0.5, holdMs: 5_000 };
    const cfg: NetworkConfig = { ...base, sites: [...base.sites, { id: "fast", hostname: DYNAMIC, placement }] };
    const load = (queueDepth: number, p99Ms = 0): LoadReport => ({ inFlight: 0, capacity: 8, queueDepth, p99Ms });

    let loads: Map<string, LoadReport>;
    let spill: DnsSpill;
    let indexer: DnsIndexer;
    beforeEach(() => {
      loads = new Map();
      spill = new DnsSpill(() => 1_000_000);
      indexer = new DnsIndexer({ siteTtl: 5, nameserver: "ns.edge.test", log: { warn: () => undefined }, spill });
    });
    const report = (n: number, value: LoadReport) => loads.set(gateway(n).device.toLowerCase(), value);
    const observe = () =>
      spill.observe(servingEndpoints(catalogue, cfg.draining), (device: Address) => loads.get(device.toLowerCase()));
    const addresses = () => {
      const reply = answer(indexer.current(cfg, catalogue)!, DYNAMIC, "A", 0, "DE/eu-central");
      expect(reply.rcode).to.equal(RCODE.NOERROR);
      return reply.answers.map((a) => (a as { data: string }).data).sort();
    };
    const home = ["127.0.0.11", "127.0.0.14", "127.0.0.15"];

    it("a lone liar reporting the largest queue or p99 the header allows moves no other gateway's clients", () => {
      for (const lie of [load(1_000_000_000), load(0, 1_000_000_000)]) {
        report(1, lie);
        report(4, load(0));
        report(5, load(0));
        observe();
        expect(addresses(), JSON.stringify(lie)).to.deep.equal(home);
      }
      expect(spill.status().spilled).to.deep.equal([]);
    });

    it("still spills when most of the region's gateways are over", () => {
      report(1, load(0));
      report(4, load(20));
      report(5, load(30));
      observe();
      expect(addresses()).to.deep.equal(["127.0.0.13"]);
    });
  });

  describe("R20-2: posted scores read back as RewardsManager accrues them", () => {
    const REWARDS = "0x00000000000000000000000000000000000000aa" as Address;
    /** A chain of `batches` (one postScores transaction each, all for epoch 3), in log order. */
    function chain(batches: Array<Array<{ stakeId: bigint; score: bigint }>>): ScoresClient {
      const hashes = batches.map((_, i) => `0x${(i + 1).toString(16).padStart(64, "0")}` as Hash);
      return {
        getBlockNumber: async () => 10n,
        getContractEvents: (async () =>
          hashes.map((transactionHash) => ({ args: { epoch: 3n }, transactionHash }))) as never,
        getTransaction: (async ({ hash }: { hash: Hash }) => ({
          input: encodeFunctionData({
            abi: rewardsManagerAbi,
            functionName: "postScores",
            args: [3n, BigInt(hashes.indexOf(hash)), packEntries(batches[hashes.indexOf(hash)]), []],
          }),
        })) as never,
      };
    }

    it("a stake's first entry of an epoch counts (the contract skips a later one as AlreadyScored)", async () => {
      const scores = new PostedScores(chain([[{ stakeId: 1n, score: 12_000n }], [{ stakeId: 1n, score: 20_000n }]]), REWARDS, 0n); // prettier-ignore
      await scores.refresh();
      expect((await scores.scoresOf(3n)).get(1n)).to.equal(12_000n);
    });

    it("an entry over 20,000 is skipped without marking the stake: a later valid entry counts", async () => {
      const batches = [
        [
          { stakeId: 2n, score: 30_000n },
          { stakeId: 2n, score: 9_000n },
          { stakeId: 2n, score: 15_000n },
        ],
      ];
      const scores = new PostedScores(chain(batches), REWARDS, 0n);
      await scores.refresh();
      expect((await scores.scoresOf(3n)).get(2n)).to.equal(9_000n);
    });
  });

  describe("R20-3: a host re-registering under ever new regions does not grow the gateway's /status or metrics", () => {
    it("lists only the regions of linked hosts (or with jobs waiting) in placement() and edge_placement_region_*", async () => {
      const queue = new JobQueue<Slot>({ maxLength: 10, maxWaitMs: 60_000, tickMs: 0 }, (l) => l.closed !== true);
      const registry = new Registry();
      createPlacementMetrics(registry, queue);
      for (let i = 0; i < 200; i++) {
        // The same admitted host, linked again with a newly signed region each time.
        const link: Slot & { closed?: boolean } = { host: "h1", inflight: 0, capacity: 1, region: { country: "DE", region: `r${i}` } }; // prettier-ignore
        queue.offer(link, 1);
        link.closed = true;
        queue.leave(link);
      }
      const last: Slot = { host: "h1", inflight: 0, capacity: 1, region: { country: "FR", region: "eu-west" } };
      queue.offer(last, 1);
      queue.tick(0);
      expect(Object.keys(queue.placement().regions)).to.deep.equal(["FR/eu-west"]);
      const series = (await registry.getSingleMetric("edge_placement_region_queue_depth")!.get()).values;
      expect(series.map((v) => v.labels.region)).to.deep.equal(["FR/eu-west"]);
      queue.close();
    });
  });
});
