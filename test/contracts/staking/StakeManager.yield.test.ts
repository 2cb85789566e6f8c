/** StakeManager: what RewardsManager relies on: compounding yield, the amount history and the yield inputs. */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";

import { latestTimestamp } from "../../shared/fixtures";
import { DAY, MINIMUM, StakeStatus, StakeType } from "../../shared/constants";
import { ONE, HOST_AMOUNT, stakedFixture } from "./helpers";

describe("StakeManager", function () {
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

    it("L-3: an epoch that ended before a cancelled unstake request stays eligible, with its own tenure", async function () {
      const { staking, alice } = await loadFixture(stakedFixture);
      const created = (await staking.getStake(1n)).createdAt;
      const inputs = async (start: bigint, end: bigint) => [...(await staking.yieldInputs(1n, start, end))];
      // Epoch A ends, then alice asks to unstake and cancels before A is posted.
      const a = { start: created + 10n, end: created + 10n + DAY };
      await time.increaseTo(a.end + 100n);
      await staking.connect(alice).requestUnstake(1n);
      const requested = await latestTimestamp();
      await time.increase(3600);
      await staking.connect(alice).cancelUnstake(1n);
      const cancelled = await latestTimestamp();
      expect(await inputs(a.start, a.end)).to.deep.equal([true, BigInt(StakeType.Host), HOST_AMOUNT, created]);
      // Up to the request it was active; across the gap it was not; after the cancel it is again, tenure anew.
      expect((await inputs(requested - DAY, requested))[0]).to.equal(true);
      expect((await inputs(requested - DAY, requested + 1n))[0]).to.equal(false);
      expect((await inputs(created - 1n, a.end))[0]).to.equal(false); // began before the stake
      const b = { start: cancelled, end: cancelled + DAY };
      await time.increaseTo(b.end + 100n);
      expect(await inputs(b.start, b.end)).to.deep.equal([true, BigInt(StakeType.Host), HOST_AMOUNT, cancelled]);
      // A second request keeps both periods: the earlier one (kept at the first cancel) and the current one.
      await staking.connect(alice).requestUnstake(1n);
      expect((await inputs(a.start, a.end))[0]).to.equal(true);
      expect((await inputs(b.start, b.end))[0]).to.equal(true);
      // Its cancel keeps the period just ended and forgets the one before (documented: D36).
      await staking.connect(alice).cancelUnstake(1n);
      expect(await inputs(b.start, b.end)).to.deep.equal([true, BigInt(StakeType.Host), HOST_AMOUNT, cancelled]);
      expect((await inputs(a.start, a.end))[0]).to.equal(false);
      // A released stake earns nothing more, whatever its periods.
      await staking.connect(alice).requestUnstake(1n);
      await staking.connect(alice).expressRelease(1n);
      expect((await inputs(b.start, b.end))[0]).to.equal(false);
    });
  });
});
