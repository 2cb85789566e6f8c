import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";

import {
  type RewardsFixture,
  POOL_FUNDING,
  committeeWallets,
  deployRewards,
  deployRewardsFixture,
  latestTimestamp,
  postBatch,
  signBatch,
} from "../../shared/fixtures";
import { DAY, DEFAULTS, MINIMUM, StakeType } from "../../shared/constants";
import { DEFAULT_YIELD_PARAMS, epochReward } from "../../../offchain/common/yield";
import { packEntries } from "../../../offchain/common/scoreBatch";

const ONE = ethers.parseEther("1");
const HOST = ethers.parseEther("10000");

enum Skip {
  ScoreAboveMaximum = 0,
  NotActiveThroughEpoch = 1,
  AlreadyScored = 2,
  EpochTooOld = 3,
}

/** Alice's host stake 1 and bob's gateway stake 2, created before genesis; now in epoch 1. */
async function scoredFixture() {
  const f = await deployRewardsFixture();
  const stakingAddress = await f.staking.getAddress();
  for (const account of [f.alice, f.bob, f.carol])
    await f.token.connect(account).approve(stakingAddress, ethers.MaxUint256);
  await f.staking.connect(f.alice).stake(StakeType.Host, HOST);
  await f.staking.connect(f.bob).stake(StakeType.Gateway, MINIMUM[StakeType.Gateway]);
  // Epoch 1 starts a day after genesis; both stakes are active through it once it ends.
  await time.increaseTo(f.genesis + DAY + 10n);
  return f;
}

async function window(f: RewardsFixture, epoch: bigint) {
  const [start, end] = await f.rewards.epochWindow(epoch);
  return { start, end };
}

/** The formula's reward for a stake, from the stake's own data and the epoch's window. */
async function expected(f: RewardsFixture, stakeId: bigint, epoch: bigint, score: bigint, effective?: bigint) {
  const stake = await f.staking.getStake(stakeId);
  const { end } = await window(f, epoch);
  return epochReward({
    stakeType: Number(stake.stakeType),
    effectiveStake: effective ?? stake.amount,
    activeSince: stake.activeSince,
    epochEnd: end,
    epochDuration: f.epochDuration,
    score,
  });
}

