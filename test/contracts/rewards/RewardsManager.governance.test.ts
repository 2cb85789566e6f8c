/** RewardsManager: yield parameters within bounds and the roles that may act. */
import { expect } from "chai";
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
