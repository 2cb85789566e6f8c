import { expect } from "chai";
import { ethers, network } from "hardhat";
import fc from "fast-check";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

import { PAYMENT_LIMITS, PAYMENT_PARAMS, deployPaymentsFixture } from "../../shared/fixtures";
import { TOKEN_SUPPLY } from "../../shared/constants";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";

const ONE = ethers.parseEther("1");
const NOTICE = 86_400n;
const WINDOW = 2n * 86_400n;

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
  // A one-day notice and a two-day window, so random waits often let withdrawals execute, and sometimes lapse (the
  // defaults have their own tests). No free buffer, so good standing follows the balances.
  await f.vault
    .connect(f.parameterAdmin)
    .setParams({ ...PAYMENT_PARAMS, withdrawalNotice: NOTICE, withdrawalWindow: WINDOW, freeBuffer: 0n });
  return { ...f, extra };
}

type Fixture = Awaited<ReturnType<typeof invariantFixture>>;
type Account = Fixture["alice"];

/**
 * What the vault must hold for one customer, which of its periods were settled (the contract's window), its caps
 * by first period (a cap applies from the period after the one in progress), and its withdrawal request.
 */
interface CustomerModel {
  balance: bigint;
  debt: bigint;
  caps: Array<{ from: number; cap: bigint }>;
  referrer: number;
  top: number;
  window: bigint;
  pending: { amount: bigint; executableAt: bigint; expiresAt: bigint } | null;
}

/** The cap in force for period `p`: the last one set for a period at or before it (0: none). */
const capAt = (c: CustomerModel, p: number) => c.caps.filter((x) => x.from <= p).at(-1)?.cap ?? 0n;
/** The balance debt does not claim. */
const free = (c: CustomerModel) => (c.balance > c.debt ? c.balance - c.debt : 0n);
/** The free balance less a withdrawal executable at `now`. */
function available(c: CustomerModel, now: bigint): bigint {
  const w = c.pending;
  if (!w || now < w.executableAt || now >= w.expiresAt) return free(c);
  return w.amount < free(c) ? free(c) - w.amount : 0n;
}
const min = (a: bigint, b: bigint) => (a < b ? a : b);
const referral = (c: CustomerModel, amount: bigint) => (c.referrer >= 0 ? (amount * 1000n) / 10000n : 0n);

