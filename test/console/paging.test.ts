/**
 * The Console reads through the user's own wallet provider, which (like public RPCs) refuses a getLogs over a
 * long history. It pages as the chain view does (offchain/common/logPages.ts).
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, mine } from "@nomicfoundation/hardhat-network-helpers";
import { type Address, type PublicClient, createPublicClient, custom } from "viem";

import { readStakes } from "../../console/web/readStakes";
import { getLogsPaged } from "../../offchain/common/logPages";
import { PostedScores } from "../../offchain/common/postedScores";
import { postBatch } from "../shared/fixtures";
import { scoredFixture } from "../contracts/rewards/helpers";

const MAX_RANGE = 500n;

/** A provider that answers like a public one: getLogs over more than 500 blocks is refused. */
function strictClient(ranges: bigint[]): PublicClient {
  return createPublicClient({
    transport: custom(
      {
        async request({ method, params }: { method: string; params?: unknown }) {
          if (method === "eth_getLogs") {
            const [{ fromBlock, toBlock }] = params as [{ fromBlock: string; toBlock: string }];
            const range = BigInt(toBlock) - BigInt(fromBlock) + 1n;
            ranges.push(range);
            if (range > MAX_RANGE) throw new Error(`query exceeds max block range ${MAX_RANGE}`);
          }
          return network.provider.send(method, (params as unknown[]) ?? []);
        },
      },
      { retryCount: 0 },
    ),
  }) as PublicClient;
}

describe("Console: paged log reads", function () {
  it("reads every log in adaptive pages, splitting a page the provider refuses", async function () {
    const fetched: Array<[bigint, bigint]> = [];
    const logs = await getLogsPaged(
      async (from, to) => {
        fetched.push([from, to]);
        if (to - from + 1n > 300n) throw new Error("block range is too large");
        const out: bigint[] = [];
        for (let b = from; b <= to; b++) if (b % 7n === 0n) out.push(b);
        return out;
      },
      1n,
      5_000n,
      { initialPageSize: 10, maxPageSize: 100_000, targetLogsPerPage: 50 },
    );
    expect(logs).to.deep.equal(Array.from({ length: 714 }, (_, i) => BigInt(7 * (i + 1))));
    for (let i = 1; i < fetched.length; i++) expect(fetched[i][0] <= fetched[i - 1][1] + 1n).to.equal(true);
    await getLogsPaged(async () => [], 1n, 10n).then((none) => expect(none).to.deep.equal([]));
    let calls = 0;
    await expect(
      getLogsPaged(
        async () => {
          calls += 1;
          throw new Error("execution reverted");
        },
        1n,
        1000n,
      ),
    ).to.be.rejectedWith(/execution reverted/);
    expect(calls).to.equal(1); // only a "too large" refusal is retried smaller
  });

  it("lists a wallet's stakes and their posted scores through a provider that refuses wide getLogs", async function () {
    const f = await loadFixture(scoredFixture);
    await postBatch(f, 0n, [{ stakeId: 1n, score: 12_345n }]);
    await mine(3_000); // a history longer than the provider serves in one getLogs
    const ranges: bigint[] = [];
    const client = strictClient(ranges);
    const reader = {
      publicClient: client,
      account: f.alice.address as Address,
      contracts: {
        token: (await f.token.getAddress()) as Address,
        staking: (await f.staking.getAddress()) as Address,
        rewards: (await f.rewards.getAddress()) as Address,
        stakingFromBlock: 0n,
        rewardsFromBlock: 0n,
      },
      postedScores: new PostedScores(client, (await f.rewards.getAddress()) as Address, 0n),
    };
    const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
    const rows = await readStakes(reader, now);
    expect(rows.map((r) => r.id)).to.deep.equal([1n]);
    expect(rows[0].earnings?.score).to.equal(12_345n);
    expect(rows[0].earnings?.lastScoredEpoch).to.equal(0n);
    expect(ranges.some((r) => r > MAX_RANGE)).to.equal(true); // it was refused, and recovered by paging
    expect(ranges.filter((r) => r > MAX_RANGE).length).to.equal(2); // once per scan: it learned the limit
  });
});
