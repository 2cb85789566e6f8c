import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";

import { PAYMENT_LIMITS, PAYMENT_PARAMS, deployPaymentsFixture } from "../../shared/fixtures";
import { DAY } from "../../shared/constants";

/** The security review's findings on PaymentVault (issue 15, docs/decisions.md D35). */

const ONE = ethers.parseEther("1");
const HASH = (n: number) => ethers.keccak256(ethers.toUtf8Bytes(`bill ${n}`));
const bill = (customer: string, amount: bigint, n = 0) => ({ customer, amount, billHash: HASH(n) });
const MAX_PERIOD = 2n ** 32n - 2n;

/** alice has 1,000 on deposit and dave (referrer) referred her; bob has 100 and no referrer; no free buffer. */
async function fundedFixture() {
  const f = await deployPaymentsFixture();
  await f.vault.connect(f.parameterAdmin).setParams({ ...PAYMENT_PARAMS, freeBuffer: 0n });
  await f.vault.connect(f.alice).deposit(1000n * ONE);
  await f.vault.connect(f.alice).setReferrer(f.referrer.address);
  await f.vault.connect(f.bob).deposit(100n * ONE);
  return f;
}

/** fundedFixture, and alice owes 50 after a bill of 60 under a cap of 10 (balance 990). */
async function indebtedFixture() {
  const f = await fundedFixture();
  await f.vault.connect(f.alice).setSpendingCap(10n * ONE); // from period 1: nothing settled yet
  await f.vault.connect(f.biller).settle(1, [bill(f.alice.address, 60n * ONE)]);
  return f;
}

