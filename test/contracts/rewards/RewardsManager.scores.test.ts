/** RewardsManager: posting score batches accrues each stake's yield by the formula, once, from a pool that covers it. */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";

import {
  POOL_FUNDING,
  deployRewards,
  deployRewardsFixture,
  latestTimestamp,
  postBatch,
  signBatch,
} from "../../shared/fixtures";
import { DAY, MINIMUM, StakeType } from "../../shared/constants";
import { DEFAULT_YIELD_PARAMS } from "../../../offchain/common/yield";
import { packEntries } from "../../../offchain/common/scoreBatch";
import { ONE, HOST, Skip, scoredFixture, window, expected } from "./helpers";

describe("RewardsManager", function () {
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

    /** Alice's host stake 1 over 60-second epochs; `first` is its first fully active epoch. */
    async function minuteEpochs() {
      const f = await deployRewards({ threshold: 1, epochDuration: 60n });
      await f.token.connect(f.alice).approve(await f.staking.getAddress(), HOST);
      await f.staking.connect(f.alice).stake(StakeType.Host, HOST);
      const created = await latestTimestamp();
      const first = created < f.genesis ? 0n : (created - f.genesis) / 60n + 1n;
      return { f, first };
    }

    it("L-4: posting a newer epoch first never pushes a postable epoch out of a stake's window", async function () {
      const { f, first } = await loadFixture(minuteEpochs);
      expect(await f.rewards.oldestPostableEpoch()).to.equal(0n);
      // Now in epoch first + 130: the postable epochs are first + 2 .. first + 129.
      await time.increaseTo(f.genesis + (first + 130n) * 60n);
      expect(await f.rewards.currentEpoch()).to.equal(first + 130n);
      expect(await f.rewards.oldestPostableEpoch()).to.equal(first + 2n);
      await postBatch(f, first + 129n, [{ stakeId: 1n, score: 10_000n }]);
      // The oldest postable epoch still accrues after the newest: the window reaches back 128 epochs.
      await expect(postBatch(f, first + 2n, [{ stakeId: 1n, score: 10_000n }])).to.not.emit(f.rewards, "EntrySkipped");
      expect(await f.rewards.isScored(1n, first + 2n)).to.equal(true);
      expect(await f.rewards.isScored(1n, first + 129n)).to.equal(true);
      // One epoch older is no longer postable at all, whatever was posted before: a revert, not a silent skip, so
      // the batch is not used up and the result does not depend on the posting order.
      await expect(postBatch(f, first + 1n, [{ stakeId: 1n, score: 10_000n }]))
        .to.be.revertedWithCustomError(f.rewards, "EpochExpired")
        .withArgs(first + 1n, first + 2n);
      expect(await f.rewards.isBatchPosted(first + 1n, 0n)).to.equal(false);
    });

    it("L-4: an epoch 128 behind the newest posted one is refused in either posting order", async function () {
      const { f, first } = await loadFixture(minuteEpochs);
      // Epochs first and first + 128 are never postable at the same time: first + 128 closes as first expires.
      await time.increaseTo(f.genesis + (first + 128n) * 60n);
      expect(await f.rewards.oldestPostableEpoch()).to.equal(first);
      await expect(postBatch(f, first + 128n, [{ stakeId: 1n, score: 10_000n }])).to.be.revertedWithCustomError(
        f.rewards,
        "EpochNotClosed",
      );
      await postBatch(f, first, [{ stakeId: 1n, score: 10_000n }]);
      await time.increaseTo(f.genesis + (first + 129n) * 60n);
      await postBatch(f, first + 128n, [{ stakeId: 1n, score: 10_000n }]);
      await expect(postBatch(f, first, [{ stakeId: 1n, score: 10_000n }], { batchIndex: 1n }))
        .to.be.revertedWithCustomError(f.rewards, "EpochExpired")
        .withArgs(first, first + 1n);
      // A jump of 128 or more epochs starts a fresh window.
      await time.increaseTo(f.genesis + (first + 400n) * 60n);
      await postBatch(f, first + 390n, [{ stakeId: 1n, score: 10_000n }]);
      expect(await f.rewards.isScored(1n, first + 390n)).to.equal(true);
      expect(await f.rewards.isScored(1n, first + 128n)).to.equal(false);
      expect(await f.rewards.lastScoredEpoch(1n)).to.deep.equal([true, first + 390n]);
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

    it("L-3: an epoch that ended before a cancelled unstake request still accrues when posted after the cancel", async function () {
      const f = await loadFixture(scoredFixture);
      const reward = await expected(f, 1n, 0n, 10_000n); // epoch 0 ended; now in epoch 1, not posted yet
      await f.staking.connect(f.alice).requestUnstake(1n);
      await f.staking.connect(f.alice).cancelUnstake(1n);
      await time.increaseTo(f.genesis + 3n * DAY);
      await expect(postBatch(f, 0n, [{ stakeId: 1n, score: 10_000n }])).to.not.emit(f.rewards, "EntrySkipped");
      expect(await f.rewards.accrued(1n)).to.equal(reward); // with the tenure it had then
      await expect(postBatch(f, 1n, [{ stakeId: 1n, score: 10_000n }]))
        .to.emit(f.rewards, "EntrySkipped")
        .withArgs(1n, 1n, 10_000n, Skip.NotActiveThroughEpoch);
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
  });
});
