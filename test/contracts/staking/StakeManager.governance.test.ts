/** StakeManager: parameters within bounds, admission after a change of minimum, roles, pausing and the admin. */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";

import { deployStakingFixture } from "../../shared/fixtures";
import { DAY, DEFAULTS, StakeType } from "../../shared/constants";
import { ONE, HOST_AMOUNT, stakedFixture } from "./helpers";

describe("StakeManager", function () {
  describe("governance", function () {
    it("a raised minimum evicts devices below it; a lowered one readmits them", async function () {
      const { staking, parameterAdmin, device } = await loadFixture(stakedFixture);
      await expect(staking.connect(parameterAdmin).setMinimumStake(StakeType.Host, HOST_AMOUNT + 1n))
        .to.emit(staking, "MinimumStakeSet")
        .withArgs(StakeType.Host, HOST_AMOUNT + 1n);
      expect(await staking.isAdmitted(device.address)).to.equal(false);
      expect((await staking.getStake(1n)).minimumMet).to.equal(false);
      await staking.connect(parameterAdmin).setMinimumStake(StakeType.Host, HOST_AMOUNT);
      expect(await staking.isAdmitted(device.address)).to.equal(true);
    });

    it("keeps every parameter within its bounds", async function () {
      const { staking, parameterAdmin } = await loadFixture(deployStakingFixture);
      const admin = staking.connect(parameterAdmin);
      await expect(admin.setMinimumStake(StakeType.Host, 0n))
        .to.be.revertedWithCustomError(staking, "MinimumStakeOutOfBounds")
        .withArgs(StakeType.Host, 0n, 1n, ethers.parseEther("10000000"));
      await expect(admin.setUnbondingPeriod(StakeType.Gateway, 180n * DAY + 1n))
        .to.be.revertedWithCustomError(staking, "UnbondingPeriodOutOfBounds")
        .withArgs(StakeType.Gateway, 180n * DAY + 1n, DAY, 180n * DAY);
      await expect(admin.setUnbondingPeriod(StakeType.Gateway, DAY))
        .to.emit(staking, "UnbondingPeriodSet")
        .withArgs(StakeType.Gateway, DAY);
      await expect(admin.setExpressReleaseFee(5001n))
        .to.be.revertedWithCustomError(staking, "ExpressReleaseFeeOutOfBounds")
        .withArgs(5001n, 5000n);
      await expect(admin.setExpressReleaseFee(5000n)).to.emit(staking, "ExpressReleaseFeeSet").withArgs(5000n);
      await expect(admin.setTreasury(ethers.ZeroAddress)).to.be.revertedWithCustomError(staking, "ZeroAddress");
      await expect(admin.setTreasury(parameterAdmin.address))
        .to.emit(staking, "TreasurySet")
        .withArgs(parameterAdmin.address);
      await expect(admin.setSlashLimit(DAY, 0n))
        .to.be.revertedWithCustomError(staking, "SlashLimitOutOfBounds")
        .withArgs(DAY, 0n);
      await expect(admin.setSlashLimit(3600n, ONE)).to.emit(staking, "SlashLimitSet").withArgs(3600n, ONE);
      expect(await staking.slashLimit()).to.deep.equal([3600n, ONE]);
    });

    it("L-2: an unbonding period of 0, or below the deployment's floor, is refused (no unstake, release and escape in one block)", async function () {
      const { staking, parameterAdmin, alice } = await loadFixture(stakedFixture);
      const admin = staking.connect(parameterAdmin);
      for (const period of [0n, 1n, DAY - 1n]) {
        await expect(admin.setUnbondingPeriod(StakeType.Host, period))
          .to.be.revertedWithCustomError(staking, "UnbondingPeriodOutOfBounds")
          .withArgs(StakeType.Host, period, DAY, 180n * DAY);
      }
      await admin.setUnbondingPeriod(StakeType.Host, DAY);
      // At the floor, a stake unstaked now can be released only a day later: a slash can still reach it.
      await staking.connect(alice).requestUnstake(1n);
      const { unlockAt } = await staking.getStake(1n);
      expect(unlockAt - BigInt(await time.latest())).to.equal(DAY);
      await expect(staking.connect(alice).release(1n))
        .to.be.revertedWithCustomError(staking, "StakeStillLocked")
        .withArgs(1n, unlockAt);
    });

    it("lets only the parameter admin change parameters", async function () {
      const { staking, alice } = await loadFixture(deployStakingFixture);
      const role = await staking.PARAMETER_ADMIN_ROLE();
      const as = staking.connect(alice);
      const calls = [
        () => as.setMinimumStake(StakeType.Host, ONE),
        () => as.setUnbondingPeriod(StakeType.Host, DAY),
        () => as.setExpressReleaseFee(0n),
        () => as.setTreasury(alice.address),
        () => as.setSlashLimit(DAY, ONE),
      ];
      for (const call of calls) {
        await expect(call())
          .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
          .withArgs(alice.address, role);
      }
    });

    it("lets only the pauser pause and unpause", async function () {
      const { staking, pauser, alice } = await loadFixture(deployStakingFixture);
      const role = await staking.PAUSER_ROLE();
      await expect(staking.connect(alice).pause())
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(alice.address, role);
      await expect(staking.connect(pauser).pause()).to.emit(staking, "Paused").withArgs(pauser.address);
      await expect(staking.connect(alice).unpause())
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(alice.address, role);
      await expect(staking.connect(pauser).unpause()).to.emit(staking, "Unpaused").withArgs(pauser.address);
    });

    it("transfers the admin in two steps after the delay", async function () {
      const { staking, admin, alice } = await loadFixture(deployStakingFixture);
      await staking.connect(admin).beginDefaultAdminTransfer(alice.address);
      await expect(staking.connect(alice).acceptDefaultAdminTransfer()).to.be.revertedWithCustomError(
        staking,
        "AccessControlEnforcedDefaultAdminDelay",
      );
      await time.increase(DEFAULTS.adminDelay + 1n);
      await staking.connect(alice).acceptDefaultAdminTransfer();
      expect(await staking.defaultAdmin()).to.equal(alice.address);
      expect(await staking.hasRole(ethers.ZeroHash, admin.address)).to.equal(false);
      await expect(staking.connect(alice).grantRole(await staking.SLASHER_ROLE(), alice.address)).to.emit(
        staking,
        "RoleGranted",
      );
    });
  });
});
