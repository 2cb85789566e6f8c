import { expect } from "chai";
import { ethers, network } from "hardhat";
import fc from "fast-check";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

import { PAYMENT_PARAMS, deployPaymentsFixture } from "../../shared/fixtures";
import { TOKEN_SUPPLY } from "../../shared/constants";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";

const ONE = ethers.parseEther("1");

type Op =
  | { kind: "deposit"; payer: number; customer: number; amount: number }
  | { kind: "cap"; customer: number; cap: number }
  | { kind: "referrer"; customer: number; referrer: number }
  | { kind: "request"; customer: number; percent: number }
  | { kind: "execute"; customer: number }
  | { kind: "cancel"; customer: number }
  | { kind: "settle"; back: number; bills: Array<{ customer: number; amount: number }> }
  | { kind: "payDebt"; payer: number; customer: number; amount: number }
  | { kind: "payFromBalance"; customer: number; amount: number }
  | { kind: "claim"; referrer: number }
  | { kind: "wait"; seconds: number };

const customer = fc.integer({ min: 0, max: 2 });
const amount = fc.integer({ min: 0, max: 400 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("deposit" as const), payer: customer, customer, amount }), weight: 6 },
  {
    arbitrary: fc.record({
      kind: fc.constant("cap" as const),
      customer,
      cap: fc.oneof(
        { arbitrary: fc.constant(0), weight: 1 },
        { arbitrary: fc.integer({ min: 1, max: 100 }), weight: 3 },
      ),
    }),
    weight: 3,
  },
  // Referrers 0..2 are the customers themselves (self-referral must fail), 3 an outside referrer.
  {
    arbitrary: fc.record({
      kind: fc.constant("referrer" as const),
      customer,
      referrer: fc.integer({ min: 0, max: 3 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("request" as const),
      customer,
      percent: fc.integer({ min: 1, max: 120 }),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant("execute" as const), customer }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("cancel" as const), customer }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant("settle" as const),
      back: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 })),
      bills: fc.array(fc.record({ customer, amount }), { minLength: 1, maxLength: 6 }),
    }),
    weight: 5,
  },
  { arbitrary: fc.record({ kind: fc.constant("payDebt" as const), payer: customer, customer, amount }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("payFromBalance" as const), customer, amount }), weight: 1 },
  {
    arbitrary: fc.record({ kind: fc.constant("claim" as const), referrer: fc.integer({ min: 0, max: 3 }) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("wait" as const),
      seconds: fc.oneof(fc.integer({ min: 1, max: 86_399 }), fc.integer({ min: 86_400, max: 3 * 86_400 })),
    }),
    weight: 4,
  },
);

async function invariantFixture() {
  const f = await deployPaymentsFixture();
  const extra = (await ethers.getSigners()).slice(12, 15);
  for (const account of extra) {
    await f.token.connect(f.treasury).transfer(account.address, 10_000_000n * ONE);
    await f.token.connect(account).approve(await f.vault.getAddress(), ethers.MaxUint256);
  }
  // A one-day notice, so random waits often let withdrawals execute (the 7-day default has its own tests).
  await f.vault.connect(f.parameterAdmin).setParams({ ...PAYMENT_PARAMS, withdrawalNotice: 86400n });
  return { ...f, extra };
}

type Fixture = Awaited<ReturnType<typeof invariantFixture>>;
type Account = Fixture["alice"];

/** What the vault must hold for one customer, and which of its periods were settled (the contract's window). */
interface CustomerModel {
  balance: bigint;
  debt: bigint;
  cap: bigint;
  referrer: number;
  top: number;
  window: bigint;
  pending: bigint;
}

/** Sends a transaction: "ok" and its receipt, or the name of the custom error it reverted with. */
async function attemptTx(f: Fixture, run: () => Promise<{ wait(): Promise<unknown> }>) {
  try {
    const receipt = await (await run()).wait();
    return {
      outcome: "ok",
      receipt: receipt as Awaited<ReturnType<Awaited<ReturnType<Fixture["vault"]["settle"]>>["wait"]>>,
    };
  } catch (error) {
    const data = (error as { data?: string }).data;
    const parsed = data && (f.vault.interface.parseError(data) ?? f.token.interface.parseError(data));
    if (!parsed) throw error;
    return { outcome: parsed.name, receipt: null };
  }
}

