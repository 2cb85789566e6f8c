/** StakeManager: slashing, its eviction and its per-slasher rate limit. */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";

import { latestTimestamp } from "../../shared/fixtures";
import { DAY, DEFAULTS, MINIMUM, StakeStatus, StakeType } from "../../shared/constants";
import { ONE, HOST_AMOUNT, stakedFixture } from "./helpers";

describe("StakeManager", function () {
  describe("#slash", function () {
    it("moves slashed tokens to the treasury with a reason and keeps the history", async function () {
      const { staking, token, slasher, treasury } = await loadFixture(stakedFixture);
      const before = await latestTimestamp();
      const amount = ONE * 100n;
      const tx = staking.connect(slasher).slash(1n, amount, "served forged content");
      await expect(tx)
        .to.emit(staking, "StakeSlashed")
        .withArgs(1n, slasher.address, amount, HOST_AMOUNT - amount, "served forged content");
      await expect(tx).to.changeTokenBalances(token, [staking, treasury], [-amount, amount]);
      const at = await latestTimestamp();
      expect(await staking.stakeAt(1n, before)).to.equal(HOST_AMOUNT);
      expect(await staking.stakeAt(1n, at)).to.equal(HOST_AMOUNT - amount);
      expect(await staking.slashAvailable(slasher.address)).to.equal(DEFAULTS.slashCapacity - amount);
    });

    it("evicts a device slashed below the minimum", async function () {
      const { staking, slasher, device } = await loadFixture(stakedFixture);
      await staking.connect(slasher).slash(1n, HOST_AMOUNT - MINIMUM[StakeType.Host] + 1n, "downtime");
      expect(await staking.isAdmitted(device.address)).to.equal(false);
      const status = await staking.deviceStatus(device.address);
      expect(status.minimumMet).to.equal(false);
      expect(status.status).to.equal(StakeStatus.Assigned);
    });

    it("can slash an unbonding stake, all of it, and also while paused", async function () {
      const { staking, alice, slasher, pauser } = await loadFixture(stakedFixture);
      await staking.connect(alice).requestUnstake(1n);
      await staking.connect(pauser).pause();
      await expect(staking.connect(slasher).slash(1n, HOST_AMOUNT, "fraud"))
        .to.emit(staking, "StakeSlashed")
        .withArgs(1n, slasher.address, HOST_AMOUNT, 0n, "fraud");
    });

    it("reverts for a released stake, an excessive or zero amount and a non-slasher", async function () {
      const { staking, alice, bob, slasher } = await loadFixture(stakedFixture);
      await expect(staking.connect(slasher).slash(1n, HOST_AMOUNT + 1n, "x"))
        .to.be.revertedWithCustomError(staking, "SlashExceedsStake")
        .withArgs(1n, HOST_AMOUNT + 1n, HOST_AMOUNT);
      await expect(staking.connect(slasher).slash(1n, 0n, "x")).to.be.revertedWithCustomError(
        staking,
        "StakeZeroAmount",
      );
      await expect(staking.connect(bob).slash(1n, ONE, "x"))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(bob.address, await staking.SLASHER_ROLE());
      await expect(staking.connect(slasher).slash(7n, ONE, "x"))
        .to.be.revertedWithCustomError(staking, "StakeNotFound")
        .withArgs(7n);
      await staking.connect(alice).requestUnstake(1n);
      await staking.connect(alice).expressRelease(1n);
      await expect(staking.connect(slasher).slash(1n, ONE, "x"))
        .to.be.revertedWithCustomError(staking, "SlashReleasedStake")
        .withArgs(1n);
    });

    it("rate-limits each slasher, refilling over the window", async function () {
      const { staking, admin, slasher, parameterAdmin, bob, others } = await loadFixture(stakedFixture);
      const capacity = ONE * 100n;
      await staking.connect(parameterAdmin).setSlashLimit(DAY, capacity);
      await staking.connect(slasher).slash(2n, capacity, "a");
      expect(await staking.slashAvailable(slasher.address)).to.equal(0n);
      await expect(staking.connect(slasher).slash(2n, ONE, "b"))
        .to.be.revertedWithCustomError(staking, "SlashRateLimited")
        .withArgs(slasher.address, ONE, anyValue);
      // Another slasher has its own budget.
      const second = others[0];
      await staking.connect(admin).grantRole(await staking.SLASHER_ROLE(), second.address);
      await expect(staking.connect(second).slash(2n, capacity, "c")).to.emit(staking, "StakeSlashed");
      // Half a window refills half the capacity.
      await time.increase(DAY / 2n);
      const available = await staking.slashAvailable(slasher.address);
      expect(available).to.be.closeTo(capacity / 2n, capacity / 1000n);
      await expect(staking.connect(slasher).slash(2n, capacity, "d"))
        .to.be.revertedWithCustomError(staking, "SlashRateLimited")
        .withArgs(slasher.address, capacity, anyValue);
      await time.increase(DAY);
      await expect(staking.connect(slasher).slash(2n, capacity, "e")).to.emit(staking, "StakeSlashed");
      void bob;
    });
  });
});
