/** RewardsManager: construction and its bounds, and the epochs counted from genesis. */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";

import { POOL_FUNDING, deployRewardsFixture, latestTimestamp, signBatch } from "../../shared/fixtures";
import { DAY } from "../../shared/constants";
import { DEFAULT_YIELD_PARAMS } from "../../../offchain/common/yield";

describe("RewardsManager", function () {
  describe("deployment", function () {
    it("exposes its epochs, committee, parameters and token", async function () {
      const f = await loadFixture(deployRewardsFixture);
      expect(await f.rewards.stakeManager()).to.equal(await f.staking.getAddress());
      expect(await f.rewards.token()).to.equal(await f.token.getAddress());
      expect(await f.rewards.genesis()).to.equal(f.genesis);
      expect(await f.rewards.epochDuration()).to.equal(DAY);
      const [members, threshold, version] = await f.rewards.committee();
      expect(members).to.deep.equal(f.committee.map((w) => w.address));
      expect(threshold).to.equal(1n);
      expect(version).to.equal(1n);
      const params = await f.rewards.yieldParams();
      expect(params.hostBaseAprBps).to.equal(1000n);
      expect(params.gatewayBaseAprBps).to.equal(1500n);
      expect(params.stargateBaseAprBps).to.equal(2000n);
      expect(params.tenureStepBps).to.equal(50n);
      expect(params.maxTenureBonusBps).to.equal(500n);
      expect(await f.rewards.available()).to.equal(POOL_FUNDING);
      expect(await f.rewards.reserved()).to.equal(0n);
      expect(await f.token.allowance(await f.rewards.getAddress(), await f.staking.getAddress())).to.equal(
        ethers.MaxUint256,
      );
    });

    it("rejects invalid construction arguments", async function () {
      const f = await loadFixture(deployRewardsFixture);
      const factory = await ethers.getContractFactory("RewardsManager");
      const members = f.committee.map((w) => w.address);
      const deploy = (
        over: Partial<{
          sm: string;
          duration: bigint;
          members: string[];
          threshold: number;
          params: typeof DEFAULT_YIELD_PARAMS;
        }>,
      ) =>
        factory.deploy(
          over.sm ?? f.staking,
          f.admin.address,
          DAY,
          f.genesis,
          over.duration ?? DAY,
          over.members ?? members,
          over.threshold ?? 1,
          over.params ?? DEFAULT_YIELD_PARAMS,
        );
      await expect(deploy({ sm: ethers.ZeroAddress })).to.be.revertedWithCustomError(factory, "ZeroAddress");
      await expect(deploy({ duration: 0n }))
        .to.be.revertedWithCustomError(factory, "EpochDurationOutOfBounds")
        .withArgs(0n);
      await expect(deploy({ duration: 30n * DAY + 1n }))
        .to.be.revertedWithCustomError(factory, "EpochDurationOutOfBounds")
        .withArgs(30n * DAY + 1n);
      await expect(deploy({ members: [] }))
        .to.be.revertedWithCustomError(factory, "CommitteeInvalid")
        .withArgs(0n, 1n);
      await expect(deploy({ threshold: 0 }))
        .to.be.revertedWithCustomError(factory, "CommitteeInvalid")
        .withArgs(3n, 0n);
      await expect(deploy({ threshold: 4 }))
        .to.be.revertedWithCustomError(factory, "CommitteeInvalid")
        .withArgs(3n, 4n);
      const many = Array.from({ length: 33 }, (_, i) => ethers.zeroPadValue(ethers.toBeHex(i + 1), 20));
      await expect(deploy({ members: many }))
        .to.be.revertedWithCustomError(factory, "CommitteeInvalid")
        .withArgs(33n, 1n);
      await expect(deploy({ members: [members[0], ethers.ZeroAddress] }))
        .to.be.revertedWithCustomError(factory, "CommitteeMemberInvalid")
        .withArgs(ethers.ZeroAddress);
      await expect(deploy({ members: [members[0], members[1], members[0]] }))
        .to.be.revertedWithCustomError(factory, "CommitteeMemberInvalid")
        .withArgs(members[0]);
      await expect(
        deploy({ params: { ...DEFAULT_YIELD_PARAMS, stargateBaseAprBps: 5001n } }),
      ).to.be.revertedWithCustomError(factory, "YieldParamsOutOfBounds");
    });
  });

  describe("epochs", function () {
    it("counts epochs from genesis and reports their windows", async function () {
      const f = await loadFixture(deployRewardsFixture);
      expect(await f.rewards.currentEpoch()).to.equal(0n);
      expect(await f.rewards.epochWindow(0n)).to.deep.equal([f.genesis, f.genesis + DAY]);
      expect(await f.rewards.epochWindow(7n)).to.deep.equal([f.genesis + 7n * DAY, f.genesis + 8n * DAY]);
      await time.increaseTo(f.genesis + 3n * DAY);
      expect(await f.rewards.currentEpoch()).to.equal(3n);
    });

    it("is at epoch 0 (not yet closed) before a future genesis", async function () {
      const f = await loadFixture(deployRewardsFixture);
      const genesis = (await latestTimestamp()) + 1000n;
      const later = await ethers.deployContract("RewardsManager", [
        f.staking,
        f.admin.address,
        DAY,
        genesis,
        3600n,
        f.committee.map((w) => w.address),
        1,
        DEFAULT_YIELD_PARAMS,
      ]);
      expect(await later.currentEpoch()).to.equal(0n);
      const { packed, signatures } = await signBatch(later, f.committee.slice(0, 1), 0n, 0n, [
        { stakeId: 1n, score: 1n },
      ]);
      await expect(later.postScores(0n, 0n, packed, signatures))
        .to.be.revertedWithCustomError(later, "EpochNotClosed")
        .withArgs(0n, 0n);
    });
  });
});
