/** StakeManager: creating stakes (with allowance, permit or a device's consent) and topping them up. */
import { expect } from "chai";
import { ethers } from "hardhat";
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
import { MINIMUM, StakeStatus, StakeType } from "../../shared/constants";
import { ONE, HOST_AMOUNT, stakedFixture } from "./helpers";

describe("StakeManager", function () {
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
});
