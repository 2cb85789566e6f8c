import { expect } from "chai";
import { ethers, network } from "hardhat";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";

import { type RewardsFixture, deployRewards, latestTimestamp, postBatch } from "../../shared/fixtures";
import { DAY, MINIMUM, StakeType, TOKEN_SUPPLY } from "../../shared/constants";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";
import { DEFAULT_YIELD_PARAMS, epochReward } from "../../../offchain/common/yield";
import type { ScoreEntry } from "../../../offchain/common/scoreBatch";

/** A staking fixture whose owners approved StakeManager, without RewardsManager (each run deploys its own). */
async function baseFixture() {
  const f = await deployRewards({ threshold: 1, epochDuration: DAY });
  for (const account of [f.alice, f.bob, f.carol]) {
    await f.token.connect(account).approve(await f.staking.getAddress(), ethers.MaxUint256);
  }
  await f.token.connect(f.treasury).transfer(f.alice.address, ethers.parseEther("300000000"));
  // Slashing here models stake changes, not abuse: lift the rate limit (it has its own tests).
  await f.staking.connect(f.parameterAdmin).setSlashLimit(DAY, 2n ** 95n);
  return f;
}

/** A fresh RewardsManager over the fixture's StakeManager, with its own epoch length; genesis 1000 s ahead. */
async function withRewards(f: RewardsFixture, epochDuration: bigint, funding: bigint): Promise<RewardsFixture> {
  const genesis = (await latestTimestamp()) + 1000n;
  const rewards = await ethers.deployContract("RewardsManager", [
    f.staking,
    f.admin.address,
    DAY,
    genesis,
    epochDuration,
    f.committee.map((w) => w.address),
    1,
    DEFAULT_YIELD_PARAMS,
  ]);
  await f.staking.connect(f.admin).setRewardsManager(await rewards.getAddress());
  await f.token.connect(f.treasury).transfer(await rewards.getAddress(), funding);
  return { ...f, rewards, genesis, epochDuration };
}

const stakeSpec = fc.record({
  stakeType: fc.constantFrom(StakeType.Host, StakeType.Gateway, StakeType.Stargate),
  // The amount as a multiple of the type's minimum, in thousandths (1x .. 40x), plus odd wei.
  permille: fc.integer({ min: 1000, max: 40_000 }),
  wei: fc.bigInt({ min: 0n, max: 10n ** 18n }),
  before: fc.option(fc.integer({ min: 1, max: 5000 }), { nil: undefined }), // increase before the epoch (permille)
  during: fc.option(fc.record({ increase: fc.boolean(), permille: fc.integer({ min: 1, max: 900 }) }), {
    nil: undefined,
  }),
  score: fc.oneof(fc.constantFrom(0, 1, 10_000, 19_999, 20_000), fc.integer({ min: 0, max: 20_000 })),
});

/** Sends a transaction: "ok", or the name of the custom error it reverted with. */
async function attemptTx(f: RewardsFixture, run: () => Promise<{ wait(): Promise<unknown> }>): Promise<string> {
  try {
    await (await run()).wait();
    return "ok";
  } catch (error) {
    const data = (error as { data?: string }).data;
    const parsed =
      data &&
      (f.rewards.interface.parseError(data) ??
        f.staking.interface.parseError(data) ??
        f.token.interface.parseError(data));
    if (!parsed) throw error;
    return parsed.name;
  }
}

/**
 * What the model expects each stake to earn from a batch of `entries` for `epoch` (hour-long epochs), given the
 * epochs each stake has accrued so far (`scored`).
 */