/** Models a settlement of period `p`: each bill in order. */
function modelSettlement(
  m: CustomerModel[],
  credits: bigint[],
  p: number,
  bills: Array<{ customer: number; amount: number }>,
): void {
  for (const b of bills) {
    const c = m[b.customer];
    const fresh = p >= c.top || (c.top - 1 - p < 32 && ((c.window >> BigInt(c.top - 1 - p)) & 1n) === 0n);
    if (!fresh) continue;
    if (p >= c.top) {
      const shift = p + 1 - c.top;
      c.window = shift >= 32 ? 1n : ((c.window << BigInt(shift)) | 1n) & 0xffffffffn;
      c.top = p + 1;
    } else c.window |= 1n << BigInt(c.top - 1 - p);
    const amt = BigInt(b.amount) * ONE;
    let charge = amt;
    if (c.cap !== 0n && c.cap < charge) charge = c.cap;
    if (c.balance < charge) charge = c.balance;
    c.balance -= charge;
    c.debt += amt - charge;
    if (c.referrer >= 0) credits[c.referrer] += (charge * 1000n) / 10000n;
  }
}

/** After each step: the contract agrees with the model, holds exactly what it owes, and the supply is whole. */
async function expectAgreement(
  f: Fixture,
  step: number,
  model: { m: CustomerModel[]; credits: bigint[]; customers: Account[]; referrers: Account[]; holders: string[] },
): Promise<void> {
  const { m, credits, customers, referrers, holders } = model;
  // The contract agrees with the model...
  for (const [i, c] of customers.entries()) {
    expect(await f.vault.balanceOf(c.address), `step ${step}: balance ${i}`).to.equal(m[i].balance);
    expect(await f.vault.outstanding(c.address), `step ${step}: debt ${i}`).to.equal(m[i].debt);
  }
  for (const [i, r] of referrers.entries()) {
    expect(await f.vault.referralCredit(r.address), `step ${step}: credit ${i}`).to.equal(credits[i]);
  }
  // ...the vault holds exactly what it owes...
  const owed = m.reduce((a, c) => a + c.balance, 0n) + credits.reduce((a, b) => a + b, 0n);
  expect(await f.token.balanceOf(await f.vault.getAddress()), `step ${step}: vault holdings`).to.equal(owed);
  // ...and no token appeared or vanished.
  let total = 0n;
  for (const holder of holders) total += await f.token.balanceOf(holder);
  expect(total, `step ${step}: supply`).to.equal(TOKEN_SUPPLY);
}

