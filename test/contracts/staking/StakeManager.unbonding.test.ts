/** StakeManager: unstaking, cancelling, and releasing after unbonding or at once for a fee. */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";

import { latestTimestamp } from "../../shared/fixtures";
import { DAY, StakeStatus, StakeType } from "../../shared/constants";
import { HOST_AMOUNT, stakedFixture } from "./helpers";

describe("StakeManager", function () {
  describe("#requestUnstake", function () {
    it("starts unbonding and evicts the device in the same block", async function () {
      const { staking, alice, device } = await loadFixture(stakedFixture);
      const tx = await staking.connect(alice).requestUnstake(1n);
      const at = await latestTimestamp();
      await expect(tx)
        .to.emit(staking, "UnstakeRequested")
        .withArgs(1n, at + 90n * DAY);
      expect(await staking.isAdmitted(device.address)).to.equal(false);
      const status = await staking.deviceStatus(device.address);
      expect(status.status).to.equal(StakeStatus.Unlocking);
      expect(status.unlockAt).to.equal(at + 90n * DAY);
      expect(status.activeSince).to.equal(0n);
      expect(status.admitted).to.equal(false);
      expect((await staking.getStake(1n)).activeSince).to.equal(0n);
    });

    it("keeps the unbonding period of the time of the request", async function () {
      const { staking, alice, parameterAdmin } = await loadFixture(stakedFixture);
      await staking.connect(alice).requestUnstake(1n);
      const unlockAt = (await latestTimestamp()) + 90n * DAY;
      await staking.connect(parameterAdmin).setUnbondingPeriod(StakeType.Host, 180n * DAY);
      expect((await staking.getStake(1n)).unlockAt).to.equal(unlockAt);
    });

    it("is allowed while paused", async function () {
      const { staking, alice, pauser } = await loadFixture(stakedFixture);
      await staking.connect(pauser).pause();
      await expect(staking.connect(alice).requestUnstake(1n)).to.emit(staking, "UnstakeRequested");
    });

    it("reverts for a stranger or a stake already unbonding", async function () {
      const { staking, alice, bob } = await loadFixture(stakedFixture);
      await expect(staking.connect(bob).requestUnstake(1n))
        .to.be.revertedWithCustomError(staking, "StakeNotOwner")
        .withArgs(1n, bob.address, alice.address);
      await staking.connect(alice).requestUnstake(1n);
      await expect(staking.connect(alice).requestUnstake(1n))
        .to.be.revertedWithCustomError(staking, "StakeNotActive")
        .withArgs(1n, StakeStatus.Unlocking);
    });
  });

  describe("#cancelUnstake", function () {
    it("reactivates the stake with a fresh tenure", async function () {
      const { staking, alice, device } = await loadFixture(stakedFixture);
      await staking.connect(alice).requestUnstake(1n);
      await time.increase(DAY);
      await expect(staking.connect(alice).cancelUnstake(1n)).to.emit(staking, "UnstakeCancelled").withArgs(1n);
      const stake = await staking.getStake(1n);
      expect(stake.status).to.equal(StakeStatus.Assigned);
      expect(stake.activeSince).to.equal(await latestTimestamp());
      expect(stake.unlockAt).to.equal(0n);
      expect(await staking.isAdmitted(device.address)).to.equal(true);
    });

    it("also works after the stake unlocked", async function () {
      const { staking, alice } = await loadFixture(stakedFixture);
      await staking.connect(alice).requestUnstake(1n);
      await time.increase(91n * DAY);
      expect((await staking.getStake(1n)).status).to.equal(StakeStatus.Unlocked);
      await expect(staking.connect(alice).cancelUnstake(1n)).to.emit(staking, "UnstakeCancelled");
    });

    it("reverts for an active stake, a stranger and while paused", async function () {
      const { staking, alice, bob, pauser } = await loadFixture(stakedFixture);
      await expect(staking.connect(alice).cancelUnstake(1n))
        .to.be.revertedWithCustomError(staking, "StakeNotUnlocking")
        .withArgs(1n, StakeStatus.Assigned);
      await staking.connect(alice).requestUnstake(1n);
      await expect(staking.connect(bob).cancelUnstake(1n)).to.be.revertedWithCustomError(staking, "StakeNotOwner");
      await staking.connect(pauser).pause();
      await expect(staking.connect(alice).cancelUnstake(1n)).to.be.revertedWithCustomError(staking, "EnforcedPause");
    });
  });

  describe("#release", function () {
    it("returns the tokens after unbonding and closes the stake", async function () {
      const { staking, token, alice, device } = await loadFixture(stakedFixture);
      await staking.connect(alice).requestUnstake(1n);
      await time.increase(90n * DAY);
      const tx = staking.connect(alice).release(1n);
      await expect(tx).to.emit(staking, "StakeReleased").withArgs(1n, alice.address, HOST_AMOUNT, 0n);
      await expect(tx).to.changeTokenBalances(token, [alice, staking], [HOST_AMOUNT, -HOST_AMOUNT]);
      const stake = await staking.getStake(1n);
      expect(stake.status).to.equal(StakeStatus.Released);
      expect(stake.amount).to.equal(0n);
      expect(stake.releasedAt).to.equal(await latestTimestamp());
      expect(stake.minimumMet).to.equal(false);
      const status = await staking.deviceStatus(device.address);
      expect(status.status).to.equal(StakeStatus.Released);
      expect(status.amount).to.equal(0n);
      expect(status.admitted).to.equal(false);
    });

    it("is allowed while paused", async function () {
      const { staking, alice, pauser } = await loadFixture(stakedFixture);
      await staking.connect(alice).requestUnstake(1n);
      await time.increase(90n * DAY);
      await staking.connect(pauser).pause();
      await expect(staking.connect(alice).release(1n)).to.emit(staking, "StakeReleased");
    });

    it("reverts before the unlock time", async function () {
      const { staking, alice } = await loadFixture(stakedFixture);
      await staking.connect(alice).requestUnstake(1n);
      const unlockAt = (await latestTimestamp()) + 90n * DAY;
      await time.setNextBlockTimestamp(unlockAt - 1n);
      await expect(staking.connect(alice).release(1n))
        .to.be.revertedWithCustomError(staking, "StakeStillLocked")
        .withArgs(1n, unlockAt);
    });

    it("reverts for an active or released stake and for a stranger", async function () {
      const { staking, alice, bob } = await loadFixture(stakedFixture);
      await expect(staking.connect(alice).release(1n))
        .to.be.revertedWithCustomError(staking, "StakeNotUnlocking")
        .withArgs(1n, StakeStatus.Assigned);
      await staking.connect(alice).requestUnstake(1n);
      await time.increase(90n * DAY);
      await expect(staking.connect(bob).release(1n)).to.be.revertedWithCustomError(staking, "StakeNotOwner");
      await staking.connect(alice).release(1n);
      await expect(staking.connect(alice).release(1n))
        .to.be.revertedWithCustomError(staking, "StakeNotUnlocking")
        .withArgs(1n, StakeStatus.Released);
    });
  });

  describe("#expressRelease", function () {
    it("returns the tokens now, less the fee to the treasury", async function () {
      const { staking, token, alice, treasury } = await loadFixture(stakedFixture);
      await staking.connect(alice).requestUnstake(1n);
      const fee = HOST_AMOUNT / 4n;
      const tx = staking.connect(alice).expressRelease(1n);
      await expect(tx)
        .to.emit(staking, "StakeReleased")
        .withArgs(1n, alice.address, HOST_AMOUNT - fee, fee);
      await expect(tx).to.changeTokenBalances(
        token,
        [alice, treasury, staking],
        [HOST_AMOUNT - fee, fee, -HOST_AMOUNT],
      );
    });

    it("rounds the fee down and skips a zero fee", async function () {
      const { staking, token, alice, treasury, parameterAdmin } = await loadFixture(stakedFixture);
      await staking.connect(alice).increase(1n, 3n); // 1000e18 + 3 wei
      await staking.connect(parameterAdmin).setExpressReleaseFee(3333n);
      await staking.connect(alice).requestUnstake(1n);
      const amount = HOST_AMOUNT + 3n;
      const fee = (amount * 3333n) / 10000n;
      await expect(staking.connect(alice).expressRelease(1n)).to.changeTokenBalances(
        token,
        [alice, treasury],
        [amount - fee, fee],
      );
      await staking.connect(parameterAdmin).setExpressReleaseFee(0n);
      await staking.connect(alice).stake(StakeType.Host, HOST_AMOUNT);
      await staking.connect(alice).requestUnstake(3n);
      await expect(staking.connect(alice).expressRelease(3n))
        .to.emit(staking, "StakeReleased")
        .withArgs(3n, alice.address, HOST_AMOUNT, 0n);
    });

    it("is allowed while paused", async function () {
      const { staking, alice, pauser } = await loadFixture(stakedFixture);
      await staking.connect(alice).requestUnstake(1n);
      await staking.connect(pauser).pause();
      await expect(staking.connect(alice).expressRelease(1n)).to.emit(staking, "StakeReleased");
    });

    it("reverts once unlocked, for an active stake and for a stranger", async function () {
      const { staking, alice, bob } = await loadFixture(stakedFixture);
      await expect(staking.connect(alice).expressRelease(1n))
        .to.be.revertedWithCustomError(staking, "StakeNotUnlocking")
        .withArgs(1n, StakeStatus.Assigned);
      await staking.connect(alice).requestUnstake(1n);
      await expect(staking.connect(bob).expressRelease(1n)).to.be.revertedWithCustomError(staking, "StakeNotOwner");
      const unlockAt = (await staking.getStake(1n)).unlockAt;
      await time.setNextBlockTimestamp(unlockAt);
      await expect(staking.connect(alice).expressRelease(1n))
        .to.be.revertedWithCustomError(staking, "StakeAlreadyUnlocked")
        .withArgs(1n, unlockAt);
    });
  });
});
