/** StakeManager: construction and its bounds, and the views of unknown and unbonding stakes. */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";

import { deployStakingFixture, newDevice } from "../../shared/fixtures";
import { DAY, DEFAULTS, MINIMUM, StakeStatus, StakeType } from "../../shared/constants";
import { ONE, stakedFixture } from "./helpers";

describe("StakeManager", function () {
  describe("deployment", function () {
    it("sets the token, treasury and default parameters", async function () {
      const { staking, token, treasury, admin } = await loadFixture(deployStakingFixture);
      expect(await staking.token()).to.equal(await token.getAddress());
      expect(await staking.treasury()).to.equal(treasury.address);
      for (const stakeType of [StakeType.Host, StakeType.Gateway, StakeType.Stargate]) {
        const params = await staking.typeParams(stakeType);
        expect(params.minimumStake).to.equal(DEFAULTS.typeParams[stakeType].minimumStake);
        expect(params.unbondingPeriod).to.equal(90n * DAY);
      }
      expect(await staking.expressReleaseFeeBps()).to.equal(2500n);
      expect(await staking.slashLimit()).to.deep.equal([DEFAULTS.slashWindow, DEFAULTS.slashCapacity]);
      expect(await staking.stakeCount()).to.equal(0n);
      expect(await staking.minUnbondingPeriod()).to.equal(DAY);
      expect(await staking.defaultAdmin()).to.equal(admin.address);
      expect(await staking.defaultAdminDelay()).to.equal(DEFAULTS.adminDelay);
    });

    it("emits the initial parameters so logs alone describe admission", async function () {
      const { staking } = await loadFixture(deployStakingFixture);
      const receipt = await staking.deploymentTransaction()!.wait();
      const parsed = receipt!.logs.map((log) => staking.interface.parseLog(log)).filter((log) => log !== null);
      const minimums = parsed.filter((log) => log.name === "MinimumStakeSet").map((log) => [log.args[0], log.args[1]]);
      expect(minimums).to.deep.equal([
        [0n, MINIMUM[StakeType.Host]],
        [1n, MINIMUM[StakeType.Gateway]],
        [2n, MINIMUM[StakeType.Stargate]],
      ]);
    });

    describe("rejects invalid parameters", function () {
      async function deploy(overrides: Record<string, unknown>) {
        const [admin, treasury] = await ethers.getSigners();
        const token = await ethers.deployContract("EdgeToken", [treasury.address, ONE]);
        const args = {
          token: await token.getAddress(),
          admin: admin.address,
          delay: DEFAULTS.adminDelay,
          treasury: treasury.address,
          params: DEFAULTS.typeParams,
          fee: DEFAULTS.expressReleaseFeeBps,
          window: DEFAULTS.slashWindow,
          capacity: DEFAULTS.slashCapacity,
          floor: DEFAULTS.minUnbondingPeriod,
          ...overrides,
        };
        const factory = await ethers.getContractFactory("StakeManager");
        return {
          factory,
          deploy: () =>
            factory.deploy(
              args.token as string,
              args.admin as string,
              args.delay as bigint,
              args.treasury as string,
              args.params as typeof DEFAULTS.typeParams,
              args.fee as bigint,
              args.window as bigint,
              args.capacity as bigint,
              args.floor as bigint,
            ),
        };
      }

      it("zero token or treasury", async function () {
        let d = await deploy({ token: ethers.ZeroAddress });
        await expect(d.deploy()).to.be.revertedWithCustomError(d.factory, "ZeroAddress");
        d = await deploy({ treasury: ethers.ZeroAddress });
        await expect(d.deploy()).to.be.revertedWithCustomError(d.factory, "ZeroAddress");
      });

      it("minimum stake of zero or above the bound", async function () {
        const params = [...DEFAULTS.typeParams];
        params[2] = { minimumStake: 0n, unbondingPeriod: DAY };
        let d = await deploy({ params });
        await expect(d.deploy())
          .to.be.revertedWithCustomError(d.factory, "MinimumStakeOutOfBounds")
          .withArgs(StakeType.Stargate, 0n, 1n, ethers.parseEther("10000000"));
        params[2] = { minimumStake: ethers.parseEther("10000001"), unbondingPeriod: DAY };
        d = await deploy({ params });
        await expect(d.deploy()).to.be.revertedWithCustomError(d.factory, "MinimumStakeOutOfBounds");
      });

      it("unbonding period above 180 days", async function () {
        const params = [...DEFAULTS.typeParams];
        params[0] = { minimumStake: ONE, unbondingPeriod: 181n * DAY };
        const d = await deploy({ params });
        await expect(d.deploy())
          .to.be.revertedWithCustomError(d.factory, "UnbondingPeriodOutOfBounds")
          .withArgs(StakeType.Host, 181n * DAY, DAY, 180n * DAY);
      });

      it("L-2: an unbonding period below the deployment's floor, or a floor of 0 or above 180 days", async function () {
        const params = [...DEFAULTS.typeParams];
        params[1] = { minimumStake: ONE, unbondingPeriod: DAY - 1n };
        let d = await deploy({ params });
        await expect(d.deploy())
          .to.be.revertedWithCustomError(d.factory, "UnbondingPeriodOutOfBounds")
          .withArgs(StakeType.Gateway, DAY - 1n, DAY, 180n * DAY);
        params[1] = { minimumStake: ONE, unbondingPeriod: 0n };
        d = await deploy({ params, floor: 0n });
        await expect(d.deploy())
          .to.be.revertedWithCustomError(d.factory, "MinUnbondingPeriodOutOfBounds")
          .withArgs(0n, 1n, 180n * DAY);
        d = await deploy({ floor: 180n * DAY + 1n });
        await expect(d.deploy())
          .to.be.revertedWithCustomError(d.factory, "MinUnbondingPeriodOutOfBounds")
          .withArgs(180n * DAY + 1n, 1n, 180n * DAY);
        // The development chain's short periods: a floor of 1 s allows 60 s (the devnet's).
        params[1] = { minimumStake: ONE, unbondingPeriod: 60n };
        d = await deploy({ params, floor: 1n });
        const staking = await d.deploy();
        expect(await staking.minUnbondingPeriod()).to.equal(1n);
        expect((await staking.typeParams(StakeType.Gateway)).unbondingPeriod).to.equal(60n);
      });

      it("express release fee above 50%", async function () {
        const d = await deploy({ fee: 5001n });
        await expect(d.deploy())
          .to.be.revertedWithCustomError(d.factory, "ExpressReleaseFeeOutOfBounds")
          .withArgs(5001n, 5000n);
      });

      it("slash window or capacity out of bounds", async function () {
        let d = await deploy({ window: 3599n });
        await expect(d.deploy())
          .to.be.revertedWithCustomError(d.factory, "SlashLimitOutOfBounds")
          .withArgs(3599n, DEFAULTS.slashCapacity);
        d = await deploy({ window: 31n * DAY });
        await expect(d.deploy()).to.be.revertedWithCustomError(d.factory, "SlashLimitOutOfBounds");
        d = await deploy({ capacity: 0n });
        await expect(d.deploy()).to.be.revertedWithCustomError(d.factory, "SlashLimitOutOfBounds");
        d = await deploy({ capacity: 2n ** 96n });
        await expect(d.deploy()).to.be.revertedWithCustomError(d.factory, "SlashLimitOutOfBounds");
      });
    });
  });

  describe("views", function () {
    it("report unknown stakes and devices", async function () {
      const { staking } = await loadFixture(deployStakingFixture);
      await expect(staking.getStake(1n)).to.be.revertedWithCustomError(staking, "StakeNotFound").withArgs(1n);
      const status = await staking.deviceStatus(newDevice().address);
      expect(status.stakeId).to.equal(0n);
      expect(status.admitted).to.equal(false);
      expect(await staking.isAdmitted(ethers.ZeroAddress)).to.equal(false);
    });

    it("report unlocking, then unlocked", async function () {
      const { staking, alice } = await loadFixture(stakedFixture);
      await staking.connect(alice).requestUnstake(1n);
      expect((await staking.getStake(1n)).status).to.equal(StakeStatus.Unlocking);
      await time.increase(90n * DAY);
      expect((await staking.getStake(1n)).status).to.equal(StakeStatus.Unlocked);
    });
  });
});
