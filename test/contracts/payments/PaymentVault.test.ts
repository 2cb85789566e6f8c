import { expect } from "chai";
import { ethers } from "hardhat";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";

import {
  PAYMENT_LIMITS,
  PAYMENT_PARAMS,
  deployPaymentsFixture,
  deployRewardsFixture,
  latestTimestamp,
  signPermit,
} from "../../shared/fixtures";
import { DAY } from "../../shared/constants";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";

const ONE = ethers.parseEther("1");
const HASH = (n: number) => ethers.keccak256(ethers.toUtf8Bytes(`bill ${n}`));

enum Skip {
  AlreadySettled = 0,
  PeriodTooOld = 1,
}

/** alice has 1,000 on deposit and dave (referrer) referred her; bob has 100 and no referrer. */
async function fundedFixture() {
  const f = await deployPaymentsFixture();
  await f.vault.connect(f.alice).deposit(1000n * ONE);
  await f.vault.connect(f.alice).setReferrer(f.referrer.address);
  await f.vault.connect(f.bob).deposit(100n * ONE);
  return f;
}

const bill = (customer: string, amount: bigint, n = 0) => ({ customer, amount, billHash: HASH(n) });

describe("PaymentVault", function () {
  describe("deployment", function () {
    it("exposes its token, parameters and recipients", async function () {
      const f = await loadFixture(deployPaymentsFixture);
      expect(await f.vault.token()).to.equal(await f.token.getAddress());
      expect(await f.vault.treasury()).to.equal(f.treasury.address);
      expect(await f.vault.rewardPool()).to.equal(f.rewardPool.address);
      const p = await f.vault.params();
      expect([
        p.referrerShareBps,
        p.rewardPoolShareBps,
        p.withdrawalNotice,
        p.freeBuffer,
        p.withdrawalWindow,
      ]).to.deep.equal([1000n, 2000n, 7n * DAY, ethers.parseEther("5"), 2n * DAY]);
      expect(await f.vault.MIN_WITHDRAWAL_NOTICE()).to.equal(PAYMENT_LIMITS.minWithdrawalNotice);
      expect(await f.vault.billingLimit()).to.deep.equal([DAY, PAYMENT_LIMITS.billingCapacity]);
    });

    it("rejects zero addresses and out-of-bounds parameters", async function () {
      const f = await loadFixture(deployPaymentsFixture);
      const factory = await ethers.getContractFactory("PaymentVault");
      const args = (over: Partial<{ token: string; treasury: string; pool: string; params: typeof PAYMENT_PARAMS }>) =>
        factory.deploy(
          over.token ?? (f.token as unknown as string),
          f.admin.address,
          DAY,
          over.treasury ?? f.treasury.address,
          over.pool ?? f.rewardPool.address,
          over.params ?? PAYMENT_PARAMS,
          PAYMENT_LIMITS.minWithdrawalNotice,
          PAYMENT_LIMITS.billingWindow,
          PAYMENT_LIMITS.billingCapacity,
        );
      for (const over of [
        { token: ethers.ZeroAddress },
        { treasury: ethers.ZeroAddress },
        { pool: ethers.ZeroAddress },
      ]) {
        await expect(args(over)).to.be.revertedWithCustomError(factory, "PaymentZeroAddress");
      }
      for (const params of [
        { ...PAYMENT_PARAMS, referrerShareBps: 2501n },
        { ...PAYMENT_PARAMS, rewardPoolShareBps: 5001n },
        { ...PAYMENT_PARAMS, withdrawalNotice: 30n * DAY + 1n },
        { ...PAYMENT_PARAMS, withdrawalNotice: PAYMENT_LIMITS.minWithdrawalNotice - 1n },
        { ...PAYMENT_PARAMS, withdrawalWindow: 3599n },
        { ...PAYMENT_PARAMS, withdrawalWindow: 30n * DAY + 1n },
      ]) {
        await expect(args({ params })).to.be.revertedWithCustomError(factory, "ParamsOutOfBounds");
      }
    });
  });

  describe("deposits", function () {
    it("credits the caller or another customer", async function () {
      const f = await loadFixture(deployPaymentsFixture);
      let tx = f.vault.connect(f.alice).deposit(10n * ONE);
      await expect(tx)
        .to.emit(f.vault, "Deposited")
        .withArgs(f.alice.address, f.alice.address, 10n * ONE);
      await expect(tx).to.changeTokenBalances(f.token, [f.alice, f.vault], [-10n * ONE, 10n * ONE]);
      tx = f.vault.connect(f.alice).depositFor(f.carol.address, 3n * ONE);
      await expect(tx)
        .to.emit(f.vault, "Deposited")
        .withArgs(f.carol.address, f.alice.address, 3n * ONE);
      expect(await f.vault.balanceOf(f.alice.address)).to.equal(10n * ONE);
      expect(await f.vault.balanceOf(f.carol.address)).to.equal(3n * ONE);
    });

    it("takes a permit in the same transaction, even when front-run", async function () {
      const f = await loadFixture(deployPaymentsFixture);
      const [, , , , , , , , , , , stranger] = await ethers.getSigners();
      await f.token.connect(f.treasury).transfer(stranger.address, 50n * ONE);
      const spender = await f.vault.getAddress();
      const deadline = (await latestTimestamp()) + 600n;
      const sig = await signPermit(f.token, stranger, spender, 20n * ONE, deadline);
      await expect(
        f.vault.connect(stranger).depositWithPermit(stranger.address, 20n * ONE, deadline, sig.v, sig.r, sig.s),
      )
        .to.emit(f.vault, "Deposited")
        .withArgs(stranger.address, stranger.address, 20n * ONE);
      const again = await signPermit(f.token, stranger, spender, 5n * ONE, deadline);
      await f.token.connect(f.bob).permit(stranger.address, spender, 5n * ONE, deadline, again.v, again.r, again.s);
      await expect(
        f.vault.connect(stranger).depositWithPermit(f.alice.address, 5n * ONE, deadline, again.v, again.r, again.s),
      ).to.emit(f.vault, "Deposited");
      expect(await f.vault.balanceOf(f.alice.address)).to.equal(5n * ONE);
    });

    it("reverts for zero, the zero customer, no allowance and while paused", async function () {
      const f = await loadFixture(deployPaymentsFixture);
      await expect(f.vault.connect(f.alice).deposit(0n)).to.be.revertedWithCustomError(f.vault, "PaymentZeroAmount");
      await expect(f.vault.connect(f.alice).depositFor(ethers.ZeroAddress, ONE)).to.be.revertedWithCustomError(
        f.vault,
        "PaymentZeroAddress",
      );
      await f.token.connect(f.alice).approve(await f.vault.getAddress(), 0n);
      await expect(f.vault.connect(f.alice).deposit(ONE))
        .to.be.revertedWithCustomError(f.token, "ERC20InsufficientAllowance")
        .withArgs(await f.vault.getAddress(), 0n, ONE);
      await f.vault.connect(f.pauser).pause();
      await expect(f.vault.connect(f.bob).deposit(ONE)).to.be.revertedWithCustomError(f.vault, "EnforcedPause");
      await expect(f.vault.connect(f.bob).depositFor(f.alice.address, ONE)).to.be.revertedWithCustomError(
        f.vault,
        "EnforcedPause",
      );
      await expect(
        f.vault.connect(f.bob).depositWithPermit(f.bob.address, ONE, 0n, 27, ethers.ZeroHash, ethers.ZeroHash),
      ).to.be.revertedWithCustomError(f.vault, "EnforcedPause");
    });
  });

  describe("customer settings", function () {
    it("sets a spending cap and a referrer, once, never oneself", async function () {
      const f = await loadFixture(deployPaymentsFixture);
      await expect(f.vault.connect(f.alice).setSpendingCap(7n * ONE))
        .to.emit(f.vault, "SpendingCapSet")
        .withArgs(f.alice.address, 7n * ONE, 1n);
      expect(await f.vault.spendingCap(f.alice.address)).to.equal(7n * ONE);
      await expect(f.vault.connect(f.alice).setReferrer(f.alice.address))
        .to.be.revertedWithCustomError(f.vault, "SelfReferral")
        .withArgs(f.alice.address);
      await expect(f.vault.connect(f.alice).setReferrer(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.vault,
        "PaymentZeroAddress",
      );
      await expect(f.vault.connect(f.alice).setReferrer(f.referrer.address))
        .to.emit(f.vault, "ReferrerSet")
        .withArgs(f.alice.address, f.referrer.address);
      await expect(f.vault.connect(f.alice).setReferrer(f.bob.address))
        .to.be.revertedWithCustomError(f.vault, "ReferrerAlreadySet")
        .withArgs(f.alice.address, f.referrer.address);
      expect(await f.vault.referrerOf(f.alice.address)).to.equal(f.referrer.address);
    });
  });

  describe("#settle", function () {
    it("charges the bill, credits the referrer and splits the revenue", async function () {
      const f = await loadFixture(fundedFixture);
      const amount = 123n * ONE + 7n;
      const tx = f.vault.connect(f.biller).settle(5, [bill(f.alice.address, amount)]);
      const referral = amount / 10n;
      const pool = (amount * 2000n) / 10000n;
      await expect(tx).to.emit(f.vault, "BillSettled").withArgs(f.alice.address, 5n, HASH(0), amount, amount, 0n);
      await expect(tx).to.emit(f.vault, "ReferralCredited").withArgs(f.referrer.address, f.alice.address, referral);
      await expect(tx)
        .to.emit(f.vault, "RevenueSplit")
        .withArgs(5n, amount, referral, pool, amount - referral - pool);
      await expect(tx).to.changeTokenBalances(
        f.token,
        [f.vault, f.rewardPool, f.treasury],
        [-(pool + amount - referral - pool), pool, amount - referral - pool],
      );
      expect(await f.vault.balanceOf(f.alice.address)).to.equal(1000n * ONE - amount);
      expect(await f.vault.referralCredit(f.referrer.address)).to.equal(referral);
      expect(await f.vault.isSettled(f.alice.address, 5n)).to.equal(true);
      expect(await f.vault.isSettled(f.alice.address, 4n)).to.equal(false);
      expect(await f.vault.lastSettledPeriod(f.alice.address)).to.deep.equal([true, 5n]);
      expect(await f.vault.lastSettledPeriod(f.bob.address)).to.deep.equal([false, 0n]);
    });

    it("charges min(amount, cap, balance) and records the shortfall as debt", async function () {
      const f = await loadFixture(fundedFixture);
      await f.vault.connect(f.alice).setSpendingCap(50n * ONE);
      const tx = f.vault
        .connect(f.biller)
        .settle(1, [bill(f.alice.address, 80n * ONE, 1), bill(f.bob.address, 130n * ONE, 2)]);
      await expect(tx)
        .to.emit(f.vault, "BillSettled")
        .withArgs(f.alice.address, 1n, HASH(1), 80n * ONE, 50n * ONE, 30n * ONE);
      await expect(tx)
        .to.emit(f.vault, "BillSettled")
        .withArgs(f.bob.address, 1n, HASH(2), 130n * ONE, 100n * ONE, 30n * ONE);
      expect(await f.vault.outstanding(f.alice.address)).to.equal(30n * ONE);
      expect(await f.vault.outstanding(f.bob.address)).to.equal(30n * ONE);
      expect(await f.vault.balanceOf(f.bob.address)).to.equal(0n);
      expect(await f.vault.isInGoodStanding(f.bob.address)).to.equal(false);
      // No referrer for bob: the treasury takes the referrer's part.
      expect(await f.vault.referralCredit(f.referrer.address)).to.equal(5n * ONE);
    });

    it("settles each (customer, period) once: a retried batch is harmless", async function () {
      const f = await loadFixture(fundedFixture);
      const bills = [bill(f.alice.address, 10n * ONE), bill(f.bob.address, 10n * ONE)];
      await f.vault.connect(f.biller).settle(3, bills);
      const before = [await f.vault.balanceOf(f.alice.address), await f.vault.balanceOf(f.bob.address)];
      const retry = f.vault.connect(f.biller).settle(3, [...bills, bill(f.carol.address, 0n)]);
      await expect(retry).to.emit(f.vault, "BillSkipped").withArgs(f.alice.address, 3n, HASH(0), Skip.AlreadySettled);
      await expect(retry).to.emit(f.vault, "BillSkipped").withArgs(f.bob.address, 3n, HASH(0), Skip.AlreadySettled);
      await expect(retry).to.emit(f.vault, "BillSettled").withArgs(f.carol.address, 3n, HASH(0), 0n, 0n, 0n);
      await expect(retry).to.emit(f.vault, "RevenueSplit").withArgs(3n, 0n, 0n, 0n, 0n);
      expect([await f.vault.balanceOf(f.alice.address), await f.vault.balanceOf(f.bob.address)]).to.deep.equal(before);
      // The same customer twice in one batch is charged once.
      await expect(f.vault.connect(f.biller).settle(4, [bill(f.bob.address, ONE), bill(f.bob.address, ONE)]))
        .to.emit(f.vault, "BillSkipped")
        .withArgs(f.bob.address, 4n, HASH(0), Skip.AlreadySettled);
      expect(await f.vault.balanceOf(f.bob.address)).to.equal(before[1] - ONE);
    });

    it("settles periods in any order within 32 periods", async function () {
      const f = await loadFixture(fundedFixture);
      await f.vault.connect(f.biller).settle(40, [bill(f.bob.address, ONE)]);
      await f.vault.connect(f.biller).settle(9, [bill(f.bob.address, ONE)]);
      await expect(f.vault.connect(f.biller).settle(8, [bill(f.bob.address, ONE)]))
        .to.emit(f.vault, "BillSkipped")
        .withArgs(f.bob.address, 8n, HASH(0), Skip.PeriodTooOld);
      expect(await f.vault.isSettled(f.bob.address, 9n)).to.equal(true);
      expect(await f.vault.isSettled(f.bob.address, 8n)).to.equal(false);
      await f.vault.connect(f.biller).settle(100, [bill(f.bob.address, ONE)]);
      expect(await f.vault.isSettled(f.bob.address, 40n)).to.equal(false);
      expect(await f.vault.balanceOf(f.bob.address)).to.equal(97n * ONE);
    });

    it("lets only the biller settle, and not while paused", async function () {
      const f = await loadFixture(fundedFixture);
      await expect(f.vault.connect(f.alice).settle(1, []))
        .to.be.revertedWithCustomError(f.vault, "AccessControlUnauthorizedAccount")
        .withArgs(f.alice.address, await f.vault.BILLER_ROLE());
      await f.vault.connect(f.pauser).pause();
      await expect(f.vault.connect(f.biller).settle(1, [])).to.be.revertedWithCustomError(f.vault, "EnforcedPause");
    });

    it("splits sum exactly to the charges for random amounts", async function () {
      const f = await loadFixture(fundedFixture);
      const others = (await ethers.getSigners()).slice(12, 18);
      for (const [i, c] of others.entries()) {
        await f.token.connect(f.treasury).transfer(c.address, 10n ** 24n);
        await f.token.connect(c).approve(await f.vault.getAddress(), ethers.MaxUint256);
        await f.vault.connect(c).deposit(10n ** 24n);
        if (i % 2 === 0) await f.vault.connect(c).setReferrer(f.referrer.address);
      }
      let period = 1000;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.bigInt({ min: 0n, max: 10n ** 20n }), { minLength: 6, maxLength: 6 }),
          async (amounts) => {
            period += 1;
            const creditsBefore = await f.vault.referralCredit(f.referrer.address);
            const receipt = await (
              await f.vault.connect(f.biller).settle(
                period,
                others.map((c, i) => bill(c.address, amounts[i], i)),
              )
            ).wait();
            const split = receipt!.logs
              .map((l) => f.vault.interface.parseLog(l))
              .find((l) => l?.name === "RevenueSplit")!;
            const total = amounts.reduce((a, b) => a + b, 0n);
            const [charged, referrals, pool, treasury] = [split.args[1], split.args[2], split.args[3], split.args[4]];
            expect(charged).to.equal(total);
            expect(referrals + pool + treasury).to.equal(total);
            expect(referrals).to.equal(amounts.filter((_, i) => i % 2 === 0).reduce((a, b) => a + b / 10n, 0n));
            expect(pool).to.equal((total * 2000n) / 10000n);
            expect((await f.vault.referralCredit(f.referrer.address)) - creditsBefore).to.equal(referrals);
          },
        ),
        { seed: FC_SEED, numRuns: fcRuns(20) },
      );
    });
  });

  describe("with RewardsManager as the reward pool", function () {
    it("settlement revenue becomes yield the pool can pay", async function () {
      const f = await loadFixture(deployRewardsFixture);
      const vault = await ethers.deployContract("PaymentVault", [
        await f.token.getAddress(),
        f.admin.address,
        DAY,
        f.treasury.address,
        await f.rewards.getAddress(),
        PAYMENT_PARAMS,
        PAYMENT_LIMITS.minWithdrawalNotice,
        PAYMENT_LIMITS.billingWindow,
        PAYMENT_LIMITS.billingCapacity,
      ]);
      await vault.connect(f.admin).grantRole(await vault.BILLER_ROLE(), f.admin.address);
      await f.token.connect(f.alice).approve(await vault.getAddress(), 100n * ONE);
      await vault.connect(f.alice).deposit(100n * ONE);
      const before = await f.rewards.available();
      await vault.connect(f.admin).settle(1, [bill(f.alice.address, 50n * ONE)]);
      expect((await f.rewards.available()) - before).to.equal(10n * ONE);
    });
  });

  describe("withdrawals", function () {
    it("pays out after the notice period, also while paused", async function () {
      const f = await loadFixture(fundedFixture);
      const tx = await f.vault.connect(f.alice).requestWithdrawal(400n * ONE);
      const executableAt = (await latestTimestamp()) + 7n * DAY;
      await expect(tx)
        .to.emit(f.vault, "WithdrawalRequested")
        .withArgs(f.alice.address, 400n * ONE, executableAt, executableAt + 2n * DAY);
      expect(await f.vault.pendingWithdrawal(f.alice.address)).to.deep.equal([
        400n * ONE,
        executableAt,
        executableAt + 2n * DAY,
      ]);
      await time.setNextBlockTimestamp(executableAt - 1n);
      await expect(f.vault.connect(f.alice).executeWithdrawal())
        .to.be.revertedWithCustomError(f.vault, "WithdrawalNotYetExecutable")
        .withArgs(f.alice.address, executableAt);
      await f.vault.connect(f.pauser).pause();
      const exec = f.vault.connect(f.alice).executeWithdrawal();
      await expect(exec)
        .to.emit(f.vault, "Withdrawn")
        .withArgs(f.alice.address, 400n * ONE);
      await expect(exec).to.changeTokenBalances(f.token, [f.vault, f.alice], [-400n * ONE, 400n * ONE]);
      expect(await f.vault.pendingWithdrawal(f.alice.address)).to.deep.equal([0n, 0n, 0n]);
      await expect(f.vault.connect(f.alice).executeWithdrawal())
        .to.be.revertedWithCustomError(f.vault, "NoPendingWithdrawal")
        .withArgs(f.alice.address);
    });

    it("keeps funds under notice collectable: a settlement racing the withdrawal wins", async function () {
      const f = await loadFixture(fundedFixture);
      await f.vault.connect(f.bob).requestWithdrawal(100n * ONE);
      await f.vault.connect(f.biller).settle(2, [bill(f.bob.address, 70n * ONE)]);
      await time.increase(7n * DAY);
      await expect(f.vault.connect(f.bob).executeWithdrawal())
        .to.emit(f.vault, "Withdrawn")
        .withArgs(f.bob.address, 30n * ONE);
      expect(await f.vault.balanceOf(f.bob.address)).to.equal(0n);
      await f.vault.connect(f.bob).deposit(ONE);
      await f.vault.connect(f.bob).requestWithdrawal(ONE);
      await f.vault.connect(f.biller).settle(3, [bill(f.bob.address, ONE)]);
      await time.increase(7n * DAY);
      await expect(f.vault.connect(f.bob).executeWithdrawal())
        .to.emit(f.vault, "Withdrawn")
        .withArgs(f.bob.address, 0n);
    });

    it("replaces or cancels a request, and rejects bad ones", async function () {
      const f = await loadFixture(fundedFixture);
      await expect(f.vault.connect(f.bob).requestWithdrawal(0n)).to.be.revertedWithCustomError(
        f.vault,
        "PaymentZeroAmount",
      );
      await expect(f.vault.connect(f.bob).requestWithdrawal(101n * ONE))
        .to.be.revertedWithCustomError(f.vault, "PaymentInsufficientBalance")
        .withArgs(f.bob.address, 101n * ONE, 100n * ONE);
      await expect(f.vault.connect(f.bob).cancelWithdrawal())
        .to.be.revertedWithCustomError(f.vault, "NoPendingWithdrawal")
        .withArgs(f.bob.address);
      await f.vault.connect(f.bob).requestWithdrawal(10n * ONE);
      await f.vault.connect(f.bob).requestWithdrawal(20n * ONE);
      expect((await f.vault.pendingWithdrawal(f.bob.address))[0]).to.equal(20n * ONE);
      await expect(f.vault.connect(f.bob).cancelWithdrawal())
        .to.emit(f.vault, "WithdrawalCancelled")
        .withArgs(f.bob.address);
      expect(await f.vault.pendingWithdrawal(f.bob.address)).to.deep.equal([0n, 0n, 0n]);
    });
  });

  describe("debt", function () {
    async function indebted() {
      const f = await fundedFixture();
      await f.vault.connect(f.alice).setSpendingCap(10n * ONE);
      await f.vault.connect(f.biller).settle(1, [bill(f.alice.address, 60n * ONE)]); // 50 outstanding
      return f;
    }

    it("can be paid by anyone from their wallet, split like a charge", async function () {
      const f = await loadFixture(indebted);
      const creditBefore = await f.vault.referralCredit(f.referrer.address);
      const tx = f.vault.connect(f.carol).payDebt(f.alice.address, 80n * ONE); // capped at the 50 owed
      await expect(tx)
        .to.emit(f.vault, "DebtPaid")
        .withArgs(f.alice.address, f.carol.address, 50n * ONE, 0n, 5n * ONE, 10n * ONE, 35n * ONE, false);
      await expect(tx).to.changeTokenBalances(
        f.token,
        [f.carol, f.vault, f.rewardPool, f.treasury],
        [-50n * ONE, 5n * ONE, 10n * ONE, 35n * ONE],
      );
      expect((await f.vault.referralCredit(f.referrer.address)) - creditBefore).to.equal(5n * ONE);
      expect(await f.vault.outstanding(f.alice.address)).to.equal(0n);
      expect(await f.vault.isInGoodStanding(f.alice.address)).to.equal(true);
      await expect(f.vault.connect(f.carol).payDebt(f.alice.address, ONE))
        .to.be.revertedWithCustomError(f.vault, "NoOutstandingDebt")
        .withArgs(f.alice.address);
      await expect(f.vault.connect(f.carol).payDebt(f.alice.address, 0n)).to.be.revertedWithCustomError(
        f.vault,
        "PaymentZeroAmount",
      );
    });

    it("can be paid from the customer's own balance", async function () {
      const f = await loadFixture(indebted);
      const tx = f.vault.connect(f.alice).payDebtFromBalance(20n * ONE);
      await expect(tx)
        .to.emit(f.vault, "DebtPaid")
        .withArgs(f.alice.address, f.alice.address, 20n * ONE, 30n * ONE, 2n * ONE, 4n * ONE, 14n * ONE, true);
      await expect(tx).to.changeTokenBalances(
        f.token,
        [f.vault, f.rewardPool, f.treasury],
        [-18n * ONE, 4n * ONE, 14n * ONE],
      );
      expect(await f.vault.balanceOf(f.alice.address)).to.equal(970n * ONE);
      await expect(f.vault.connect(f.carol).payDebtFromBalance(ONE))
        .to.be.revertedWithCustomError(f.vault, "PaymentInsufficientBalance")
        .withArgs(f.carol.address, ONE, 0n);
      await f.vault.connect(f.pauser).pause();
      await expect(f.vault.connect(f.alice).payDebtFromBalance(ONE)).to.be.revertedWithCustomError(
        f.vault,
        "EnforcedPause",
      );
      await expect(f.vault.connect(f.carol).payDebt(f.alice.address, ONE)).to.be.revertedWithCustomError(
        f.vault,
        "EnforcedPause",
      );
    });
  });

  describe("good standing", function () {
    it("needs no debt and a balance, or a free buffer in force", async function () {
      const f = await loadFixture(fundedFixture);
      expect(await f.vault.isInGoodStanding(f.alice.address)).to.equal(true);
      expect(await f.vault.isInGoodStanding(f.carol.address)).to.equal(true); // new, inside the free buffer
      await f.vault.connect(f.parameterAdmin).setParams({ ...PAYMENT_PARAMS, freeBuffer: 0n });
      expect(await f.vault.isInGoodStanding(f.carol.address)).to.equal(false);
      expect(await f.vault.isInGoodStanding(f.alice.address)).to.equal(true);
    });
  });

  describe("referrals", function () {
    it("are claimed to any address, also while paused", async function () {
      const f = await loadFixture(fundedFixture);
      await f.vault.connect(f.biller).settle(1, [bill(f.alice.address, 100n * ONE)]);
      await f.vault.connect(f.pauser).pause();
      const tx = f.vault.connect(f.referrer).claimReferral(f.carol.address);
      await expect(tx)
        .to.emit(f.vault, "ReferralClaimed")
        .withArgs(f.referrer.address, f.carol.address, 10n * ONE);
      await expect(tx).to.changeTokenBalances(f.token, [f.vault, f.carol], [-10n * ONE, 10n * ONE]);
      await expect(f.vault.connect(f.referrer).claimReferral(f.carol.address))
        .to.be.revertedWithCustomError(f.vault, "NoReferralCredit")
        .withArgs(f.referrer.address);
      await expect(f.vault.connect(f.referrer).claimReferral(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.vault,
        "PaymentZeroAddress",
      );
    });
  });

  describe("governance", function () {
    it("changes parameters and recipients within bounds, by role", async function () {
      const f = await loadFixture(fundedFixture);
      const admin = f.vault.connect(f.parameterAdmin);
      const next = {
        referrerShareBps: 500n,
        rewardPoolShareBps: 3000n,
        withdrawalNotice: DAY,
        freeBuffer: 0n,
        withdrawalWindow: DAY,
      };
      await expect(admin.setParams(next)).to.emit(f.vault, "ParamsSet");
      expect(await f.vault.split(1000n, true)).to.deep.equal([50n, 300n, 650n]);
      expect(await f.vault.split(1000n, false)).to.deep.equal([0n, 300n, 700n]);
      await expect(admin.setParams({ ...next, withdrawalNotice: 31n * DAY })).to.be.revertedWithCustomError(
        f.vault,
        "ParamsOutOfBounds",
      );
      await expect(admin.setTreasury(f.carol.address)).to.emit(f.vault, "TreasurySet").withArgs(f.carol.address);
      await expect(admin.setRewardPool(f.carol.address)).to.emit(f.vault, "RewardPoolSet").withArgs(f.carol.address);
      await expect(admin.setTreasury(ethers.ZeroAddress)).to.be.revertedWithCustomError(f.vault, "PaymentZeroAddress");
      const role = await f.vault.PARAMETER_ADMIN_ROLE();
      for (const call of [
        () => f.vault.connect(f.alice).setParams(next),
        () => f.vault.connect(f.alice).setTreasury(f.alice.address),
        () => f.vault.connect(f.alice).setRewardPool(f.alice.address),
      ]) {
        await expect(call())
          .to.be.revertedWithCustomError(f.vault, "AccessControlUnauthorizedAccount")
          .withArgs(f.alice.address, role);
      }
      const pauser = await f.vault.PAUSER_ROLE();
      await expect(f.vault.connect(f.alice).pause())
        .to.be.revertedWithCustomError(f.vault, "AccessControlUnauthorizedAccount")
        .withArgs(f.alice.address, pauser);
      await f.vault.connect(f.pauser).pause();
      await expect(f.vault.connect(f.alice).unpause()).to.be.revertedWithCustomError(
        f.vault,
        "AccessControlUnauthorizedAccount",
      );
      await expect(f.vault.connect(f.pauser).unpause()).to.emit(f.vault, "Unpaused");
    });

    it("a withdrawal notice applies from the request on", async function () {
      const f = await loadFixture(fundedFixture);
      await f.vault.connect(f.bob).requestWithdrawal(ONE); // under the 7-day notice
      await f.vault.connect(f.parameterAdmin).setParams({ ...PAYMENT_PARAMS, withdrawalNotice: 3600n });
      await f.vault.connect(f.carol).deposit(ONE);
      await f.vault.connect(f.carol).requestWithdrawal(ONE);
      await time.increase(3600n);
      await expect(f.vault.connect(f.bob).executeWithdrawal()).to.be.revertedWithCustomError(
        f.vault,
        "WithdrawalNotYetExecutable",
      );
      await expect(f.vault.connect(f.carol).executeWithdrawal())
        .to.emit(f.vault, "Withdrawn")
        .withArgs(f.carol.address, ONE);
      await time.increase(7n * DAY);
      await expect(f.vault.connect(f.bob).executeWithdrawal())
        .to.emit(f.vault, "Withdrawn")
        .withArgs(f.bob.address, ONE);
    });
  });
});