async function expectedAccruals(
  f: RewardsFixture,
  epoch: bigint,
  entries: ScoreEntry[],
  scored: Map<bigint, Set<bigint>>,
): Promise<Map<bigint, bigint>> {
  const [start, end] = await f.rewards.epochWindow(epoch);
  const expectedDelta = new Map<bigint, bigint>();
  const fresh = new Set<string>();
  for (const e of entries) {
    const seen = scored.get(e.stakeId) ?? new Set<bigint>();
    const key = `${e.stakeId}`;
    // No entry is ever too old for its stake's window: expired epochs revert as a whole (L-4).
    if (e.score > 20_000n || seen.has(epoch) || fresh.has(key)) continue;
    const inputs = await f.staking.yieldInputs(e.stakeId, start, end);
    fresh.add(key); // the first entry of a stake marks the epoch, eligible or not below
    if (!inputs.eligible) {
      fresh.delete(key);
      continue;
    }
    const reward = epochReward({
      stakeType: Number(inputs.stakeType),
      effectiveStake: inputs.effectiveStake,
      activeSince: inputs.activeSince,
      epochEnd: end,
      epochDuration: 3600n,
      score: e.score,
    });
    expectedDelta.set(e.stakeId, (expectedDelta.get(e.stakeId) ?? 0n) + reward);
  }
  return expectedDelta;
}

/** After each step: solvency and conservation. */
async function expectSolventAndConserved(f: RewardsFixture, step: number, holders: string[]): Promise<void> {
  // Solvency: the pool holds every accrued, unclaimed reward; reserved is exactly their sum.
  let sum = 0n;
  for (let id = 1n; id <= BigInt(await f.staking.stakeCount()); id++) sum += await f.rewards.accrued(id);
  const reserved = await f.rewards.reserved();
  expect(reserved, `step ${step}: reserved`).to.equal(sum);
  expect(await f.token.balanceOf(await f.rewards.getAddress())).to.be.at.least(reserved);
  // Conservation: every token is somewhere.
  let total = 0n;
  for (const holder of holders) total += await f.token.balanceOf(holder);
  expect(total, `step ${step}: supply`).to.equal(TOKEN_SUPPLY);
}