describe("RewardsManager", function () {
  describe("deployment", function () {
    it("exposes its epochs, committee, parameters and token", async function () {
      const f = await loadFixture(deployRewardsFixture);
      expect(await f.rewards.stakeManager()).to.equal(await f.staking.getAddress());
      expect(await f.rewards.token()).to.equal(await f.token.getAddress());
      expect(await f.rewards.genesis()).to.equal(f.genesis);
      expect(await f.rewards.epochDuration()).to.equal(DAY);
      const [members, threshold, version] = await f.rewards.committee();
      expect(members).to.deep.equal(f.committee.map((w) => w.address));
      expect(threshold).to.equal(1n);
      expect(version).to.equal(1n);
      const params = await f.rewards.yieldParams();
      expect(params.hostBaseAprBps).to.equal(1000n);
      expect(params.gatewayBaseAprBps).to.equal(1500n);
      expect(params.stargateBaseAprBps).to.equal(2000n);
      expect(params.tenureStepBps).to.equal(50n);
      expect(params.maxTenureBonusBps).to.equal(500n);
      expect(await f.rewards.available()).to.equal(POOL_FUNDING);
      expect(await f.rewards.reserved()).to.equal(0n);
      expect(await f.token.allowance(await f.rewards.getAddress(), await f.staking.getAddress())).to.equal(
        ethers.MaxUint256,
      );
    });

    it("rejects invalid construction arguments", async function () {
      const f = await loadFixture(deployRewardsFixture);
      const factory = await ethers.getContractFactory("RewardsManager");
      const members = f.committee.map((w) => w.address);
      const deploy = (
        over: Partial<{
          sm: string;
          duration: bigint;
          members: string[];
          threshold: number;
          params: typeof DEFAULT_YIELD_PARAMS;
        }>,
      ) =>
        factory.deploy(
          over.sm ?? f.staking,
          f.admin.address,
          DAY,
          f.genesis,
          over.duration ?? DAY,
          over.members ?? members,
          over.threshold ?? 1,
          over.params ?? DEFAULT_YIELD_PARAMS,
        );
      await expect(deploy({ sm: ethers.ZeroAddress })).to.be.revertedWithCustomError(factory, "ZeroAddress");
      await expect(deploy({ duration: 0n }))
        .to.be.revertedWithCustomError(factory, "EpochDurationOutOfBounds")
        .withArgs(0n);
      await expect(deploy({ duration: 30n * DAY + 1n }))
        .to.be.revertedWithCustomError(factory, "EpochDurationOutOfBounds")
        .withArgs(30n * DAY + 1n);
      await expect(deploy({ members: [] }))
        .to.be.revertedWithCustomError(factory, "CommitteeInvalid")
        .withArgs(0n, 1n);
      await expect(deploy({ threshold: 0 }))
        .to.be.revertedWithCustomError(factory, "CommitteeInvalid")
        .withArgs(3n, 0n);
      await expect(deploy({ threshold: 4 }))
        .to.be.revertedWithCustomError(factory, "CommitteeInvalid")
        .withArgs(3n, 4n);
      const many = Array.from({ length: 33 }, (_, i) => ethers.zeroPadValue(ethers.toBeHex(i + 1), 20));
      await expect(deploy({ members: many }))
        .to.be.revertedWithCustomError(factory, "CommitteeInvalid")
        .withArgs(33n, 1n);
      await expect(deploy({ members: [members[0], ethers.ZeroAddress] }))
        .to.be.revertedWithCustomError(factory, "CommitteeMemberInvalid")
        .withArgs(ethers.ZeroAddress);
      await expect(deploy({ members: [members[0], members[1], members[0]] }))
        .to.be.revertedWithCustomError(factory, "CommitteeMemberInvalid")
        .withArgs(members[0]);
      await expect(
        deploy({ params: { ...DEFAULT_YIELD_PARAMS, stargateBaseAprBps: 5001n } }),
      ).to.be.revertedWithCustomError(factory, "YieldParamsOutOfBounds");
    });
  });

  describe("epochs", function () {
    it("counts epochs from genesis and reports their windows", async function () {
      const f = await loadFixture(deployRewardsFixture);
      expect(await f.rewards.currentEpoch()).to.equal(0n);
      expect(await f.rewards.epochWindow(0n)).to.deep.equal([f.genesis, f.genesis + DAY]);
      expect(await f.rewards.epochWindow(7n)).to.deep.equal([f.genesis + 7n * DAY, f.genesis + 8n * DAY]);
      await time.increaseTo(f.genesis + 3n * DAY);
      expect(await f.rewards.currentEpoch()).to.equal(3n);
    });

    it("is at epoch 0 (not yet closed) before a future genesis", async function () {
      const f = await loadFixture(deployRewardsFixture);
      const genesis = (await latestTimestamp()) + 1000n;
      const later = await ethers.deployContract("RewardsManager", [
        f.staking,
        f.admin.address,
        DAY,
        genesis,
        3600n,
        f.committee.map((w) => w.address),
        1,
        DEFAULT_YIELD_PARAMS,
      ]);
      expect(await later.currentEpoch()).to.equal(0n);
      const { packed, signatures } = await signBatch(later, f.committee.slice(0, 1), 0n, 0n, [
        { stakeId: 1n, score: 1n },
      ]);
      await expect(later.postScores(0n, 0n, packed, signatures))
        .to.be.revertedWithCustomError(later, "EpochNotClosed")
        .withArgs(0n, 0n);
    });
  });

  describe("#postScores", function () {
    it("accrues each entry's yield by the formula and reserves it", async function () {
      const f = await loadFixture(scoredFixture);
      const hostReward = await expected(f, 1n, 0n, 12_345n);
      const gatewayReward = await expected(f, 2n, 0n, 10_000n);
      expect(hostReward).to.be.greaterThan(0n);
      const tx = postBatch(
        f,
        0n,
        [
          { stakeId: 1n, score: 12_345n },
          { stakeId: 2n, score: 10_000n },
        ],
        { from: f.carol },
      );
      const packed = packEntries([
        { stakeId: 1n, score: 12_345n },
        { stakeId: 2n, score: 10_000n },
      ]);
      await expect(tx)
        .to.emit(f.rewards, "ScoresPosted")
        .withArgs(0n, 0n, ethers.keccak256(packed), 2n, hostReward + gatewayReward, f.carol.address);
      expect(await f.rewards.accrued(1n)).to.equal(hostReward);
      expect(await f.rewards.accrued(2n)).to.equal(gatewayReward);
      expect(await f.rewards.reserved()).to.equal(hostReward + gatewayReward);
      expect(await f.rewards.available()).to.equal(POOL_FUNDING - hostReward - gatewayReward);
      expect(await f.rewards.lastScoredEpoch(1n)).to.deep.equal([true, 0n]);
      expect(await f.rewards.lastScoredEpoch(3n)).to.deep.equal([false, 0n]);
      expect(await f.rewards.isScored(1n, 0n)).to.equal(true);
      expect(await f.rewards.isScored(1n, 1n)).to.equal(false);
      expect(await f.rewards.isBatchPosted(0n, 0n)).to.equal(true);
      expect(await f.rewards.isBatchPosted(0n, 1n)).to.equal(false);
    });

    it("matches a hand computation: 10,000 EDGE host at the average score for one day", async function () {
      const f = await loadFixture(scoredFixture);
      await postBatch(f, 0n, [{ stakeId: 1n, score: 10_000n }]);
      // 10% APR, no tenure yet: 10000e18 * 1000 * 10000 * 86400 / (1e8 * 31536000), floored.
      expect(await f.rewards.accrued(1n)).to.equal((HOST * 1000n * 10_000n * 86_400n) / (10n ** 8n * 31_536_000n));
    });

    it("skips bad entries with an event and accrues the rest", async function () {
      const f = await loadFixture(scoredFixture);
      await f.staking.connect(f.carol).stake(StakeType.Host, HOST); // stake 3: created in epoch 1
      const tx = postBatch(f, 0n, [
        { stakeId: 1n, score: 20_001n },
        { stakeId: 3n, score: 10_000n },
        { stakeId: 99n, score: 10_000n },
        { stakeId: 2n, score: 20_000n },
        { stakeId: 2n, score: 20_000n },
      ]);
      await expect(tx).to.emit(f.rewards, "EntrySkipped").withArgs(0n, 1n, 20_001n, Skip.ScoreAboveMaximum);
      await expect(tx).to.emit(f.rewards, "EntrySkipped").withArgs(0n, 3n, 10_000n, Skip.NotActiveThroughEpoch);
      await expect(tx).to.emit(f.rewards, "EntrySkipped").withArgs(0n, 99n, 10_000n, Skip.NotActiveThroughEpoch);
      await expect(tx).to.emit(f.rewards, "EntrySkipped").withArgs(0n, 2n, 20_000n, Skip.AlreadyScored);
      await expect(tx).to.emit(f.rewards, "ScoresPosted").withArgs(0n, 0n, anyValue, 1n, anyValue, anyValue);
      expect(await f.rewards.accrued(1n)).to.equal(0n);
      expect(await f.rewards.accrued(2n)).to.equal(await expected(f, 2n, 0n, 20_000n));
    });

    it("accrues each (epoch, stake) once across batches, in any epoch order", async function () {
      const f = await loadFixture(scoredFixture);
      await time.increaseTo(f.genesis + 3n * DAY);
      await postBatch(f, 2n, [{ stakeId: 1n, score: 10_000n }]);
      const afterTwo = await f.rewards.accrued(1n);
      await expect(postBatch(f, 2n, [{ stakeId: 1n, score: 10_000n }], { batchIndex: 1n }))
        .to.emit(f.rewards, "EntrySkipped")
        .withArgs(2n, 1n, 10_000n, Skip.AlreadyScored);
      expect(await f.rewards.accrued(1n)).to.equal(afterTwo);
      // An earlier epoch posted later still accrues, once.
      await postBatch(f, 0n, [{ stakeId: 1n, score: 10_000n }]);
      await postBatch(f, 1n, [{ stakeId: 1n, score: 10_000n }]);
      expect(await f.rewards.accrued(1n)).to.equal(
        afterTwo + (await expected(f, 1n, 0n, 10_000n)) + (await expected(f, 1n, 1n, 10_000n)),
      );
      expect(await f.rewards.lastScoredEpoch(1n)).to.deep.equal([true, 2n]);
      for (const epoch of [0n, 1n, 2n]) expect(await f.rewards.isScored(1n, epoch)).to.equal(true);
      await expect(postBatch(f, 1n, [{ stakeId: 1n, score: 1n }], { batchIndex: 5n }))
        .to.emit(f.rewards, "EntrySkipped")
        .withArgs(1n, 1n, 1n, Skip.AlreadyScored);
    });

    it("refuses epochs more than 128 behind the stake's latest", async function () {
      const f = await loadFixture(deployRewards.bind(null, { threshold: 1, epochDuration: 60n }));
      await f.token.connect(f.alice).approve(await f.staking.getAddress(), HOST);
      await f.staking.connect(f.alice).stake(StakeType.Host, HOST);
      const created = await latestTimestamp();
      const first = created < f.genesis ? 0n : (created - f.genesis) / 60n + 1n; // first epoch fully active
      await time.increaseTo(f.genesis + (first + 131n) * 60n);
      await postBatch(f, first + 129n, [{ stakeId: 1n, score: 10_000n }]);
      await expect(postBatch(f, first, [{ stakeId: 1n, score: 10_000n }]))
        .to.emit(f.rewards, "EntrySkipped")
        .withArgs(first, 1n, 10_000n, Skip.EpochTooOld);
      expect(await f.rewards.isScored(1n, first)).to.equal(false);
      // The window holds the 128 epochs up to the latest: first + 2 .. first + 129.
      await expect(postBatch(f, first + 1n, [{ stakeId: 1n, score: 10_000n }]))
        .to.emit(f.rewards, "EntrySkipped")
        .withArgs(first + 1n, 1n, 10_000n, Skip.EpochTooOld);
      await expect(postBatch(f, first + 2n, [{ stakeId: 1n, score: 10_000n }])).to.not.emit(f.rewards, "EntrySkipped");
      expect(await f.rewards.isScored(1n, first + 2n)).to.equal(true);
      // A jump of 128 or more epochs starts a fresh window.
      await time.increaseTo(f.genesis + (first + 400n) * 60n);
      await postBatch(f, first + 390n, [{ stakeId: 1n, score: 10_000n }]);
      expect(await f.rewards.isScored(1n, first + 390n)).to.equal(true);
      expect(await f.rewards.isScored(1n, first + 129n)).to.equal(false);
    });

    it("uses min(amount at the epoch's start, amount now)", async function () {
      const f = await loadFixture(scoredFixture);
      // During epoch 1 alice adds 5,000 (counts from epoch 2) and bob is slashed 1,000 (counts at once).
      await f.staking.connect(f.alice).increase(1n, 5_000n * ONE);
      await f.staking.connect(f.slasher).slash(2n, 1_000n * ONE, "test");
      await time.increaseTo(f.genesis + 2n * DAY);
      await postBatch(f, 1n, [
        { stakeId: 1n, score: 10_000n },
        { stakeId: 2n, score: 10_000n },
      ]);
      expect(await f.rewards.accrued(1n)).to.equal(await expected(f, 1n, 1n, 10_000n, HOST));
      expect(await f.rewards.accrued(2n)).to.equal(
        await expected(f, 2n, 1n, 10_000n, MINIMUM[StakeType.Gateway] - 1_000n * ONE),
      );
      await time.increaseTo(f.genesis + 3n * DAY);
      const before = await f.rewards.accrued(1n);
      await postBatch(f, 2n, [{ stakeId: 1n, score: 10_000n }]);
      expect((await f.rewards.accrued(1n)) - before).to.equal(await expected(f, 1n, 2n, 10_000n, HOST + 5_000n * ONE));
    });

    it("adds the tenure bonus per 30 days of activity, up to its cap", async function () {
      const f = await loadFixture(scoredFixture);
      const epoch = 65n;
      await time.increaseTo(f.genesis + (epoch + 1n) * DAY);
      await postBatch(f, epoch, [{ stakeId: 1n, score: 10_000n }]);
      const { end } = await window(f, epoch);
      const activeSince = (await f.staking.getStake(1n)).activeSince;
      const months = (end - activeSince) / (30n * DAY);
      expect(months).to.equal(2n);
      expect(await f.rewards.accrued(1n)).to.equal((HOST * (1000n + 100n) * 10_000n * DAY) / (10n ** 8n * 365n * DAY));
      expect(await f.rewards.aprBps(StakeType.Host, 65n * DAY, 10_000n)).to.equal(1100n);
      expect(await f.rewards.aprBps(StakeType.Stargate, 3000n * DAY, 15_000n)).to.equal(
        ((2000n + 500n) * 15_000n) / 10_000n,
      );
      expect(await f.rewards.aprBps(StakeType.Gateway, 0n, 0n)).to.equal(0n);
    });

    it("pays the last epoch of a stake whose unstake came after it, and none after", async function () {
      const f = await loadFixture(scoredFixture);
      const reward = await expected(f, 1n, 0n, 10_000n);
      await f.staking.connect(f.alice).requestUnstake(1n); // during epoch 1
      await time.increaseTo(f.genesis + 2n * DAY);
      await postBatch(f, 0n, [{ stakeId: 1n, score: 10_000n }]);
      expect(await f.rewards.accrued(1n)).to.equal(reward);
      await expect(postBatch(f, 1n, [{ stakeId: 1n, score: 10_000n }]))
        .to.emit(f.rewards, "EntrySkipped")
        .withArgs(1n, 1n, 10_000n, Skip.NotActiveThroughEpoch);
    });

    it("restarts tenure on cancel: the epoch of the cancel is not active throughout", async function () {
      const f = await loadFixture(scoredFixture);
      await f.staking.connect(f.alice).requestUnstake(1n);
      await f.staking.connect(f.alice).cancelUnstake(1n);
      await time.increaseTo(f.genesis + 3n * DAY);
      await expect(postBatch(f, 1n, [{ stakeId: 1n, score: 10_000n }]))
        .to.emit(f.rewards, "EntrySkipped")
        .withArgs(1n, 1n, 10_000n, Skip.NotActiveThroughEpoch);
      await expect(postBatch(f, 2n, [{ stakeId: 1n, score: 10_000n }])).to.not.emit(f.rewards, "EntrySkipped");
    });

    it("reverts a batch the pool cannot cover, changing nothing", async function () {
      const f = await loadFixture(deployRewardsFixture);
      const empty = await ethers.deployContract("RewardsManager", [
        f.staking,
        f.admin.address,
        DAY,
        f.genesis,
        DAY,
        f.committee.map((w) => w.address),
        1,
        DEFAULT_YIELD_PARAMS,
      ]);
      await f.token.connect(f.alice).approve(await f.staking.getAddress(), HOST);
      await f.staking.connect(f.alice).stake(StakeType.Host, HOST);
      await time.increaseTo(f.genesis + 2n * DAY);
      await f.token.connect(f.treasury).transfer(await empty.getAddress(), 1n);
      const need = await expected({ ...f, rewards: empty }, 1n, 1n, 10_000n);
      const { packed, signatures } = await signBatch(empty, f.committee.slice(0, 1), 1n, 0n, [
        { stakeId: 1n, score: 10_000n },
      ]);
      await expect(empty.postScores(1n, 0n, packed, signatures))
        .to.be.revertedWithCustomError(empty, "PoolInsufficient")
        .withArgs(need, 1n);
      expect(await empty.isBatchPosted(1n, 0n)).to.equal(false);
      expect(await empty.accrued(1n)).to.equal(0n);
    });

    it("reverts for an open epoch, a posted batch, malformed entries and while paused", async function () {
      const f = await loadFixture(scoredFixture);
      await expect(postBatch(f, 1n, [{ stakeId: 1n, score: 1n }]))
        .to.be.revertedWithCustomError(f.rewards, "EpochNotClosed")
        .withArgs(1n, 1n);
      await expect(postBatch(f, 9n, [{ stakeId: 1n, score: 1n }]))
        .to.be.revertedWithCustomError(f.rewards, "EpochNotClosed")
        .withArgs(9n, 1n);
      await postBatch(f, 0n, [{ stakeId: 1n, score: 1n }], { batchIndex: 300n });
      await expect(postBatch(f, 0n, [{ stakeId: 2n, score: 1n }], { batchIndex: 300n }))
        .to.be.revertedWithCustomError(f.rewards, "BatchAlreadyPosted")
        .withArgs(0n, 300n);
      const sig = (await signBatch(f.rewards, f.committee.slice(0, 1), 0n, 1n, [])).signatures;
      await expect(f.rewards.postScores(0n, 1n, "0x", sig))
        .to.be.revertedWithCustomError(f.rewards, "EntriesMalformed")
        .withArgs(0n);
      await expect(f.rewards.postScores(0n, 1n, "0x" + "00".repeat(11), sig))
        .to.be.revertedWithCustomError(f.rewards, "EntriesMalformed")
        .withArgs(11n);
      await f.rewards.connect(f.pauser).pause();
      await expect(postBatch(f, 0n, [{ stakeId: 2n, score: 1n }], { batchIndex: 2n })).to.be.revertedWithCustomError(
        f.rewards,
        "EnforcedPause",
      );
    });

    describe("signatures", function () {
      async function thresholdTwo() {
        const f = await deployRewards({ threshold: 2, epochDuration: DAY });
        await f.token.connect(f.alice).approve(await f.staking.getAddress(), HOST);
        await f.staking.connect(f.alice).stake(StakeType.Host, HOST);
        await time.increaseTo(f.genesis + 2n * DAY);
        return f;
      }
      const entries = [{ stakeId: 1n, score: 10_000n }];

      it("accepts threshold signatures in any order, and more than the threshold", async function () {
        const f = await loadFixture(thresholdTwo);
        const [a, b, c] = f.committee;
        await expect(postBatch(f, 1n, entries, { signers: [b, a] })).to.emit(f.rewards, "ScoresPosted");
        await expect(postBatch(f, 1n, entries, { batchIndex: 1n, signers: [c, a, b] })).to.emit(
          f.rewards,
          "ScoresPosted",
        );
      });

      it("rejects threshold - 1 signatures", async function () {
        const f = await loadFixture(thresholdTwo);
        await expect(postBatch(f, 1n, entries, { signers: [f.committee[0]] }))
          .to.be.revertedWithCustomError(f.rewards, "NotEnoughSignatures")
          .withArgs(1n, 2n);
      });

      it("rejects a duplicated signer", async function () {
        const f = await loadFixture(thresholdTwo);
        const a = f.committee[0];
        await expect(postBatch(f, 1n, entries, { signers: [a, a] }))
          .to.be.revertedWithCustomError(f.rewards, "DuplicateSigner")
          .withArgs(a.address);
      });

      it("rejects a non-member and a malformed signature", async function () {
        const f = await loadFixture(thresholdTwo);
        const outsider = committeeWallets()[3];
        await expect(postBatch(f, 1n, entries, { signers: [f.committee[0], outsider] }))
          .to.be.revertedWithCustomError(f.rewards, "SignerNotInCommittee")
          .withArgs(outsider.address);
        const { packed, signatures } = await signBatch(f.rewards, f.committee.slice(0, 2), 1n, 0n, entries);
        await expect(f.rewards.postScores(1n, 0n, packed, [signatures[0], "0x1234"]))
          .to.be.revertedWithCustomError(f.rewards, "SignerNotInCommittee")
          .withArgs(ethers.ZeroAddress);
      });

      it("rejects signatures for another chain, contract, epoch, batch or entries", async function () {
        const f = await loadFixture(thresholdTwo);
        const signers = f.committee.slice(0, 2);
        for (const domain of [{ chainId: 1n }, { verifyingContract: await f.staking.getAddress() }]) {
          const { packed, signatures } = await signBatch(f.rewards, signers, 1n, 0n, entries, { domain });
          await expect(f.rewards.postScores(1n, 0n, packed, signatures))
            .to.be.revertedWithCustomError(f.rewards, "SignerNotInCommittee")
            .withArgs(anyValue);
        }
        const { packed, signatures } = await signBatch(f.rewards, signers, 1n, 0n, entries);
        await expect(f.rewards.postScores(0n, 0n, packed, signatures)).to.be.revertedWithCustomError(
          f.rewards,
          "SignerNotInCommittee",
        );
        await expect(f.rewards.postScores(1n, 1n, packed, signatures)).to.be.revertedWithCustomError(
          f.rewards,
          "SignerNotInCommittee",
        );
        const other = packEntries([{ stakeId: 1n, score: 20_000n }]);
        await expect(f.rewards.postScores(1n, 0n, other, signatures)).to.be.revertedWithCustomError(
          f.rewards,
          "SignerNotInCommittee",
        );
      });

      it("rejects signatures made for an earlier committee", async function () {
        const f = await loadFixture(thresholdTwo);
        const [a, b, c] = f.committee;
        const old = await signBatch(f.rewards, [a, b], 1n, 0n, entries);
        await expect(f.rewards.connect(f.parameterAdmin).setCommittee([a.address, c.address], 2))
          .to.emit(f.rewards, "CommitteeSet")
          .withArgs(2n, [a.address, c.address], 2n);
        expect(await f.rewards.isCommitteeMember(b.address)).to.equal(false);
        expect(await f.rewards.isCommitteeMember(c.address)).to.equal(true);
        // Same members a and b, but signed for version 1.
        await expect(f.rewards.postScores(1n, 0n, old.packed, old.signatures)).to.be.revertedWithCustomError(
          f.rewards,
          "SignerNotInCommittee",
        );
        // b signing for version 2 is no longer a member.
        await expect(postBatch(f, 1n, entries, { signers: [a, b] }))
          .to.be.revertedWithCustomError(f.rewards, "SignerNotInCommittee")
          .withArgs(b.address);
        await expect(postBatch(f, 1n, entries, { signers: [c, a] })).to.emit(f.rewards, "ScoresPosted");
      });

      it("digest is the EIP-712 typed data hash", async function () {
        const f = await loadFixture(thresholdTwo);
        const [, name, version, chainId, verifyingContract] = await f.rewards.eip712Domain();
        expect(name).to.equal("Edge RewardsManager");
        const hash = ethers.keccak256("0x1234");
        const expectedDigest = ethers.TypedDataEncoder.hash(
          { name, version, chainId, verifyingContract },
          {
            ScoreBatch: [
              { name: "epoch", type: "uint256" },
              { name: "batchIndex", type: "uint256" },
              { name: "entriesHash", type: "bytes32" },
              { name: "committeeVersion", type: "uint256" },
            ],
          },
          { epoch: 5n, batchIndex: 2n, entriesHash: hash, committeeVersion: 9n },
        );
        expect(await f.rewards.batchDigest(5n, 2n, hash, 9n)).to.equal(expectedDigest);
      });
    });
  });

  describe("#claim", function () {
    it("sends the accrued yield to any address and releases its reservation", async function () {
      const f = await loadFixture(scoredFixture);
      await postBatch(f, 0n, [{ stakeId: 1n, score: 10_000n }]);
      const amount = await f.rewards.accrued(1n);
      const tx = f.rewards.connect(f.alice).claim(1n, f.carol.address);
      await expect(tx).to.emit(f.rewards, "YieldClaimed").withArgs(1n, f.alice.address, f.carol.address, amount);
      await expect(tx).to.changeTokenBalances(f.token, [f.rewards, f.carol], [-amount, amount]);
      expect(await f.rewards.accrued(1n)).to.equal(0n);
      expect(await f.rewards.reserved()).to.equal(0n);
      expect(await f.rewards.lastScoredEpoch(1n)).to.deep.equal([true, 0n]);
    });

    it("works while paused and after the stake was released", async function () {
      const f = await loadFixture(scoredFixture);
      await postBatch(f, 0n, [{ stakeId: 1n, score: 10_000n }]);
      await f.staking.connect(f.alice).requestUnstake(1n);
      await f.staking.connect(f.alice).expressRelease(1n);
      await f.rewards.connect(f.pauser).pause();
      await f.staking.connect(f.pauser).pause();
      await expect(f.rewards.connect(f.alice).claim(1n, f.alice.address)).to.emit(f.rewards, "YieldClaimed");
    });

    it("reverts for a stranger, nothing accrued, the zero address and an unknown stake", async function () {
      const f = await loadFixture(scoredFixture);
      await postBatch(f, 0n, [{ stakeId: 1n, score: 10_000n }]);
      await expect(f.rewards.connect(f.bob).claim(1n, f.bob.address))
        .to.be.revertedWithCustomError(f.rewards, "NotStakeOwner")
        .withArgs(1n, f.bob.address, f.alice.address);
      await expect(f.rewards.connect(f.bob).claim(2n, f.bob.address))
        .to.be.revertedWithCustomError(f.rewards, "NothingAccrued")
        .withArgs(2n);
      await expect(f.rewards.connect(f.alice).claim(1n, ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.rewards,
        "ZeroAddress",
      );
      await expect(f.rewards.connect(f.alice).claim(42n, f.alice.address))
        .to.be.revertedWithCustomError(f.staking, "StakeNotFound")
        .withArgs(42n);
    });
  });

  describe("#compound", function () {
    it("adds the accrued yield to the stake, counting from the next epoch", async function () {
      const f = await loadFixture(scoredFixture);
      await postBatch(f, 0n, [{ stakeId: 1n, score: 10_000n }]);
      const amount = await f.rewards.accrued(1n);
      const tx = f.rewards.connect(f.alice).compound(1n);
      await expect(tx).to.emit(f.rewards, "YieldCompounded").withArgs(1n, f.alice.address, amount);
      await expect(tx)
        .to.emit(f.staking, "StakeIncreased")
        .withArgs(1n, amount, HOST + amount);
      await expect(tx).to.changeTokenBalances(f.token, [f.rewards, f.staking], [-amount, amount]);
      expect(await f.rewards.reserved()).to.equal(0n);
      await time.increaseTo(f.genesis + 3n * DAY);
      await postBatch(f, 1n, [{ stakeId: 1n, score: 10_000n }]);
      expect(await f.rewards.accrued(1n)).to.equal(await expected(f, 1n, 1n, 10_000n, HOST));
      await postBatch(f, 2n, [{ stakeId: 1n, score: 10_000n }]);
      expect(await f.rewards.accrued(1n)).to.equal(
        (await expected(f, 1n, 1n, 10_000n, HOST)) + (await expected(f, 1n, 2n, 10_000n, HOST + amount)),
      );
    });

    it("reverts for a stranger, nothing accrued and an unbonding stake", async function () {
      const f = await loadFixture(scoredFixture);
      await postBatch(f, 0n, [{ stakeId: 1n, score: 10_000n }]);
      // StakeManager checks ownership for compounding; its error reverts the whole call.
      await expect(f.rewards.connect(f.bob).compound(1n))
        .to.be.revertedWithCustomError(f.staking, "StakeNotOwner")
        .withArgs(1n, f.bob.address, f.alice.address);
      await expect(f.rewards.connect(f.bob).compound(2n))
        .to.be.revertedWithCustomError(f.rewards, "NothingAccrued")
        .withArgs(2n);
      await f.staking.connect(f.alice).requestUnstake(1n);
      await expect(f.rewards.connect(f.alice).compound(1n))
        .to.be.revertedWithCustomError(f.staking, "StakeNotActive")
        .withArgs(1n, 2n);
      // The yield is still there to claim.
      await expect(f.rewards.connect(f.alice).claim(1n, f.alice.address)).to.emit(f.rewards, "YieldClaimed");
    });
  });

  describe("#fund", function () {
    it("adds to the pool from anyone, also while paused; plain transfers count", async function () {
      const f = await loadFixture(deployRewardsFixture);
      await f.rewards.connect(f.pauser).pause();
      await f.token.connect(f.bob).approve(await f.rewards.getAddress(), 5n * ONE);
      const tx = f.rewards.connect(f.bob).fund(5n * ONE);
      await expect(tx)
        .to.emit(f.rewards, "PoolFunded")
        .withArgs(f.bob.address, 5n * ONE);
      await expect(tx).to.changeTokenBalances(f.token, [f.bob, f.rewards], [-5n * ONE, 5n * ONE]);
      await f.token.connect(f.bob).transfer(await f.rewards.getAddress(), ONE);
      expect(await f.rewards.available()).to.equal(POOL_FUNDING + 6n * ONE);
      await expect(f.rewards.connect(f.bob).fund(0n)).to.be.revertedWithCustomError(f.rewards, "ZeroAmount");
    });
  });

  describe("governance", function () {
    it("changes yield parameters within bounds; new batches use them", async function () {
      const f = await loadFixture(scoredFixture);
      const params = { ...DEFAULT_YIELD_PARAMS, hostBaseAprBps: 2000n };
      await expect(f.rewards.connect(f.parameterAdmin).setYieldParams(params)).to.emit(f.rewards, "YieldParamsSet");
      await postBatch(f, 0n, [{ stakeId: 1n, score: 10_000n }]);
      const stake = await f.staking.getStake(1n);
      const { end } = await window(f, 0n);
      expect(await f.rewards.accrued(1n)).to.equal(
        epochReward({
          stakeType: StakeType.Host,
          effectiveStake: HOST,
          activeSince: stake.activeSince,
          epochEnd: end,
          epochDuration: DAY,
          score: 10_000n,
          params,
        }),
      );
      for (const bad of [
        { ...DEFAULT_YIELD_PARAMS, hostBaseAprBps: 5001n },
        { ...DEFAULT_YIELD_PARAMS, gatewayBaseAprBps: 5001n },
        { ...DEFAULT_YIELD_PARAMS, tenureStepBps: 1001n },
        { ...DEFAULT_YIELD_PARAMS, maxTenureBonusBps: 5001n },
      ]) {
        await expect(f.rewards.connect(f.parameterAdmin).setYieldParams(bad)).to.be.revertedWithCustomError(
          f.rewards,
          "YieldParamsOutOfBounds",
        );
      }
    });

    it("lets only the right roles act", async function () {
      const f = await loadFixture(deployRewardsFixture);
      const check = async (call: () => Promise<unknown>, role: string) =>
        expect(call())
          .to.be.revertedWithCustomError(f.rewards, "AccessControlUnauthorizedAccount")
          .withArgs(f.alice.address, role);
      const alice = f.rewards.connect(f.alice);
      await check(() => alice.setCommittee([f.alice.address], 1), await f.rewards.ORACLE_ADMIN_ROLE());
      await check(() => alice.setYieldParams(DEFAULT_YIELD_PARAMS), await f.rewards.PARAMETER_ADMIN_ROLE());
      await check(() => alice.pause(), await f.rewards.PAUSER_ROLE());
      await check(() => alice.unpause(), await f.rewards.PAUSER_ROLE());
      await expect(f.rewards.connect(f.pauser).pause()).to.emit(f.rewards, "Paused");
      await expect(f.rewards.connect(f.pauser).unpause()).to.emit(f.rewards, "Unpaused");
      await expect(f.rewards.connect(f.parameterAdmin).setCommittee([f.alice.address], 2))
        .to.be.revertedWithCustomError(f.rewards, "CommitteeInvalid")
        .withArgs(1n, 2n);
      expect(DEFAULTS.adminDelay).to.equal(await f.rewards.defaultAdminDelay());
    });
  });
});
