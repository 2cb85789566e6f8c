/** RewardsManager: claiming and compounding accrued yield, and funding the pool. */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";

import { POOL_FUNDING, deployRewardsFixture, postBatch } from "../../shared/fixtures";
import { DAY } from "../../shared/constants";
import { ONE, HOST, scoredFixture, expected } from "./helpers";

describe("RewardsManager", function () {
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
});
