/** RewardsManager: yield parameters within bounds and the roles that may act. */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

import { deployRewardsFixture, postBatch } from "../../shared/fixtures";
import { DAY, DEFAULTS, StakeType } from "../../shared/constants";
import { DEFAULT_YIELD_PARAMS, epochReward } from "../../../offchain/common/yield";
import { HOST, scoredFixture, window } from "./helpers";

describe("RewardsManager", function () {
  describe("governance", function () {
    it("changes yield parameters within bounds; new batches use them", async function () {
      const f = await loadFixture(scoredFixture);
      const params = { ...DEFAULT_YIELD_PARAMS, hostBaseAprBps: 2000n };
      await expect(f.rewards.connect(f.parameterAdmin).setYieldParams(params)).to.emit(f.rewards, "YieldParamsSet");
      await postBatch(f, 0n, [{ stakeId: 1n, score: 10_000n }]);
      const stake = await f.staking.getStake(1n);
      const { end } = await window(f, 0n);
      expect(await f.rewards.accrued(1n)).to.equal(
        epochReward({
          stakeType: StakeType.Host,
          effectiveStake: HOST,
          activeSince: stake.activeSince,
          epochEnd: end,
          epochDuration: DAY,
          score: 10_000n,
          params,
        }),
      );
      for (const bad of [
        { ...DEFAULT_YIELD_PARAMS, hostBaseAprBps: 5001n },
        { ...DEFAULT_YIELD_PARAMS, gatewayBaseAprBps: 5001n },
        { ...DEFAULT_YIELD_PARAMS, tenureStepBps: 1001n },
        { ...DEFAULT_YIELD_PARAMS, maxTenureBonusBps: 5001n },
      ]) {
        await expect(f.rewards.connect(f.parameterAdmin).setYieldParams(bad)).to.be.revertedWithCustomError(
          f.rewards,
          "YieldParamsOutOfBounds",
        );
      }
    });

    it("I-4: the pause flag, yield parameters and committee version and threshold share one storage slot", async function () {
      const f = await loadFixture(deployRewardsFixture);
      const params = {
        hostBaseAprBps: 1201n,
        gatewayBaseAprBps: 1302n,
        stargateBaseAprBps: 1403n,
        tenureStepBps: 104n,
        maxTenureBonusBps: 505n,
      };
      await f.rewards.connect(f.parameterAdmin).setYieldParams(params);
      expect(await f.rewards.yieldParams()).to.deep.equal(Object.values(params));
      const [, threshold, version] = await f.rewards.committee();
      // Pausable's bool, then the five 16-bit parameters, the 64-bit version and the 8-bit threshold.
      const packed = (paused: bigint) =>
        paused |
        (params.hostBaseAprBps << 8n) |
        (params.gatewayBaseAprBps << 24n) |
        (params.stargateBaseAprBps << 40n) |
        (params.tenureStepBps << 56n) |
        (params.maxTenureBonusBps << 72n) |
        (version << 88n) |
        (threshold << 152n);
      const address = await f.rewards.getAddress();
      const slots = async (paused: bigint) => {
        const found: number[] = [];
        for (let slot = 0; slot < 16; slot++) {
          if (BigInt(await ethers.provider.getStorage(address, slot)) === packed(paused)) found.push(slot);
        }
        return found;
      };
      const unpaused = await slots(0n);
      expect(unpaused).to.have.length(1);
      await f.rewards.connect(f.pauser).pause();
      expect(await slots(1n)).to.deep.equal(unpaused);
    });

    it("lets only the right roles act", async function () {
      const f = await loadFixture(deployRewardsFixture);
      const check = async (call: () => Promise<unknown>, role: string) =>
        expect(call())
          .to.be.revertedWithCustomError(f.rewards, "AccessControlUnauthorizedAccount")
          .withArgs(f.alice.address, role);
      const alice = f.rewards.connect(f.alice);
      await check(() => alice.setCommittee([f.alice.address], 1), await f.rewards.ORACLE_ADMIN_ROLE());
      await check(() => alice.setYieldParams(DEFAULT_YIELD_PARAMS), await f.rewards.PARAMETER_ADMIN_ROLE());
      await check(() => alice.pause(), await f.rewards.PAUSER_ROLE());
      await check(() => alice.unpause(), await f.rewards.PAUSER_ROLE());
      await expect(f.rewards.connect(f.pauser).pause()).to.emit(f.rewards, "Paused");
      await expect(f.rewards.connect(f.pauser).unpause()).to.emit(f.rewards, "Unpaused");
      await expect(f.rewards.connect(f.parameterAdmin).setCommittee([f.alice.address], 2))
        .to.be.revertedWithCustomError(f.rewards, "CommitteeInvalid")
        .withArgs(1n, 2n);
      expect(DEFAULTS.adminDelay).to.equal(await f.rewards.defaultAdminDelay());
    });
  });
});
