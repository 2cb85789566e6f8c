import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";

import {
  deployStakingFixture,
  latestTimestamp,
  newDevice,
  permitStruct,
  signConsent,
  signPermit,
} from "../../shared/fixtures";
import { DAY, DEFAULTS, MINIMUM, StakeStatus, StakeType } from "../../shared/constants";

const ONE = ethers.parseEther("1");
const HOST_AMOUNT = ethers.parseEther("1000");

async function stakedFixture() {
  const f = await deployStakingFixture();
  const stakingAddress = await f.staking.getAddress();
  for (const account of [f.alice, f.bob, f.carol]) {
    await f.token.connect(account).approve(stakingAddress, ethers.MaxUint256);
  }
  const device = newDevice();
  const consent = await signConsent(f.staking, device, f.alice.address);
  await f.staking.connect(f.alice).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent);
  // Stake 1: alice's host with `device`; stake 2: bob's gateway without a device.
  await f.staking.connect(f.bob).stake(StakeType.Gateway, MINIMUM[StakeType.Gateway]);
  return { ...f, stakingAddress, device };
}

async function fund(address: string) {
  const [funder] = await ethers.getSigners();
  await funder.sendTransaction({ to: address, value: ethers.parseEther("1") });
}

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
          .withArgs(StakeType.Host, 181n * DAY, 180n * DAY);
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

  describe("#stake", function () {
    it("creates a stake, pulls the tokens and reports it unassigned", async function () {
      const { staking, token, alice } = await loadFixture(deployStakingFixture);
      await token.connect(alice).approve(await staking.getAddress(), HOST_AMOUNT);
      const tx = staking.connect(alice).stake(StakeType.Host, HOST_AMOUNT);
      await expect(tx).to.emit(staking, "StakeCreated").withArgs(1n, alice.address, StakeType.Host, HOST_AMOUNT);
      await expect(tx).to.changeTokenBalances(token, [alice, staking], [-HOST_AMOUNT, HOST_AMOUNT]);
      const now = await latestTimestamp();
      const stake = await staking.getStake(1n);
      expect(stake.owner).to.equal(alice.address);
      expect(stake.stakeType).to.equal(StakeType.Host);
      expect(stake.status).to.equal(StakeStatus.Unassigned);
      expect(stake.amount).to.equal(HOST_AMOUNT);
      expect(stake.device).to.equal(ethers.ZeroAddress);
      expect(stake.createdAt).to.equal(now);
      expect(stake.activeSince).to.equal(now);
      expect(stake.unlockAt).to.equal(0n);
      expect(stake.minimumMet).to.equal(true);
      expect(await staking.stakeCount()).to.equal(1n);
    });

    it("accepts exactly the minimum of each type", async function () {
      const { staking, token, alice } = await loadFixture(deployStakingFixture);
      await token.connect(alice).approve(await staking.getAddress(), ethers.MaxUint256);
      for (const stakeType of [StakeType.Host, StakeType.Gateway, StakeType.Stargate]) {
        await expect(staking.connect(alice).stake(stakeType, MINIMUM[stakeType])).to.emit(staking, "StakeCreated");
      }
      expect(await staking.stakeCount()).to.equal(3n);
    });

    it("reverts below the type's minimum", async function () {
      const { staking, token, alice } = await loadFixture(deployStakingFixture);
      await token.connect(alice).approve(await staking.getAddress(), ethers.MaxUint256);
      const below = MINIMUM[StakeType.Gateway] - 1n;
      await expect(staking.connect(alice).stake(StakeType.Gateway, below))
        .to.be.revertedWithCustomError(staking, "StakeBelowMinimum")
        .withArgs(StakeType.Gateway, below, MINIMUM[StakeType.Gateway]);
      await expect(staking.connect(alice).stake(StakeType.Host, 0n))
        .to.be.revertedWithCustomError(staking, "StakeBelowMinimum")
        .withArgs(StakeType.Host, 0n, MINIMUM[StakeType.Host]);
    });

    it("reverts without an allowance", async function () {
      const { staking, token, alice } = await loadFixture(deployStakingFixture);
      await expect(staking.connect(alice).stake(StakeType.Host, HOST_AMOUNT))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(await staking.getAddress(), 0n, HOST_AMOUNT);
    });

    it("reverts while paused", async function () {
      const { staking, token, alice, pauser } = await loadFixture(deployStakingFixture);
      await token.connect(alice).approve(await staking.getAddress(), HOST_AMOUNT);
      await staking.connect(pauser).pause();
      await expect(staking.connect(alice).stake(StakeType.Host, HOST_AMOUNT)).to.be.revertedWithCustomError(
        staking,
        "EnforcedPause",
      );
    });
  });

  describe("#stakeWithPermit", function () {
    it("stakes in one transaction with a permit", async function () {
      const { staking, token, alice } = await loadFixture(deployStakingFixture);
      const deadline = (await latestTimestamp()) + 600n;
      const sig = await signPermit(token, alice, await staking.getAddress(), HOST_AMOUNT, deadline);
      const tx = staking.connect(alice).stakeWithPermit(StakeType.Host, HOST_AMOUNT, permitStruct(sig, deadline));
      await expect(tx).to.emit(staking, "StakeCreated").withArgs(1n, alice.address, StakeType.Host, HOST_AMOUNT);
      await expect(tx).to.changeTokenBalances(token, [alice, staking], [-HOST_AMOUNT, HOST_AMOUNT]);
      expect(await token.allowance(alice.address, await staking.getAddress())).to.equal(0n);
    });

    it("still works when someone front-ran the permit", async function () {
      const { staking, token, alice, bob } = await loadFixture(deployStakingFixture);
      const stakingAddress = await staking.getAddress();
      const deadline = (await latestTimestamp()) + 600n;
      const sig = await signPermit(token, alice, stakingAddress, HOST_AMOUNT, deadline);
      // An observer copies the permit from the mempool and submits it first.
      await token.connect(bob).permit(alice.address, stakingAddress, HOST_AMOUNT, deadline, sig.v, sig.r, sig.s);
      await expect(
        staking.connect(alice).stakeWithPermit(StakeType.Host, HOST_AMOUNT, permitStruct(sig, deadline)),
      ).to.emit(staking, "StakeCreated");
    });

    it("reverts with the token's allowance error when the permit is bad and no allowance exists", async function () {
      const { staking, token, alice, bob } = await loadFixture(deployStakingFixture);
      const stakingAddress = await staking.getAddress();
      const deadline = (await latestTimestamp()) + 600n;
      const sig = await signPermit(token, bob, stakingAddress, HOST_AMOUNT, deadline); // signed by the wrong owner
      await expect(staking.connect(alice).stakeWithPermit(StakeType.Host, HOST_AMOUNT, permitStruct(sig, deadline)))
        .to.be.revertedWithCustomError(token, "ERC20InsufficientAllowance")
        .withArgs(stakingAddress, 0n, HOST_AMOUNT);
    });

    it("reverts while paused", async function () {
      const { staking, token, alice, pauser } = await loadFixture(deployStakingFixture);
      const deadline = (await latestTimestamp()) + 600n;
      const sig = await signPermit(token, alice, await staking.getAddress(), HOST_AMOUNT, deadline);
      await staking.connect(pauser).pause();
      await expect(
        staking.connect(alice).stakeWithPermit(StakeType.Host, HOST_AMOUNT, permitStruct(sig, deadline)),
      ).to.be.revertedWithCustomError(staking, "EnforcedPause");
    });
  });

  describe("#stakeAndAssign", function () {
    it("creates the stake and binds the consenting device in one transaction", async function () {
      const { staking, token, alice } = await loadFixture(deployStakingFixture);
      await token.connect(alice).approve(await staking.getAddress(), HOST_AMOUNT);
      const device = newDevice();
      const consent = await signConsent(staking, device, alice.address);
      const tx = staking.connect(alice).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent);
      await expect(tx).to.emit(staking, "StakeCreated").withArgs(1n, alice.address, StakeType.Host, HOST_AMOUNT);
      await expect(tx).to.emit(staking, "DeviceAssigned").withArgs(1n, device.address);
      expect(await staking.isAdmitted(device.address)).to.equal(true);
      expect(await staking.stakeOfDevice(device.address)).to.equal(1n);
      expect(await staking.deviceNonce(device.address)).to.equal(1n);
      const status = await staking.deviceStatus(device.address);
      expect(status.stakeId).to.equal(1n);
      expect(status.owner).to.equal(alice.address);
      expect(status.stakeType).to.equal(StakeType.Host);
      expect(status.status).to.equal(StakeStatus.Assigned);
      expect(status.amount).to.equal(HOST_AMOUNT);
      expect(status.minimumStake).to.equal(MINIMUM[StakeType.Host]);
      expect(status.unlockAt).to.equal(0n);
      expect(status.activeSince).to.equal(await latestTimestamp());
      expect(status.minimumMet).to.equal(true);
      expect(status.admitted).to.equal(true);
      expect((await staking.getStake(1n)).device).to.equal(device.address);
    });

    it("works with a permit", async function () {
      const { staking, token, alice } = await loadFixture(deployStakingFixture);
      const deadline = (await latestTimestamp()) + 600n;
      const sig = await signPermit(token, alice, await staking.getAddress(), HOST_AMOUNT, deadline);
      const device = newDevice();
      const consent = await signConsent(staking, device, alice.address);
      await expect(
        staking
          .connect(alice)
          .stakeAndAssignWithPermit(StakeType.Host, HOST_AMOUNT, consent, permitStruct(sig, deadline)),
      )
        .to.emit(staking, "DeviceAssigned")
        .withArgs(1n, device.address);
      expect(await staking.isAdmitted(device.address)).to.equal(true);
    });

    it("reverts while paused", async function () {
      const { staking, alice, pauser } = await loadFixture(deployStakingFixture);
      const consent = await signConsent(staking, newDevice(), alice.address);
      await staking.connect(pauser).pause();
      await expect(
        staking.connect(alice).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent),
      ).to.be.revertedWithCustomError(staking, "EnforcedPause");
      const deadline = (await latestTimestamp()) + 600n;
      const permit = { deadline, v: 27, r: ethers.ZeroHash, s: ethers.ZeroHash };
      await expect(
        staking.connect(alice).stakeAndAssignWithPermit(StakeType.Host, HOST_AMOUNT, consent, permit),
      ).to.be.revertedWithCustomError(staking, "EnforcedPause");
    });

    describe("device consent", function () {
      it("rejects the zero device", async function () {
        const { staking, token, alice } = await loadFixture(deployStakingFixture);
        await token.connect(alice).approve(await staking.getAddress(), HOST_AMOUNT);
        const consent = { device: ethers.ZeroAddress, deadline: (await latestTimestamp()) + 60n, signature: "0x" };
        await expect(
          staking.connect(alice).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent),
        ).to.be.revertedWithCustomError(staking, "DeviceZeroAddress");
      });

      it("rejects an expired consent", async function () {
        const { staking, token, alice } = await loadFixture(deployStakingFixture);
        await token.connect(alice).approve(await staking.getAddress(), HOST_AMOUNT);
        const device = newDevice();
        const deadline = (await latestTimestamp()) + 10n;
        const consent = await signConsent(staking, device, alice.address, { deadline });
        await time.increaseTo(deadline + 1n);
        await expect(staking.connect(alice).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent))
          .to.be.revertedWithCustomError(staking, "DeviceConsentExpired")
          .withArgs(device.address, deadline);
      });

      it("accepts a consent on its deadline", async function () {
        const { staking, token, alice } = await loadFixture(deployStakingFixture);
        await token.connect(alice).approve(await staking.getAddress(), HOST_AMOUNT);
        const deadline = (await latestTimestamp()) + 10n;
        const consent = await signConsent(staking, newDevice(), alice.address, { deadline });
        await time.setNextBlockTimestamp(deadline);
        await expect(staking.connect(alice).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent)).to.emit(
          staking,
          "DeviceAssigned",
        );
      });

      it("rejects a consent signed by another key", async function () {
        const { staking, token, alice } = await loadFixture(deployStakingFixture);
        await token.connect(alice).approve(await staking.getAddress(), HOST_AMOUNT);
        const device = newDevice();
        const impostor = newDevice();
        const forged = await signConsent(staking, impostor, alice.address);
        const consent = { ...forged, device: device.address };
        await expect(staking.connect(alice).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent))
          .to.be.revertedWithCustomError(staking, "DeviceConsentInvalid")
          .withArgs(device.address, anyValue);
      });

      it("rejects a consent given to another owner", async function () {
        const { staking, token, alice, bob } = await loadFixture(deployStakingFixture);
        await token.connect(bob).approve(await staking.getAddress(), HOST_AMOUNT);
        const device = newDevice();
        const consent = await signConsent(staking, device, alice.address);
        await expect(staking.connect(bob).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent))
          .to.be.revertedWithCustomError(staking, "DeviceConsentInvalid")
          .withArgs(device.address, anyValue);
      });

      it("rejects a consent for another chain or another contract", async function () {
        const { staking, token, alice } = await loadFixture(deployStakingFixture);
        await token.connect(alice).approve(await staking.getAddress(), ethers.MaxUint256);
        const device = newDevice();
        for (const domain of [{ chainId: 1n }, { verifyingContract: await token.getAddress() }]) {
          const consent = await signConsent(staking, device, alice.address, { domain });
          await expect(staking.connect(alice).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent))
            .to.be.revertedWithCustomError(staking, "DeviceConsentInvalid")
            .withArgs(device.address, anyValue);
        }
      });

      it("rejects a wrong nonce and a malformed signature", async function () {
        const { staking, token, alice } = await loadFixture(deployStakingFixture);
        await token.connect(alice).approve(await staking.getAddress(), ethers.MaxUint256);
        const device = newDevice();
        const consent = await signConsent(staking, device, alice.address, { nonce: 1n });
        await expect(staking.connect(alice).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent))
          .to.be.revertedWithCustomError(staking, "DeviceConsentInvalid")
          .withArgs(device.address, anyValue);
        const malformed = { ...consent, signature: "0x1234" };
        await expect(staking.connect(alice).stakeAndAssign(StakeType.Host, HOST_AMOUNT, malformed))
          .to.be.revertedWithCustomError(staking, "DeviceConsentInvalid")
          .withArgs(device.address, ethers.ZeroAddress);
      });

      it("cannot be replayed once used", async function () {
        const { staking, alice, device } = await loadFixture(stakedFixture);
        // The consent that bound `device` to stake 1 used nonce 0; sign it again and unbind, then replay.
        const stale = await signConsent(staking, device, alice.address, { nonce: 0n });
        await staking.connect(alice).unassignDevice(1n);
        await expect(staking.connect(alice).assignDevice(1n, stale))
          .to.be.revertedWithCustomError(staking, "DeviceConsentInvalid")
          .withArgs(device.address, anyValue);
        const fresh = await signConsent(staking, device, alice.address);
        await expect(staking.connect(alice).assignDevice(1n, fresh)).to.emit(staking, "DeviceAssigned");
        expect(await staking.deviceNonce(device.address)).to.equal(2n);
      });

      it("rejects a device bound to another active stake", async function () {
        const { staking, alice, carol, device } = await loadFixture(stakedFixture);
        const consent = await signConsent(staking, device, carol.address);
        await expect(staking.connect(carol).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent))
          .to.be.revertedWithCustomError(staking, "DeviceAlreadyAssigned")
          .withArgs(device.address, 1n);
        void alice;
      });

      it("digest matches the EIP-712 typed data", async function () {
        const { staking, alice } = await loadFixture(deployStakingFixture);
        const [, name, version, chainId, verifyingContract] = await staking.eip712Domain();
        const device = newDevice().address;
        const expected = ethers.TypedDataEncoder.hash(
          { name, version, chainId, verifyingContract },
          {
            DeviceConsent: [
              { name: "device", type: "address" },
              { name: "owner", type: "address" },
              { name: "nonce", type: "uint256" },
              { name: "deadline", type: "uint256" },
            ],
          },
          { device, owner: alice.address, nonce: 7n, deadline: 123n },
        );
        expect(await staking.deviceConsentDigest(device, alice.address, 7n, 123n)).to.equal(expected);
        expect(name).to.equal("Edge StakeManager");
        expect(version).to.equal("1");
      });
    });
  });

  describe("#increase", function () {
    it("adds to the stake; yields see it from the next change of epoch on", async function () {
      const { staking, token, alice } = await loadFixture(stakedFixture);
      const before = await latestTimestamp();
      await time.increase(100);
      const tx = staking.connect(alice).increase(1n, ONE * 50n);
      await expect(tx)
        .to.emit(staking, "StakeIncreased")
        .withArgs(1n, ONE * 50n, HOST_AMOUNT + ONE * 50n);
      await expect(tx).to.changeTokenBalances(token, [alice, staking], [-(ONE * 50n), ONE * 50n]);
      const at = await latestTimestamp();
      expect((await staking.getStake(1n)).amount).to.equal(HOST_AMOUNT + ONE * 50n);
      expect(await staking.stakeAt(1n, before)).to.equal(HOST_AMOUNT);
      expect(await staking.stakeAt(1n, at - 1n)).to.equal(HOST_AMOUNT);
      expect(await staking.stakeAt(1n, at)).to.equal(HOST_AMOUNT + ONE * 50n);
    });

    it("works with a permit", async function () {
      const { staking, token, alice } = await loadFixture(stakedFixture);
      await token.connect(alice).approve(await staking.getAddress(), 0n);
      const deadline = (await latestTimestamp()) + 600n;
      const sig = await signPermit(token, alice, await staking.getAddress(), ONE, deadline);
      await expect(staking.connect(alice).increaseWithPermit(1n, ONE, permitStruct(sig, deadline)))
        .to.emit(staking, "StakeIncreased")
        .withArgs(1n, ONE, HOST_AMOUNT + ONE);
    });

    it("reverts for an unknown stake, a stranger, zero, an unlocking stake and while paused", async function () {
      const { staking, alice, bob, pauser } = await loadFixture(stakedFixture);
      await expect(staking.connect(alice).increase(9n, ONE))
        .to.be.revertedWithCustomError(staking, "StakeNotFound")
        .withArgs(9n);
      await expect(staking.connect(bob).increase(1n, ONE))
        .to.be.revertedWithCustomError(staking, "StakeNotOwner")
        .withArgs(1n, bob.address, alice.address);
      await expect(staking.connect(alice).increase(1n, 0n)).to.be.revertedWithCustomError(staking, "StakeZeroAmount");
      await staking.connect(alice).requestUnstake(1n);
      await expect(staking.connect(alice).increase(1n, ONE))
        .to.be.revertedWithCustomError(staking, "StakeNotActive")
        .withArgs(1n, StakeStatus.Unlocking);
      await staking.connect(pauser).pause();
      await expect(staking.connect(bob).increase(2n, ONE)).to.be.revertedWithCustomError(staking, "EnforcedPause");
      const deadline = (await latestTimestamp()) + 600n;
      const permit = { deadline, v: 27, r: ethers.ZeroHash, s: ethers.ZeroHash };
      await expect(staking.connect(bob).increaseWithPermit(2n, ONE, permit)).to.be.revertedWithCustomError(
        staking,
        "EnforcedPause",
      );
    });

    it("a top-up can restore admission after a slash below the minimum", async function () {
      const { staking, alice, slasher, device } = await loadFixture(stakedFixture);
      await staking.connect(slasher).slash(1n, HOST_AMOUNT - ONE, "test");
      expect(await staking.isAdmitted(device.address)).to.equal(false);
      await staking.connect(alice).increase(1n, MINIMUM[StakeType.Host]);
      expect(await staking.isAdmitted(device.address)).to.equal(true);
    });
  });

  describe("#assignDevice", function () {
    it("binds a device to a stake without one", async function () {
      const { staking, bob } = await loadFixture(stakedFixture);
      const device = newDevice();
      const consent = await signConsent(staking, device, bob.address);
      await expect(staking.connect(bob).assignDevice(2n, consent))
        .to.emit(staking, "DeviceAssigned")
        .withArgs(2n, device.address);
      expect(await staking.isAdmitted(device.address)).to.equal(true);
      expect((await staking.getStake(2n)).status).to.equal(StakeStatus.Assigned);
    });

    it("replaces the stake's current device", async function () {
      const { staking, alice, device } = await loadFixture(stakedFixture);
      const replacement = newDevice();
      const consent = await signConsent(staking, replacement, alice.address);
      const tx = staking.connect(alice).assignDevice(1n, consent);
      await expect(tx).to.emit(staking, "DeviceUnassigned").withArgs(1n, device.address);
      await expect(tx).to.emit(staking, "DeviceAssigned").withArgs(1n, replacement.address);
      expect(await staking.isAdmitted(device.address)).to.equal(false);
      expect(await staking.stakeOfDevice(device.address)).to.equal(0n);
      expect(await staking.deviceNonce(device.address)).to.equal(1n);
      expect(await staking.isAdmitted(replacement.address)).to.equal(true);
    });

    it("moves a device off a stake that is unbonding", async function () {
      const { staking, alice, device } = await loadFixture(stakedFixture);
      await staking.connect(alice).requestUnstake(1n);
      await staking.connect(alice).stake(StakeType.Host, HOST_AMOUNT); // stake 3
      const consent = await signConsent(staking, device, alice.address);
      const tx = staking.connect(alice).assignDevice(3n, consent);
      await expect(tx).to.emit(staking, "DeviceUnassigned").withArgs(1n, device.address);
      await expect(tx).to.emit(staking, "DeviceAssigned").withArgs(3n, device.address);
      expect((await staking.getStake(1n)).device).to.equal(ethers.ZeroAddress);
      expect(await staking.stakeOfDevice(device.address)).to.equal(3n);
      expect(await staking.isAdmitted(device.address)).to.equal(true);
    });

    it("reverts for the device it already has", async function () {
      const { staking, alice, device } = await loadFixture(stakedFixture);
      const consent = await signConsent(staking, device, alice.address);
      await expect(staking.connect(alice).assignDevice(1n, consent))
        .to.be.revertedWithCustomError(staking, "DeviceAlreadyAssigned")
        .withArgs(device.address, 1n);
    });

    it("reverts for a stranger, an inactive stake and while paused", async function () {
      const { staking, alice, bob, pauser } = await loadFixture(stakedFixture);
      const device = newDevice();
      const consent = await signConsent(staking, device, bob.address);
      await expect(staking.connect(alice).assignDevice(2n, consent))
        .to.be.revertedWithCustomError(staking, "StakeNotOwner")
        .withArgs(2n, alice.address, bob.address);
      await staking.connect(bob).requestUnstake(2n);
      await expect(staking.connect(bob).assignDevice(2n, consent))
        .to.be.revertedWithCustomError(staking, "StakeNotActive")
        .withArgs(2n, StakeStatus.Unlocking);
      await staking.connect(pauser).pause();
      await expect(staking.connect(bob).assignDevice(2n, consent)).to.be.revertedWithCustomError(
        staking,
        "EnforcedPause",
      );
    });
  });

  describe("#unassignDevice", function () {
    it("lets the owner unbind the device", async function () {
      const { staking, alice, device } = await loadFixture(stakedFixture);
      await expect(staking.connect(alice).unassignDevice(1n))
        .to.emit(staking, "DeviceUnassigned")
        .withArgs(1n, device.address);
      expect(await staking.isAdmitted(device.address)).to.equal(false);
      expect(await staking.stakeOfDevice(device.address)).to.equal(0n);
      expect((await staking.getStake(1n)).status).to.equal(StakeStatus.Unassigned);
      const status = await staking.deviceStatus(device.address);
      expect(status.stakeId).to.equal(0n);
      expect(status.admitted).to.equal(false);
    });

    it("lets the device key unbind itself, also while paused", async function () {
      const { staking, pauser, device } = await loadFixture(stakedFixture);
      await fund(device.address);
      await staking.connect(pauser).pause();
      await expect(staking.connect(device).unassignDevice(1n))
        .to.emit(staking, "DeviceUnassigned")
        .withArgs(1n, device.address);
    });

    it("reverts for a stranger or a stake without a device", async function () {
      const { staking, bob } = await loadFixture(stakedFixture);
      await expect(staking.connect(bob).unassignDevice(1n))
        .to.be.revertedWithCustomError(staking, "StakeNotOwnerOrDevice")
        .withArgs(1n, bob.address);
      await expect(staking.connect(bob).unassignDevice(2n))
        .to.be.revertedWithCustomError(staking, "StakeHasNoDevice")
        .withArgs(2n);
      await expect(staking.connect(bob).unassignDevice(5n))
        .to.be.revertedWithCustomError(staking, "StakeNotFound")
        .withArgs(5n);
    });
  });

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

  describe("#compoundFor", function () {
    it("lets only the rewards manager add yield, pulling the tokens", async function () {
      const { staking, token, admin, treasury, alice } = await loadFixture(stakedFixture);
      await expect(staking.connect(treasury).compoundFor(1n, ONE, alice.address))
        .to.be.revertedWithCustomError(staking, "NotRewardsManager")
        .withArgs(treasury.address);
      await expect(staking.connect(alice).setRewardsManager(treasury.address))
        .to.be.revertedWithCustomError(staking, "AccessControlUnauthorizedAccount")
        .withArgs(alice.address, ethers.ZeroHash);
      await expect(staking.connect(admin).setRewardsManager(treasury.address))
        .to.emit(staking, "RewardsManagerSet")
        .withArgs(treasury.address);
      expect(await staking.rewardsManager()).to.equal(treasury.address);
      await token.connect(treasury).approve(await staking.getAddress(), ONE);
      const tx = staking.connect(treasury).compoundFor(1n, ONE, alice.address);
      await expect(tx)
        .to.emit(staking, "StakeIncreased")
        .withArgs(1n, ONE, HOST_AMOUNT + ONE);
      await expect(tx).to.changeTokenBalances(token, [treasury, staking], [-ONE, ONE]);
    });

    it("reverts for an inactive or unknown stake, another owner and while paused", async function () {
      const { staking, admin, treasury, alice, bob, pauser } = await loadFixture(stakedFixture);
      await staking.connect(admin).setRewardsManager(treasury.address);
      await expect(staking.connect(treasury).compoundFor(1n, ONE, bob.address))
        .to.be.revertedWithCustomError(staking, "StakeNotOwner")
        .withArgs(1n, bob.address, alice.address);
      await expect(staking.connect(treasury).compoundFor(1n, 0n, alice.address)).to.be.revertedWithCustomError(
        staking,
        "StakeZeroAmount",
      );
      await expect(staking.connect(treasury).compoundFor(9n, ONE, alice.address))
        .to.be.revertedWithCustomError(staking, "StakeNotFound")
        .withArgs(9n);
      await staking.connect(alice).requestUnstake(1n);
      await expect(staking.connect(treasury).compoundFor(1n, ONE, alice.address))
        .to.be.revertedWithCustomError(staking, "StakeNotActive")
        .withArgs(1n, StakeStatus.Unlocking);
      await staking.connect(pauser).pause();
      await expect(staking.connect(treasury).compoundFor(2n, ONE, bob.address)).to.be.revertedWithCustomError(
        staking,
        "EnforcedPause",
      );
    });
  });

  describe("#stakeAt", function () {
    it("follows increases and slashes, is 0 before creation and after release", async function () {
      const { staking, alice, slasher } = await loadFixture(stakedFixture);
      const created = (await staking.getStake(1n)).createdAt;
      const points: Array<[bigint, bigint]> = [[created, HOST_AMOUNT]];
      let amount = HOST_AMOUNT;
      for (let i = 1n; i <= 12n; i++) {
        await time.increase(1000);
        if (i % 3n === 0n) {
          await staking.connect(slasher).slash(1n, i, "x");
          amount -= i;
        } else {
          await staking.connect(alice).increase(1n, i * ONE);
          amount += i * ONE;
        }
        points.push([await latestTimestamp(), amount]);
      }
      expect(await staking.stakeAt(1n, created - 1n)).to.equal(0n);
      for (let i = 0; i < points.length; i++) {
        const [at, value] = points[i];
        expect(await staking.stakeAt(1n, at)).to.equal(value, `at change ${i}`);
        expect(await staking.stakeAt(1n, at + 500n)).to.equal(value, `between changes ${i}`);
        if (i > 0) expect(await staking.stakeAt(1n, at - 1n)).to.equal(points[i - 1][1], `just before change ${i}`);
      }
      await staking.connect(alice).requestUnstake(1n);
      await staking.connect(alice).expressRelease(1n);
      const releasedAt = await latestTimestamp();
      expect(await staking.stakeAt(1n, releasedAt - 1n)).to.equal(amount);
      expect(await staking.stakeAt(1n, releasedAt)).to.equal(0n);
      await expect(staking.stakeAt(99n, 0n)).to.be.revertedWithCustomError(staking, "StakeNotFound").withArgs(99n);
    });

    it("returns the created amount for a stake that never changed", async function () {
      const { staking } = await loadFixture(stakedFixture);
      const created = (await staking.getStake(2n)).createdAt;
      expect(await staking.stakeAt(2n, created)).to.equal(MINIMUM[StakeType.Gateway]);
      expect(await staking.stakeAt(2n, created + 10n ** 6n)).to.equal(MINIMUM[StakeType.Gateway]);
    });

    it("refuses a change once the history is full", async function () {
      const { staking, alice, stakingAddress } = await loadFixture(stakedFixture);
      // 2^24 - 1 changes cannot be made in a test; write the length into stake 1's packed first slot instead.
      const coder = ethers.AbiCoder.defaultAbiCoder();
      let slot: string | undefined;
      for (let index = 0; index < 32 && !slot; index++) {
        const candidate = ethers.keccak256(coder.encode(["uint256", "uint256"], [1n, index]));
        const word = BigInt(await ethers.provider.getStorage(stakingAddress, candidate));
        if ((word & (2n ** 96n - 1n)) === HOST_AMOUNT) slot = candidate;
      }
      expect(slot, "stake 1's first slot").to.not.equal(undefined);
      const word = BigInt(await ethers.provider.getStorage(stakingAddress, slot!));
      const full = (word & (2n ** 232n - 1n)) | ((2n ** 24n - 1n) << 232n);
      await network.provider.send("hardhat_setStorageAt", [stakingAddress, slot!, ethers.toBeHex(full, 32)]);
      await expect(staking.connect(alice).increase(1n, ONE))
        .to.be.revertedWithCustomError(staking, "StakeHistoryFull")
        .withArgs(1n);
    });

    it("handles several changes in one block", async function () {
      const { staking, alice, slasher } = await loadFixture(stakedFixture);
      const before = await latestTimestamp();
      await network.provider.send("evm_setAutomine", [false]);
      try {
        await staking.connect(alice).increase(1n, ONE, { gasLimit: 200_000 });
        await staking.connect(slasher).slash(1n, 2n * ONE, "x", { gasLimit: 200_000 });
        await staking.connect(alice).increase(1n, 5n * ONE, { gasLimit: 200_000 });
        await network.provider.send("evm_mine");
      } finally {
        await network.provider.send("evm_setAutomine", [true]);
      }
      const at = await latestTimestamp();
      expect(at).to.be.greaterThan(before);
      expect(await staking.stakeAt(1n, at - 1n)).to.equal(HOST_AMOUNT);
      expect(await staking.stakeAt(1n, at)).to.equal(HOST_AMOUNT + 4n * ONE);
    });
  });

  describe("#yieldInputs", function () {
    const unpack = (word: bigint) => ({
      eligible: word !== 0n,
      stakeType: Number((word >> 136n) & 0xffn),
      activeSince: (word >> 96n) & (2n ** 40n - 1n),
      effectiveStake: word & (2n ** 96n - 1n),
    });

    it("reports eligibility, type, effective stake and tenure start, singly and in batches", async function () {
      const { staking, alice, bob, slasher } = await loadFixture(stakedFixture);
      const created1 = (await staking.getStake(1n)).createdAt;
      const created2 = (await staking.getStake(2n)).createdAt;
      const start = (await latestTimestamp()) + 100n;
      const end = start + DAY;
      await time.increaseTo(start + 10n);
      await staking.connect(alice).increase(1n, 5n * ONE); // counts from the next epoch
      await staking.connect(slasher).slash(2n, ONE, "x"); // counts at once
      await time.increaseTo(end + 10n);
      const single = await staking.yieldInputs(1n, start, end);
      expect([...single]).to.deep.equal([true, BigInt(StakeType.Host), HOST_AMOUNT, created1]);
      const words = await staking.yieldInputsBatch([1n, 2n, 3n, 99n], start, end);
      expect(unpack(words[0])).to.deep.equal({
        eligible: true,
        stakeType: StakeType.Host,
        activeSince: created1,
        effectiveStake: HOST_AMOUNT,
      });
      expect(unpack(words[1])).to.deep.equal({
        eligible: true,
        stakeType: StakeType.Gateway,
        activeSince: created2,
        effectiveStake: MINIMUM[StakeType.Gateway] - ONE,
      });
      expect(words[2]).to.equal(0n); // unknown stakes are never eligible
      expect(words[3]).to.equal(0n);
      // Not active since the epoch's start: created within it.
      expect((await staking.yieldInputs(1n, created1 - 1n, end)).eligible).to.equal(false);
      expect(await staking.stakeOwner(2n)).to.equal(bob.address);
      await expect(staking.stakeOwner(3n)).to.be.revertedWithCustomError(staking, "StakeNotFound").withArgs(3n);
    });

    it("counts an unstake requested after the epoch, but not one within it or a release", async function () {
      const { staking, alice, bob } = await loadFixture(stakedFixture);
      const start = (await latestTimestamp()) + 100n;
      const end = start + DAY;
      await time.increaseTo(start + 10n);
      await staking.connect(bob).requestUnstake(2n); // within the epoch
      await time.increaseTo(end);
      await staking.connect(alice).requestUnstake(1n); // at the epoch's end
      expect((await staking.yieldInputs(1n, start, end)).eligible).to.equal(true);
      expect((await staking.yieldInputs(2n, start, end)).eligible).to.equal(false);
      await staking.connect(alice).expressRelease(1n);
      expect((await staking.yieldInputs(1n, start, end)).eligible).to.equal(false);
    });
  });

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
        .withArgs(StakeType.Gateway, 180n * DAY + 1n, 180n * DAY);
      await expect(admin.setUnbondingPeriod(StakeType.Gateway, 0n))
        .to.emit(staking, "UnbondingPeriodSet")
        .withArgs(StakeType.Gateway, 0n);
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