describe("RewardsManager properties", function () {
  it("accrues exactly what the TypeScript formula computes, bit for bit", async function () {
    this.timeout(600_000);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(1n, 3600n, DAY, 7n * DAY, 30n * DAY), fc.bigInt({ min: 1n, max: 30n * DAY })),
        fc.integer({ min: 0, max: 420 }), // days between genesis and the scored epoch: tenure 0 .. 14 months
        fc.array(stakeSpec, { minLength: 1, maxLength: 5 }),
        async (duration, days, specs) => {
          const f = await withRewards(await loadFixture(baseFixture), duration, 10n ** 26n);
          // Genesis is 1000 s ahead: stakes, and increases made now, come before epoch 0 starts.
          const stakes = [];
          for (const spec of specs) {
            const amount = (MINIMUM[spec.stakeType] * BigInt(spec.permille)) / 1000n + spec.wei;
            await f.staking.connect(f.alice).stake(spec.stakeType, amount);
            const s = { ...spec, id: await f.staking.stakeCount(), atStart: amount, now: amount };
            if (spec.before !== undefined) {
              const add = (amount * BigInt(spec.before)) / 1000n + 1n;
              await f.staking.connect(f.alice).increase(s.id, add);
              s.atStart += add;
              s.now = s.atStart;
            }
            stakes.push(s);
          }
          expect(await latestTimestamp()).to.be.lessThan(f.genesis);
          const epoch = (BigInt(days) * DAY) / duration;
          const [start, end] = await f.rewards.epochWindow(epoch);
          // Changes during the epoch count by min(at start, now), when the epoch is long enough to hold them.
          const during = stakes.filter((s) => s.during !== undefined);
          if (end - start > BigInt(during.length) + 2n) {
            await time.increaseTo(start + 1n);
            for (const s of during) {
              const delta = (s.now * BigInt(s.during!.permille)) / 1000n + 1n;
              if (s.during!.increase) await f.staking.connect(f.alice).increase(s.id, delta);
              else await f.staking.connect(f.slasher).slash(s.id, delta, "property");
              s.now = s.during!.increase ? s.now + delta : s.now - delta;
            }
          }
          await time.increaseTo(end > (await latestTimestamp()) ? end : (await latestTimestamp()) + 1n);
          await postBatch(
            f,
            epoch,
            stakes.map((s) => ({ stakeId: s.id, score: BigInt(s.score) })),
          );
          for (const s of stakes) {
            // Created before genesis, so active through every epoch from 0 on.
            const want = epochReward({
              stakeType: s.stakeType,
              effectiveStake: s.atStart < s.now ? s.atStart : s.now,
              activeSince: (await f.staking.getStake(s.id)).activeSince,
              epochEnd: end,
              epochDuration: duration,
              score: BigInt(s.score),
            });
            expect(await f.rewards.accrued(s.id), `stake ${s.id}`).to.equal(want);
          }
        },
      ),
      { seed: FC_SEED, numRuns: fcRuns(30), endOnFailure: true },
    );
  });

  describe("invariants over random operation sequences", function () {
    type Op =
      | { kind: "stake"; owner: number; stakeType: StakeType; permille: number }
      | { kind: "post"; back: number; picks: number[]; scores: number[] }
      | { kind: "claim"; ref: number }
      | { kind: "compound"; ref: number }
      | { kind: "slash"; ref: number; percent: number }
      | { kind: "unstake"; ref: number }
      | { kind: "release"; ref: number }
      | { kind: "fund"; amount: number }
      | { kind: "wait"; seconds: number };

    const ref = fc.nat({ max: 50 });
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      {
        arbitrary: fc.record({
          kind: fc.constant("stake" as const),
          owner: fc.integer({ min: 0, max: 2 }),
          stakeType: fc.constantFrom(StakeType.Host, StakeType.Gateway, StakeType.Stargate),
          permille: fc.integer({ min: 1000, max: 20_000 }),
        }),
        weight: 3,
      },
      {
        arbitrary: fc.record({
          kind: fc.constant("post" as const),
          // Near and past the 128 postable epochs too (L-4).
          back: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 140 }), fc.integer({ min: 124, max: 132 })),
          picks: fc.array(fc.nat({ max: 50 }), { minLength: 1, maxLength: 8 }),
          scores: fc.array(fc.oneof(fc.integer({ min: 0, max: 20_000 }), fc.constant(20_001)), {
            minLength: 8,
            maxLength: 8,
          }),
        }),
        weight: 5,
      },
      { arbitrary: fc.record({ kind: fc.constant("claim" as const), ref }), weight: 2 },
      { arbitrary: fc.record({ kind: fc.constant("compound" as const), ref }), weight: 2 },
      {
        arbitrary: fc.record({ kind: fc.constant("slash" as const), ref, percent: fc.integer({ min: 1, max: 100 }) }),
        weight: 1,
      },
      { arbitrary: fc.record({ kind: fc.constant("unstake" as const), ref }), weight: 1 },
      { arbitrary: fc.record({ kind: fc.constant("release" as const), ref }), weight: 1 },
      {
        arbitrary: fc.record({ kind: fc.constant("fund" as const), amount: fc.integer({ min: 1, max: 1000 }) }),
        weight: 1,
      },
      {
        arbitrary: fc.record({ kind: fc.constant("wait" as const), seconds: fc.integer({ min: 1, max: 6 * 86400 }) }),
        weight: 3,
      },
    );

    it("solvency, conservation and at most one accrual per (epoch, stake)", async function () {
      this.timeout(600_000);
      const outcomes = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 40, size: "medium" }), async (ops) => {
          // Hour-long epochs and a small pool, so waits cross many epochs and the pool can run short.
          const base = await loadFixture(baseFixture);
          const f = await withRewards(base, 3600n, ethers.parseEther("50"));
          const owners = [f.alice, f.bob, f.carol];
          const signers = await ethers.getSigners();
          const holders = [
            ...signers.map((s) => s.address),
            await f.staking.getAddress(),
            await base.rewards.getAddress(), // the fixture's own pool
            await f.rewards.getAddress(),
          ];
          const scored = new Map<bigint, Set<bigint>>(); // stake -> epochs accrued
          const batches = new Map<bigint, bigint>(); // epoch -> next batch index
          const count = async () => Number(await f.staking.stakeCount());
          const idOf = async (r: number) => BigInt((r % Math.max(await count(), 1)) + 1);
          const ownerOf = async (id: bigint) => {
            const owner = await f.staking.stakeOwner(id);
            return owners.find((o) => o.address === owner)!;
          };
          const attempt = (run: () => Promise<{ wait(): Promise<unknown> }>) => attemptTx(f, run);

          for (const [step, op] of ops.entries()) {
            let outcome = "ok";
            if (op.kind === "stake") {
              const amount = (MINIMUM[op.stakeType] * BigInt(op.permille)) / 1000n;
              outcome = await attempt(() => f.staking.connect(owners[op.owner]).stake(op.stakeType, amount));
            } else if (op.kind === "post") {
              const current = await f.rewards.currentEpoch();
              if (current === 0n || (await count()) === 0) continue;
              const epoch = current - 1n - BigInt(Math.min(op.back, Number(current - 1n)));
              const entries: ScoreEntry[] = [];
              for (const [i, pick] of op.picks.entries())
                entries.push({ stakeId: await idOf(pick), score: BigInt(op.scores[i]) });
              const expectedDelta = await expectedAccruals(f, epoch, entries, scored);
              const before = new Map<bigint, bigint>();
              for (const e of entries) before.set(e.stakeId, await f.rewards.accrued(e.stakeId));
              const batchIndex = batches.get(epoch) ?? 0n;
              outcome = await attempt(() => postBatch(f, epoch, entries, { batchIndex }));
              // L-4: only the 128 epochs before the current one can be posted, in any order.
              const expired = epoch + 128n < (await f.rewards.currentEpoch());
              if (expired) expect(outcome, `step ${step}: epoch ${epoch} expired`).to.equal("EpochExpired");
              else expect(outcome, `step ${step}`).to.not.equal("EpochExpired");
              for (const [id, was] of before) {
                const delta = (await f.rewards.accrued(id)) - was;
                expect(delta, `step ${step}: stake ${id} accrued`).to.equal(
                  outcome === "ok" ? (expectedDelta.get(id) ?? 0n) : 0n,
                );
              }
              if (outcome === "ok") {
                batches.set(epoch, batchIndex + 1n);
                for (const id of expectedDelta.keys()) {
                  if (!scored.has(id)) scored.set(id, new Set());
                  scored.get(id)!.add(epoch);
                }
              }
            } else if (
              op.kind === "claim" ||
              op.kind === "compound" ||
              op.kind === "unstake" ||
              op.kind === "release"
            ) {
              if ((await count()) === 0) continue;
              const id = await idOf(op.ref);
              const owner = await ownerOf(id);
              outcome = await attempt(() =>
                op.kind === "claim"
                  ? f.rewards.connect(owner).claim(id, owner.address)
                  : op.kind === "compound"
                    ? f.rewards.connect(owner).compound(id)
                    : op.kind === "unstake"
                      ? f.staking.connect(owner).requestUnstake(id)
                      : f.staking.connect(owner).expressRelease(id),
              );
            } else if (op.kind === "slash") {
              if ((await count()) === 0) continue;
              const id = await idOf(op.ref);
              const amount = ((await f.staking.getStake(id)).amount * BigInt(op.percent)) / 100n;
              outcome = await attempt(() => f.staking.connect(f.slasher).slash(id, amount, "invariant"));
            } else if (op.kind === "fund") {
              await f.token
                .connect(f.treasury)
                .approve(await f.rewards.getAddress(), ethers.parseEther(String(op.amount)));
              outcome = await attempt(() => f.rewards.connect(f.treasury).fund(ethers.parseEther(String(op.amount))));
            } else {
              await network.provider.send("evm_increaseTime", [op.seconds]);
              await network.provider.send("evm_mine");
            }
            outcomes.set(`${op.kind}:${outcome}`, (outcomes.get(`${op.kind}:${outcome}`) ?? 0) + 1);

            await expectSolventAndConserved(f, step, holders);
          }
        }),
        { seed: FC_SEED, numRuns: fcRuns(12), endOnFailure: true },
      );
      for (const kind of ["post", "claim", "compound"]) {
        expect(outcomes.get(`${kind}:ok`) ?? 0, `no successful ${kind}`).to.be.greaterThan(0);
      }
      expect(outcomes.get("post:PoolInsufficient") ?? 0, "the pool never ran short").to.be.greaterThan(0);
      if (process.env.FC_VERBOSE) console.log(Object.fromEntries([...outcomes].sort()));
      expect(outcomes.get("post:EpochExpired") ?? 0, "no epoch expired").to.be.greaterThan(0);
    });
  });
});