async function blockTime(blockNumber: number): Promise<bigint> {
  return BigInt((await ethers.provider.getBlock(blockNumber))!.timestamp);
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

/** Models a settlement of period `p`: each bill in order, the debt first, within the period's cap. */
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
    const cap = capAt(c, p);
    let taken = c.debt + amt;
    if (cap !== 0n && cap < taken) taken = cap;
    taken = min(taken, c.balance);
    const debtPaid = min(taken, c.debt);
    const charge = taken - debtPaid;
    c.balance -= taken;
    c.debt = c.debt + amt - taken;
    if (c.referrer >= 0) credits[c.referrer] += referral(c, debtPaid) + referral(c, charge);
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
  const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
  for (const [i, c] of customers.entries()) {
    expect(await f.vault.balanceOf(c.address), `step ${step}: balance ${i}`).to.equal(m[i].balance);
    expect(await f.vault.outstanding(c.address), `step ${step}: debt ${i}`).to.equal(m[i].debt);
    // Debt is paid before anything else: it coexists with a balance only where a cap held settlement back.
    expect(await f.vault.availableBalance(c.address), `step ${step}: available ${i}`).to.equal(available(m[i], now));
    expect(await f.vault.isInGoodStanding(c.address), `step ${step}: standing ${i}`).to.equal(
      m[i].debt === 0n && available(m[i], now) !== 0n,
    );
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

/** One property run: the fixture, the model and the settlement history. */
interface Run {
  f: Fixture;
  customers: Account[];
  m: CustomerModel[];
  credits: bigint[];
  /** "customer:period" of every BillSettled seen. */
  charged: Set<string>;
  /** The latest period the sequence moved to. */
  period: number;
  /** One after the latest period settled (the contract's currentPeriod). */
  currentPeriod: number;
  /** The sum of what the biller billed. */
  billed: bigint;
}

type OpOf<K extends Op["kind"]> = Extract<Op, { kind: K }>;

/** A withdrawal request: the outcome the model expects, never the funds debt claims. */
async function requestStep({ f, customers, m }: Run, op: OpOf<"request">, step: number): Promise<string> {
  // Aim at a customer with a balance when there is one, so sequences reach payouts.
  const withBalance = m.findIndex((c) => c.balance !== 0n);
  const who = m[op.customer].balance === 0n && withBalance >= 0 ? withBalance : op.customer;
  const c = m[who];
  const want = (c.balance * BigInt(op.percent)) / 100n;
  const r = await attemptTx(f, () => f.vault.connect(customers[who]).requestWithdrawal(want));
  const expected =
    want === 0n
      ? "PaymentZeroAmount"
      : want > c.balance
        ? "PaymentInsufficientBalance"
        : want > free(c)
          ? "WithdrawalClaimedByDebt"
          : "ok";
  expect(r.outcome, `step ${step}: request`).to.equal(expected);
  if (r.outcome === "ok") {
    const executableAt = (await blockTime(r.receipt!.blockNumber)) + NOTICE;
    c.pending = { amount: want, executableAt, expiresAt: executableAt + WINDOW };
  }
  return r.outcome;
}

/** A withdrawal: only within the window after the notice, and only what debt does not claim. */
async function executeStep({ f, customers, m }: Run, op: OpOf<"execute">, step: number): Promise<string> {
  // Aim at a customer with a pending withdrawal when there is one, so sequences reach payouts.
  const withPending = m.findIndex((c) => c.pending !== null);
  const who = m[op.customer].pending === null && withPending >= 0 ? withPending : op.customer;
  const c = m[who];
  const r = await attemptTx(f, () => f.vault.connect(customers[who]).executeWithdrawal());
  if (r.outcome === "ok") {
    const at = await blockTime(r.receipt!.blockNumber);
    expect(at >= c.pending!.executableAt && at < c.pending!.expiresAt, `step ${step}: window`).to.equal(true);
    c.balance -= min(c.pending!.amount, free(c));
    c.pending = null;
  } else if (r.outcome === "NoPendingWithdrawal") expect(c.pending).to.equal(null);
  return r.outcome;
}

/** A settlement batch: never fails, charges no (customer, period) twice, stays within the biller's bucket. */
async function settleStep(run: Run, op: OpOf<"settle">, step: number): Promise<string> {
  const { f, customers } = run;
  if (op.back === 0) run.period += 1;
  const p = Math.max(0, run.period - op.back);
  const bills = op.bills.map((b, i) => ({
    customer: customers[b.customer].address,
    amount: BigInt(b.amount) * ONE,
    billHash: ethers.id(`${p}:${i}`),
  }));
  const r = await attemptTx(f, () => f.vault.connect(f.biller).settle(p, bills));
  expect(r.outcome, `step ${step}: settle`).to.equal("ok");
  modelSettlement(run.m, run.credits, p, op.bills);
  run.currentPeriod = Math.max(run.currentPeriod, p + 1);
  for (const log of r.receipt!.logs) {
    const parsed = f.vault.interface.parseLog(log);
    if (parsed?.name !== "BillSettled") continue;
    const key = `${parsed.args.customer}:${parsed.args.period}`;
    expect(run.charged.has(key), `step ${step}: ${key} settled twice`).to.equal(false);
    run.charged.add(key);
    run.billed += parsed.args.amount as bigint;
  }
  // The biller's bucket holds at most its capacity, and lost at most what was billed.
  const left = await f.vault.billingAvailable(f.biller.address);
  const capacity = PAYMENT_LIMITS.billingCapacity;
  expect(left >= capacity - run.billed && left <= capacity, `step ${step}: billing bucket`).to.equal(true);
  return r.outcome;
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
          caps: [],
          referrer: -1,
          top: 0,
          window: 0n,
          pending: null,
        }));
        const credits = referrers.map(() => 0n);
        const run: Run = { f, customers, m, credits, charged: new Set(), period: 100, currentPeriod: 0, billed: 0n };

        const attempt = (send: () => Promise<{ wait(): Promise<unknown> }>) => attemptTx(f, send);

        for (const [step, op] of ops.entries()) {
          let outcome = "ok";
          if (op.kind === "deposit") {
            const r = await attempt(() =>
              f.vault.connect(customers[op.payer]).depositFor(customers[op.customer].address, BigInt(op.amount) * ONE),
            );
            outcome = r.outcome;
            if (outcome === "ok") {
              // The deposit pays outstanding debt first.
              const c = m[op.customer];
              c.balance += BigInt(op.amount) * ONE;
              const paid = min(c.debt, c.balance);
              c.balance -= paid;
              c.debt -= paid;
              if (c.referrer >= 0) credits[c.referrer] += referral(c, paid);
            }
          } else if (op.kind === "cap") {
            outcome = (
              await attempt(() => f.vault.connect(customers[op.customer]).setSpendingCap(BigInt(op.cap) * ONE))
            ).outcome;
            // From the period after the one in progress; a second change for the same period replaces the first.
            const caps = m[op.customer].caps;
            if (caps.at(-1)?.from === run.currentPeriod + 1) caps.pop();
            caps.push({ from: run.currentPeriod + 1, cap: BigInt(op.cap) * ONE });
          } else if (op.kind === "referrer") {
            outcome = (
              await attempt(() => f.vault.connect(customers[op.customer]).setReferrer(referrers[op.referrer].address))
            ).outcome;
            if (outcome === "ok") m[op.customer].referrer = op.referrer;
          } else if (op.kind === "request") {
            outcome = await requestStep(run, op, step);
          } else if (op.kind === "execute") {
            outcome = await executeStep(run, op, step);
          } else if (op.kind === "cancel") {
            outcome = (await attempt(() => f.vault.connect(customers[op.customer]).cancelWithdrawal())).outcome;
            if (outcome === "ok") m[op.customer].pending = null;
          } else if (op.kind === "settle") {
            outcome = await settleStep(run, op, step);
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
              const most = op.kind === "payDebt" ? want : min(want, c.balance);
              const paid = min(most, c.debt);
              c.debt -= paid;
              if (op.kind === "payFromBalance") c.balance -= paid;
              if (c.referrer >= 0) credits[c.referrer] += referral(c, paid);
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
          expect(await f.vault.currentPeriod(), `step ${step}: current period`).to.equal(BigInt(run.currentPeriod));
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
