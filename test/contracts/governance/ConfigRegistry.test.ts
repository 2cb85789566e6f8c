import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

const HASH_1 = ethers.keccak256(ethers.toUtf8Bytes("version 1"));
const HASH_2 = ethers.keccak256(ethers.toUtf8Bytes("version 2"));
const HASH_3 = ethers.keccak256(ethers.toUtf8Bytes("version 3"));
const DELAY = 3600n;

async function registryFixture() {
  const [admin, publisher, signer, stranger] = await ethers.getSigners();
  const registry = await ethers.deployContract("ConfigRegistry", [admin.address, DELAY, publisher.address]);
  const PUBLISHER_ROLE = await registry.PUBLISHER_ROLE();
  const DELTA_SIGNER_ROLE = await registry.DELTA_SIGNER_ROLE();
  return { registry, admin, publisher, signer, stranger, PUBLISHER_ROLE, DELTA_SIGNER_ROLE };
}

describe("ConfigRegistry", function () {
  describe("#constructor", function () {
    it("gives the admin the default admin role with its delay and the publisher both roles", async function () {
      const { registry, admin, publisher, stranger, PUBLISHER_ROLE, DELTA_SIGNER_ROLE } =
        await loadFixture(registryFixture);
      expect(await registry.defaultAdmin()).to.equal(admin.address);
      expect(await registry.defaultAdminDelay()).to.equal(DELAY);
      expect(PUBLISHER_ROLE).to.equal(ethers.id("PUBLISHER_ROLE"));
      expect(DELTA_SIGNER_ROLE).to.equal(ethers.id("DELTA_SIGNER_ROLE"));
      expect(await registry.hasRole(PUBLISHER_ROLE, publisher.address)).to.equal(true);
      expect(await registry.hasRole(DELTA_SIGNER_ROLE, publisher.address)).to.equal(true);
      expect(await registry.isDeltaSigner(publisher.address)).to.equal(true);
      expect(await registry.hasRole(PUBLISHER_ROLE, admin.address)).to.equal(false);
      expect(await registry.isDeltaSigner(admin.address)).to.equal(false);
      expect(await registry.isDeltaSigner(stranger.address)).to.equal(false);
    });

    it("grants no role when the publisher is the zero address", async function () {
      const [admin] = await ethers.getSigners();
      const registry = await ethers.deployContract("ConfigRegistry", [admin.address, 0n, ethers.ZeroAddress]);
      expect(await registry.hasRole(await registry.PUBLISHER_ROLE(), ethers.ZeroAddress)).to.equal(false);
      expect(await registry.isDeltaSigner(ethers.ZeroAddress)).to.equal(false);
      await expect(registry.connect(admin).publish(1n, HASH_1))
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, await registry.PUBLISHER_ROLE());
    });

    it("refuses the zero address as admin (OpenZeppelin's rule)", async function () {
      const factory = await ethers.getContractFactory("ConfigRegistry");
      await expect(factory.deploy(ethers.ZeroAddress, 0n, ethers.ZeroAddress))
        .to.be.revertedWithCustomError(factory, "AccessControlInvalidDefaultAdmin")
        .withArgs(ethers.ZeroAddress);
    });
  });

  describe("#latest and #hashOf", function () {
    it("answer version 0, the zero hash and zero for any version before anything is published", async function () {
      const { registry } = await loadFixture(registryFixture);
      expect(await registry.latest()).to.deep.equal([0n, ethers.ZeroHash]);
      for (const version of [0n, 1n, 2n, 2n ** 64n - 1n])
        expect(await registry.hashOf(version)).to.equal(ethers.ZeroHash);
    });
  });

  describe("#publish", function () {
    it("anchors version 1, then 2, each with its hash, and emits ConfigPublished", async function () {
      const { registry, publisher } = await loadFixture(registryFixture);
      await expect(registry.connect(publisher).publish(1n, HASH_1))
        .to.emit(registry, "ConfigPublished")
        .withArgs(1n, HASH_1, publisher.address);
      expect(await registry.latest()).to.deep.equal([1n, HASH_1]);
      await expect(registry.connect(publisher).publish(2n, HASH_2))
        .to.emit(registry, "ConfigPublished")
        .withArgs(2n, HASH_2, publisher.address);
      expect(await registry.latest()).to.deep.equal([2n, HASH_2]);
      expect(await registry.hashOf(1n)).to.equal(HASH_1);
      expect(await registry.hashOf(2n)).to.equal(HASH_2);
      expect(await registry.hashOf(3n)).to.equal(ethers.ZeroHash);
    });

    it("accepts the same hash again for the next version (a republished document is a new version)", async function () {
      const { registry, publisher } = await loadFixture(registryFixture);
      await registry.connect(publisher).publish(1n, HASH_1);
      await expect(registry.connect(publisher).publish(2n, HASH_1)).to.emit(registry, "ConfigPublished");
      expect(await registry.hashOf(2n)).to.equal(HASH_1);
    });

    describe("when the version is not latest + 1", function () {
      it("refuses 0 and 2 as the first version with ConfigVersionNotNext(version, 1)", async function () {
        const { registry, publisher } = await loadFixture(registryFixture);
        for (const version of [0n, 2n, 2n ** 64n - 1n]) {
          await expect(registry.connect(publisher).publish(version, HASH_1))
            .to.be.revertedWithCustomError(registry, "ConfigVersionNotNext")
            .withArgs(version, 1n);
        }
      });

      it("refuses a version already anchored (replay), an older one and a gap, keeping the history", async function () {
        const { registry, publisher } = await loadFixture(registryFixture);
        await registry.connect(publisher).publish(1n, HASH_1);
        await registry.connect(publisher).publish(2n, HASH_2);
        for (const version of [1n, 2n, 4n]) {
          await expect(registry.connect(publisher).publish(version, HASH_3))
            .to.be.revertedWithCustomError(registry, "ConfigVersionNotNext")
            .withArgs(version, 3n);
        }
        expect(await registry.latest()).to.deep.equal([2n, HASH_2]);
        expect(await registry.hashOf(1n)).to.equal(HASH_1);
        expect(await registry.hashOf(2n)).to.equal(HASH_2);
      });
    });

    it("refuses the zero hash with ConfigHashZero", async function () {
      const { registry, publisher } = await loadFixture(registryFixture);
      await expect(registry.connect(publisher).publish(1n, ethers.ZeroHash)).to.be.revertedWithCustomError(
        registry,
        "ConfigHashZero",
      );
      expect(await registry.latest()).to.deep.equal([0n, ethers.ZeroHash]);
    });

    it("checks the role before the version (a stranger learns nothing from the error)", async function () {
      const { registry, stranger, PUBLISHER_ROLE } = await loadFixture(registryFixture);
      await expect(registry.connect(stranger).publish(7n, ethers.ZeroHash))
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PUBLISHER_ROLE);
    });
  });

  describe("roles", function () {
    it("refuses publishing by the admin and by a delta signer that is not a publisher", async function () {
      const { registry, admin, signer, PUBLISHER_ROLE, DELTA_SIGNER_ROLE } = await loadFixture(registryFixture);
      await registry.connect(admin).grantRole(DELTA_SIGNER_ROLE, signer.address);
      for (const account of [admin, signer]) {
        await expect(registry.connect(account).publish(1n, HASH_1))
          .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
          .withArgs(account.address, PUBLISHER_ROLE);
      }
    });

    it("lets the admin grant and revoke PUBLISHER_ROLE, which starts and stops publishing", async function () {
      const { registry, admin, signer, PUBLISHER_ROLE } = await loadFixture(registryFixture);
      await expect(registry.connect(admin).grantRole(PUBLISHER_ROLE, signer.address))
        .to.emit(registry, "RoleGranted")
        .withArgs(PUBLISHER_ROLE, signer.address, admin.address);
      await expect(registry.connect(signer).publish(1n, HASH_1))
        .to.emit(registry, "ConfigPublished")
        .withArgs(1n, HASH_1, signer.address);
      await registry.connect(admin).revokeRole(PUBLISHER_ROLE, signer.address);
      await expect(registry.connect(signer).publish(2n, HASH_2))
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(signer.address, PUBLISHER_ROLE);
    });

    it("lets the admin grant and revoke DELTA_SIGNER_ROLE, which isDeltaSigner follows at once", async function () {
      const { registry, admin, signer, DELTA_SIGNER_ROLE } = await loadFixture(registryFixture);
      expect(await registry.isDeltaSigner(signer.address)).to.equal(false);
      await registry.connect(admin).grantRole(DELTA_SIGNER_ROLE, signer.address);
      expect(await registry.isDeltaSigner(signer.address)).to.equal(true);
      await expect(registry.connect(admin).revokeRole(DELTA_SIGNER_ROLE, signer.address))
        .to.emit(registry, "RoleRevoked")
        .withArgs(DELTA_SIGNER_ROLE, signer.address, admin.address);
      expect(await registry.isDeltaSigner(signer.address)).to.equal(false);
    });

    it("lets a holder renounce its own roles (a leaked key withdrawn without the admin)", async function () {
      const { registry, publisher, PUBLISHER_ROLE, DELTA_SIGNER_ROLE } = await loadFixture(registryFixture);
      await registry.connect(publisher).renounceRole(DELTA_SIGNER_ROLE, publisher.address);
      await registry.connect(publisher).renounceRole(PUBLISHER_ROLE, publisher.address);
      expect(await registry.isDeltaSigner(publisher.address)).to.equal(false);
      await expect(registry.connect(publisher).publish(1n, HASH_1)).to.be.revertedWithCustomError(
        registry,
        "AccessControlUnauthorizedAccount",
      );
    });

    it("refuses role changes by anyone but the admin", async function () {
      const { registry, publisher, stranger, PUBLISHER_ROLE, DELTA_SIGNER_ROLE } = await loadFixture(registryFixture);
      const ADMIN = await registry.DEFAULT_ADMIN_ROLE();
      for (const role of [PUBLISHER_ROLE, DELTA_SIGNER_ROLE]) {
        await expect(registry.connect(publisher).grantRole(role, stranger.address))
          .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
          .withArgs(publisher.address, ADMIN);
        await expect(registry.connect(stranger).revokeRole(role, publisher.address))
          .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
          .withArgs(stranger.address, ADMIN);
      }
    });

    it("moves the default admin in two steps after the delay", async function () {
      const { registry, admin, stranger } = await loadFixture(registryFixture);
      await registry.connect(admin).beginDefaultAdminTransfer(stranger.address);
      const [, schedule] = await registry.pendingDefaultAdmin();
      await expect(registry.connect(stranger).acceptDefaultAdminTransfer())
        .to.be.revertedWithCustomError(registry, "AccessControlEnforcedDefaultAdminDelay")
        .withArgs(schedule);
      await ethers.provider.send("evm_setNextBlockTimestamp", [Number(schedule) + 1]);
      await registry.connect(stranger).acceptDefaultAdminTransfer();
      expect(await registry.defaultAdmin()).to.equal(stranger.address);
    });
  });
});
