/** StakeManager: binding devices to stakes and unbinding them. */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

import { newDevice, signConsent } from "../../shared/fixtures";
import { StakeStatus, StakeType } from "../../shared/constants";
import { HOST_AMOUNT, stakedFixture, fund } from "./helpers";

describe("StakeManager", function () {
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

  describe("#revokeConsent", function () {
    it("I-9: the device key revokes a signed, unused consent by moving its nonce (also while paused)", async function () {
      const { staking, bob, pauser } = await loadFixture(stakedFixture);
      const device = newDevice();
      await fund(device.address);
      const consent = await signConsent(staking, device, bob.address); // signed for nonce 0, not used
      await staking.connect(pauser).pause();
      await expect(staking.connect(device).revokeConsent())
        .to.emit(staking, "ConsentRevoked")
        .withArgs(device.address, 0n);
      await staking.connect(pauser).unpause();
      expect(await staking.deviceNonce(device.address)).to.equal(1n);
      await expect(staking.connect(bob).assignDevice(2n, consent)).to.be.revertedWithCustomError(
        staking,
        "DeviceConsentInvalid",
      );
      // A consent for the new nonce works as before.
      await expect(staking.connect(bob).assignDevice(2n, await signConsent(staking, device, bob.address)))
        .to.emit(staking, "DeviceAssigned")
        .withArgs(2n, device.address);
      expect(await staking.deviceNonce(device.address)).to.equal(2n);
    });

    it("I-9: revoking leaves a current assignment in place", async function () {
      const { staking, device } = await loadFixture(stakedFixture);
      await fund(device.address);
      await expect(staking.connect(device).revokeConsent())
        .to.emit(staking, "ConsentRevoked")
        .withArgs(device.address, 1n);
      expect(await staking.deviceNonce(device.address)).to.equal(2n);
      expect(await staking.stakeOfDevice(device.address)).to.equal(1n);
      expect(await staking.isAdmitted(device.address)).to.equal(true);
    });
  });
});