describe("PaymentVault invariants", function () {
  it("the vault holds exactly balances + credits, tokens are conserved, no (customer, period) is charged twice", async function () {
    this.timeout(600_000);
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 40, size: "medium" }), async (ops) => {
        const f = await loadFixture(invariantFixture);
        const customers = [f.alice, f.bob, f.carol];
        const referrers = [...customers, f.extra[0]];
        const holders = [...(await ethers.getSigners()).map((s) => s.address), await f.vault.getAddress()];
        // The model: what the vault must hold for each customer and referrer.
        const m: CustomerModel[] = customers.map(() => ({
          balance: 0n,
          debt: 0n,
          cap: 0n,
          referrer: -1,
          top: 0,
          window: 0n,
          pending: 0n,
        }));
        const credits = referrers.map(() => 0n);
        const charged = new Set<string>();
        let period = 100;

        const attempt = (run: () => Promise<{ wait(): Promise<unknown> }>) => attemptTx(f, run);

        for (const [step, op] of ops.entries()) {
          let outcome = "ok";
          if (op.kind === "deposit") {
            const r = await attempt(() =>
              f.vault.connect(customers[op.payer]).depositFor(customers[op.customer].address, BigInt(op.amount) * ONE),
            );
            outcome = r.outcome;
            if (outcome === "ok") m[op.customer].balance += BigInt(op.amount) * ONE;
          } else if (op.kind === "cap") {
            outcome = (
              await attempt(() => f.vault.connect(customers[op.customer]).setSpendingCap(BigInt(op.cap) * ONE))
            ).outcome;
            m[op.customer].cap = BigInt(op.cap) * ONE;
          } else if (op.kind === "referrer") {
            outcome = (
              await attempt(() => f.vault.connect(customers[op.customer]).setReferrer(referrers[op.referrer].address))
            ).outcome;
            if (outcome === "ok") m[op.customer].referrer = op.referrer;
          } else if (op.kind === "request") {
            const want = (m[op.customer].balance * BigInt(op.percent)) / 100n;
            outcome = (await attempt(() => f.vault.connect(customers[op.customer]).requestWithdrawal(want))).outcome;
            if (outcome === "ok") m[op.customer].pending = want;
          } else if (op.kind === "execute") {
            // Aim at a customer with a pending withdrawal when there is one, so sequences reach payouts.
            const withPending = m.findIndex((c) => c.pending !== 0n);
            const who = m[op.customer].pending === 0n && withPending >= 0 ? withPending : op.customer;
            const r = await attempt(() => f.vault.connect(customers[who]).executeWithdrawal());
            outcome = r.outcome;
            if (outcome === "ok") {
              const paid = m[who].pending < m[who].balance ? m[who].pending : m[who].balance;
              m[who].balance -= paid;
              m[who].pending = 0n;
            }
          } else if (op.kind === "cancel") {
            outcome = (await attempt(() => f.vault.connect(customers[op.customer]).cancelWithdrawal())).outcome;
            if (outcome === "ok") m[op.customer].pending = 0n;
          } else if (op.kind === "settle") {
            if (op.back === 0) period += 1;
            const p = Math.max(0, period - op.back);
            const bills = op.bills.map((b, i) => ({
              customer: customers[b.customer].address,
              amount: BigInt(b.amount) * ONE,
              billHash: ethers.id(`${p}:${i}`),
            }));
            const r = await attempt(() => f.vault.connect(f.biller).settle(p, bills));
            outcome = r.outcome;
            expect(outcome, `step ${step}: settle`).to.equal("ok");
            modelSettlement(m, credits, p, op.bills);
            for (const log of r.receipt!.logs) {
              const parsed = f.vault.interface.parseLog(log);
              if (parsed?.name !== "BillSettled") continue;
              const key = `${parsed.args.customer}:${parsed.args.period}`;
              expect(charged.has(key), `step ${step}: ${key} settled twice`).to.equal(false);
              charged.add(key);
            }
          } else if (op.kind === "payDebt" || op.kind === "payFromBalance") {
            const c = m[op.customer];
            const want = BigInt(op.amount) * ONE;
            const r = await attempt(() =>
              op.kind === "payDebt"
                ? f.vault.connect(customers[op.payer]).payDebt(customers[op.customer].address, want)
                : f.vault.connect(customers[op.customer]).payDebtFromBalance(want),
            );
            outcome = r.outcome;
            if (outcome === "ok") {
              const cap = op.kind === "payDebt" ? want : want < c.balance ? want : c.balance;
              const paid = cap < c.debt ? cap : c.debt;
              c.debt -= paid;
              if (op.kind === "payFromBalance") c.balance -= paid;
              if (c.referrer >= 0) credits[c.referrer] += (paid * 1000n) / 10000n;
            }
          } else if (op.kind === "claim") {
            // Aim at a referrer with credit when there is one.
            const withCredit = credits.findIndex((c) => c !== 0n);
            const who = credits[op.referrer] === 0n && withCredit >= 0 ? withCredit : op.referrer;
            outcome = (await attempt(() => f.vault.connect(referrers[who]).claimReferral(referrers[who].address)))
              .outcome;
            if (outcome === "ok") credits[who] = 0n;
          } else {
            await network.provider.send("evm_increaseTime", [op.seconds]);
            await network.provider.send("evm_mine");
          }
          outcomes.set(`${op.kind}:${outcome}`, (outcomes.get(`${op.kind}:${outcome}`) ?? 0) + 1);

          await expectAgreement(f, step, { m, credits, customers, referrers, holders });
        }
      }),
      { seed: FC_SEED, numRuns: fcRuns(20), endOnFailure: true },
    );
    if (process.env.FC_VERBOSE) console.log(Object.fromEntries([...outcomes].sort()));
    for (const kind of ["deposit", "settle", "execute", "payDebt", "claim"]) {
      expect(outcomes.get(`${kind}:ok`) ?? 0, `no successful ${kind}`).to.be.greaterThan(0);
    }
  });
});