describe("PaymentVault after the security review", function () {
  describe("M-1 withdrawal window", function () {
    it("M-1: a matured withdrawal lapses after its window and must be requested again", async function () {
      const f = await loadFixture(fundedFixture);
      await f.vault.connect(f.bob).requestWithdrawal(100n * ONE);
      const [, executableAt, expiresAt] = await f.vault.pendingWithdrawal(f.bob.address);
      expect(expiresAt - executableAt).to.equal(2n * DAY);
      await time.setNextBlockTimestamp(expiresAt);
      await expect(f.vault.connect(f.bob).executeWithdrawal())
        .to.be.revertedWithCustomError(f.vault, "WithdrawalExpired")
        .withArgs(f.bob.address, expiresAt);
      // An expired request can be cancelled, or replaced by a new one with a new notice.
      await f.vault.connect(f.bob).requestWithdrawal(40n * ONE);
      const [, again] = await f.vault.pendingWithdrawal(f.bob.address);
      await time.setNextBlockTimestamp(again + 2n * DAY - 1n); // the window's last second
      await expect(f.vault.connect(f.bob).executeWithdrawal())
        .to.emit(f.vault, "Withdrawn")
        .withArgs(f.bob.address, 40n * ONE);
    });

    it("M-1: an executable withdrawal counts against good standing until it lapses", async function () {
      const f = await loadFixture(fundedFixture);
      await f.vault.connect(f.bob).requestWithdrawal(100n * ONE);
      await f.vault.connect(f.alice).requestWithdrawal(400n * ONE);
      const [, executableAt, expiresAt] = await f.vault.pendingWithdrawal(f.bob.address);
      // Under notice: the funds are still there and collectable.
      expect(await f.vault.isInGoodStanding(f.bob.address)).to.equal(true);
      expect(await f.vault.availableBalance(f.bob.address)).to.equal(100n * ONE);
      await time.increaseTo(executableAt + 1n);
      // Executable: the requested amount counts as gone.
      expect(await f.vault.isInGoodStanding(f.bob.address)).to.equal(false);
      expect(await f.vault.availableBalance(f.bob.address)).to.equal(0n);
      expect(await f.vault.isInGoodStanding(f.alice.address)).to.equal(true);
      expect(await f.vault.availableBalance(f.alice.address)).to.equal(600n * ONE);
      // A free buffer serves anyone, a customer who is withdrawing too.
      await f.vault.connect(f.parameterAdmin).setParams(PAYMENT_PARAMS);
      expect(await f.vault.isInGoodStanding(f.bob.address)).to.equal(true);
      await f.vault.connect(f.parameterAdmin).setParams({ ...PAYMENT_PARAMS, freeBuffer: 0n });
      // Lapsed: the balance is the customer's to spend again.
      await time.increaseTo(expiresAt);
      expect(await f.vault.isInGoodStanding(f.bob.address)).to.equal(true);
      expect(await f.vault.availableBalance(f.bob.address)).to.equal(100n * ONE);
    });
  });

  describe("M-2 cap snapshot and debt first", function () {
    it("M-2: a cap cut after a period started does not apply to that period", async function () {
      const f = await loadFixture(fundedFixture);
      await f.vault.connect(f.biller).settle(1, [bill(f.bob.address, ONE)]);
      expect(await f.vault.currentPeriod()).to.equal(2n);
      // Period 2 is in progress: alice uses the service, then cuts her cap to 1 wei before its settlement.
      await expect(f.vault.connect(f.alice).setSpendingCap(1n))
        .to.emit(f.vault, "SpendingCapSet")
        .withArgs(f.alice.address, 1n, 3n);
      expect(await f.vault.spendingCap(f.alice.address)).to.equal(1n);
      expect(await f.vault.spendingCapAt(f.alice.address, 2n)).to.equal(0n);
      expect(await f.vault.spendingCapAt(f.alice.address, 3n)).to.equal(1n);
      await expect(f.vault.connect(f.biller).settle(2, [bill(f.alice.address, 80n * ONE)]))
        .to.emit(f.vault, "BillSettled")
        .withArgs(f.alice.address, 2n, HASH(0), 80n * ONE, 80n * ONE, 0n);
      // The next period started under the new cap.
      await expect(f.vault.connect(f.biller).settle(3, [bill(f.alice.address, 80n * ONE)]))
        .to.emit(f.vault, "BillSettled")
        .withArgs(f.alice.address, 3n, HASH(0), 80n * ONE, 1n, 80n * ONE - 1n);
      // Two changes within a period: the last one counts, from the next period.
      await f.vault.connect(f.alice).setSpendingCap(5n * ONE);
      await f.vault.connect(f.alice).setSpendingCap(0n);
      expect(await f.vault.currentPeriod()).to.equal(4n);
      expect(await f.vault.spendingCapAt(f.alice.address, 4n)).to.equal(1n);
      expect(await f.vault.spendingCapAt(f.alice.address, 5n)).to.equal(0n);
    });

    it("M-2: outstanding debt is paid from the balance first, at settlement within the period's cap", async function () {
      const f = await loadFixture(indebtedFixture);
      expect(await f.vault.outstanding(f.alice.address)).to.equal(50n * ONE);
      await f.vault.connect(f.alice).setSpendingCap(0n); // from period 3: period 2 keeps the cap of 10
      // Period 2: the cap of 10 all goes to the debt; the new bill of 5 adds to it.
      let tx = f.vault.connect(f.biller).settle(2, [bill(f.alice.address, 5n * ONE)]);
      await expect(tx)
        .to.emit(f.vault, "DebtPaid")
        .withArgs(f.alice.address, f.alice.address, 10n * ONE, 40n * ONE, ONE, 2n * ONE, 7n * ONE, true);
      await expect(tx)
        .to.emit(f.vault, "BillSettled")
        .withArgs(f.alice.address, 2n, HASH(0), 5n * ONE, 0n, 5n * ONE);
      await expect(tx).to.emit(f.vault, "RevenueSplit").withArgs(2n, 0n, 0n, 0n, 0n);
      await expect(tx).to.changeTokenBalances(f.token, [f.rewardPool, f.treasury], [2n * ONE, 7n * ONE]);
      expect(await f.vault.outstanding(f.alice.address)).to.equal(45n * ONE);
      // Period 3, no cap: the debt of 45 first, then the bill.
      tx = f.vault.connect(f.biller).settle(3, [bill(f.alice.address, 5n * ONE)]);
      await expect(tx)
        .to.emit(f.vault, "DebtPaid")
        .withArgs(
          f.alice.address,
          f.alice.address,
          45n * ONE,
          0n,
          (45n * ONE) / 10n,
          9n * ONE,
          (315n * ONE) / 10n,
          true,
        );
      await expect(tx)
        .to.emit(f.vault, "BillSettled")
        .withArgs(f.alice.address, 3n, HASH(0), 5n * ONE, 5n * ONE, 0n);
      await expect(tx)
        .to.emit(f.vault, "RevenueSplit")
        .withArgs(3n, 5n * ONE, ONE / 2n, ONE, (35n * ONE) / 10n);
      expect(await f.vault.outstanding(f.alice.address)).to.equal(0n);
      expect(await f.vault.balanceOf(f.alice.address)).to.equal(930n * ONE);
      expect(await f.vault.isInGoodStanding(f.alice.address)).to.equal(true);
    });

    it("M-2: a deposit pays outstanding debt first", async function () {
      const f = await loadFixture(fundedFixture);
      await f.vault.connect(f.biller).settle(1, [bill(f.bob.address, 130n * ONE)]); // 30 owed, balance 0
      // A deposit smaller than the debt goes to it entirely.
      let tx = f.vault.connect(f.carol).depositFor(f.bob.address, 10n * ONE);
      await expect(tx)
        .to.emit(f.vault, "Deposited")
        .withArgs(f.bob.address, f.carol.address, 10n * ONE);
      await expect(tx)
        .to.emit(f.vault, "DebtPaid")
        .withArgs(f.bob.address, f.bob.address, 10n * ONE, 20n * ONE, 0n, 2n * ONE, 8n * ONE, true);
      await expect(tx).to.changeTokenBalances(
        f.token,
        [f.carol, f.vault, f.rewardPool, f.treasury],
        [-10n * ONE, 0n, 2n * ONE, 8n * ONE],
      );
      expect(await f.vault.balanceOf(f.bob.address)).to.equal(0n);
      tx = f.vault.connect(f.bob).deposit(50n * ONE);
      await expect(tx)
        .to.emit(f.vault, "DebtPaid")
        .withArgs(f.bob.address, f.bob.address, 20n * ONE, 0n, 0n, 4n * ONE, 16n * ONE, true);
      expect(await f.vault.balanceOf(f.bob.address)).to.equal(30n * ONE);
      expect(await f.vault.outstanding(f.bob.address)).to.equal(0n);
      expect(await f.vault.isInGoodStanding(f.bob.address)).to.equal(true);
    });

    it("M-2: a withdrawal can never take funds that debt claims", async function () {
      const f = await loadFixture(indebtedFixture); // balance 990, debt 50
      await expect(f.vault.connect(f.alice).requestWithdrawal(990n * ONE))
        .to.be.revertedWithCustomError(f.vault, "WithdrawalClaimedByDebt")
        .withArgs(f.alice.address, 990n * ONE, 940n * ONE, 50n * ONE);
      await f.vault.connect(f.alice).requestWithdrawal(940n * ONE);
      // More debt meanwhile (period 2 still has the cap of 10): the payout leaves what the debt claims.
      await f.vault.connect(f.biller).settle(2, [bill(f.alice.address, 100n * ONE)]); // takes 10, debt 140
      expect(await f.vault.availableBalance(f.alice.address)).to.equal(840n * ONE);
      await time.increase(7n * DAY);
      await expect(f.vault.connect(f.alice).executeWithdrawal())
        .to.emit(f.vault, "Withdrawn")
        .withArgs(f.alice.address, 840n * ONE);
      expect(await f.vault.balanceOf(f.alice.address)).to.equal(140n * ONE);
      expect(await f.vault.outstanding(f.alice.address)).to.equal(140n * ONE);
      // Debt that claims the whole balance leaves nothing to withdraw.
      await f.vault.connect(f.biller).settle(3, [bill(f.alice.address, 100n * ONE)]); // debt 230, balance 130
      await expect(f.vault.connect(f.alice).requestWithdrawal(ONE))
        .to.be.revertedWithCustomError(f.vault, "WithdrawalClaimedByDebt")
        .withArgs(f.alice.address, ONE, 0n, 230n * ONE);
      expect(await f.vault.availableBalance(f.alice.address)).to.equal(0n);
    });
  });

  describe("debt from the balance", function () {
    it("payDebtFromBalance takes at most the balance, and refuses 0 or no debt", async function () {
      const f = await loadFixture(fundedFixture);
      await f.vault.connect(f.bob).setSpendingCap(10n * ONE);
      await f.vault.connect(f.biller).settle(1, [bill(f.bob.address, 200n * ONE)]); // takes 10: balance 90, debt 190
      await expect(f.vault.connect(f.bob).payDebtFromBalance(0n)).to.be.revertedWithCustomError(
        f.vault,
        "PaymentZeroAmount",
      );
      await expect(f.vault.connect(f.alice).payDebtFromBalance(ONE))
        .to.be.revertedWithCustomError(f.vault, "NoOutstandingDebt")
        .withArgs(f.alice.address);
      await expect(f.vault.connect(f.bob).payDebtFromBalance(1000n * ONE))
        .to.emit(f.vault, "DebtPaid")
        .withArgs(f.bob.address, f.bob.address, 90n * ONE, 100n * ONE, 0n, 18n * ONE, 72n * ONE, true);
      expect(await f.vault.balanceOf(f.bob.address)).to.equal(0n);
      expect(await f.vault.outstanding(f.bob.address)).to.equal(100n * ONE);
    });
  });

  describe("L-1 period bound", function () {
    it("L-1: period 2^32 - 1 cannot be settled, so the settled window cannot wrap to 0", async function () {
      const f = await loadFixture(fundedFixture);
      await f.vault.connect(f.biller).settle(Number(MAX_PERIOD), [bill(f.bob.address, ONE)]);
      expect(await f.vault.lastSettledPeriod(f.bob.address)).to.deep.equal([true, MAX_PERIOD]);
      await expect(f.vault.connect(f.biller).settle(Number(MAX_PERIOD + 1n), [bill(f.bob.address, ONE)]))
        .to.be.revertedWithCustomError(f.vault, "PeriodOutOfBounds")
        .withArgs(MAX_PERIOD + 1n, MAX_PERIOD);
      // The history is intact: the period cannot be charged twice.
      await expect(f.vault.connect(f.biller).settle(Number(MAX_PERIOD), [bill(f.bob.address, ONE)]))
        .to.emit(f.vault, "BillSkipped")
        .withArgs(f.bob.address, MAX_PERIOD, HASH(0), 0);
      expect(await f.vault.isSettled(f.bob.address, MAX_PERIOD)).to.equal(true);
      expect(await f.vault.balanceOf(f.bob.address)).to.equal(99n * ONE);
    });
  });

  describe("L-2 notice floor", function () {
    it("L-2: the withdrawal notice cannot go below the billing grace period fixed at deployment", async function () {
      const f = await loadFixture(fundedFixture);
      const admin = f.vault.connect(f.parameterAdmin);
      for (const withdrawalNotice of [0n, PAYMENT_LIMITS.minWithdrawalNotice - 1n]) {
        await expect(admin.setParams({ ...PAYMENT_PARAMS, withdrawalNotice })).to.be.revertedWithCustomError(
          f.vault,
          "ParamsOutOfBounds",
        );
      }
      await admin.setParams({ ...PAYMENT_PARAMS, withdrawalNotice: PAYMENT_LIMITS.minWithdrawalNotice });
      const factory = await ethers.getContractFactory("PaymentVault");
      const deploy = (minWithdrawalNotice: bigint) =>
        factory.deploy(
          f.token as unknown as string,
          f.admin.address,
          DAY,
          f.treasury.address,
          f.rewardPool.address,
          PAYMENT_PARAMS,
          minWithdrawalNotice,
          PAYMENT_LIMITS.billingWindow,
          PAYMENT_LIMITS.billingCapacity,
        );
      for (const minimum of [0n, 30n * DAY + 1n]) {
        await expect(deploy(minimum))
          .to.be.revertedWithCustomError(factory, "MinWithdrawalNoticeOutOfBounds")
          .withArgs(minimum);
      }
      // The floor binds the deployment's own parameters too.
      await expect(deploy(8n * DAY)).to.be.revertedWithCustomError(factory, "ParamsOutOfBounds");
    });
  });

  describe("I-10 billing rate limit", function () {
    it("I-10: each biller bills at most its refilling bucket; retried bills cost nothing", async function () {
      const f = await loadFixture(fundedFixture);
      const admin = f.vault.connect(f.parameterAdmin);
      await expect(admin.setBillingLimit(DAY, 100n * ONE))
        .to.emit(f.vault, "BillingLimitSet")
        .withArgs(DAY, 100n * ONE);
      expect(await f.vault.billingAvailable(f.biller.address)).to.equal(100n * ONE);
      // Bills count by what they bill (also what becomes debt), not by what they take.
      await expect(f.vault.connect(f.biller).settle(1, [bill(f.bob.address, 130n * ONE)]))
        .to.be.revertedWithCustomError(f.vault, "BillingRateLimited")
        .withArgs(f.biller.address, 130n * ONE, 100n * ONE);
      await f.vault.connect(f.biller).settle(1, [bill(f.alice.address, 60n * ONE)]);
      await expect(
        f.vault.connect(f.biller).settle(1, [bill(f.alice.address, 60n * ONE), bill(f.bob.address, 50n * ONE)]),
      )
        .to.be.revertedWithCustomError(f.vault, "BillingRateLimited")
        .withArgs(f.biller.address, 50n * ONE, anyValue);
      // A retried batch skips the settled bill and bills only the new one.
      await f.vault.connect(f.biller).settle(1, [bill(f.alice.address, 60n * ONE), bill(f.bob.address, 30n * ONE)]);
      expect(await f.vault.billingAvailable(f.biller.address)).to.be.lessThan(11n * ONE);
      // Another biller has a bucket of its own; the first one's refills over the window.
      const [, , , , , , , , , , , second] = await ethers.getSigners();
      await f.vault.connect(f.admin).grantRole(await f.vault.BILLER_ROLE(), second.address);
      await f.vault.connect(second).settle(2, [bill(f.bob.address, 70n * ONE)]);
      await time.increase(DAY);
      expect(await f.vault.billingAvailable(f.biller.address)).to.equal(100n * ONE);
    });

    it("I-10: the billing limit stays within its bounds and is the parameter admin's", async function () {
      const f = await loadFixture(fundedFixture);
      const admin = f.vault.connect(f.parameterAdmin);
      for (const [window, capacity] of [
        [3599n, ONE],
        [30n * DAY + 1n, ONE],
        [DAY, 0n],
        [DAY, 2n ** 96n],
      ]) {
        await expect(admin.setBillingLimit(window, capacity))
          .to.be.revertedWithCustomError(f.vault, "BillingLimitOutOfBounds")
          .withArgs(window, capacity);
      }
      await expect(f.vault.connect(f.biller).setBillingLimit(DAY, ONE))
        .to.be.revertedWithCustomError(f.vault, "AccessControlUnauthorizedAccount")
        .withArgs(f.biller.address, await f.vault.PARAMETER_ADMIN_ROLE());
      await admin.setBillingLimit(30n * DAY, 2n ** 96n - 1n);
      expect(await f.vault.billingLimit()).to.deep.equal([30n * DAY, 2n ** 96n - 1n]);
    });
  });

  describe("I-3 DebtPaid", function () {
    it("I-3: DebtPaid says whether the customer's balance paid", async function () {
      const f = await loadFixture(indebtedFixture);
      await expect(f.vault.connect(f.carol).payDebt(f.alice.address, ONE))
        .to.emit(f.vault, "DebtPaid")
        .withArgs(f.alice.address, f.carol.address, ONE, 49n * ONE, anyValue, anyValue, anyValue, false);
      await expect(f.vault.connect(f.alice).payDebtFromBalance(ONE))
        .to.emit(f.vault, "DebtPaid")
        .withArgs(f.alice.address, f.alice.address, ONE, 48n * ONE, anyValue, anyValue, anyValue, true);
      // A deposit pays the debt from the whole balance: afterwards the debt or the balance is 0.
      await expect(f.vault.connect(f.alice).deposit(ONE))
        .to.emit(f.vault, "DebtPaid")
        .withArgs(f.alice.address, f.alice.address, 48n * ONE, 0n, anyValue, anyValue, anyValue, true);
    });
  });
});
