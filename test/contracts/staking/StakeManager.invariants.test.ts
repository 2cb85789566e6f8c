import { expect } from "chai";
import { ethers, network } from "hardhat";
import fc from "fast-check";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse, Wallet } from "ethers";

import { deployStakingFixture, signConsent } from "../../shared/fixtures";
import { DAY, MINIMUM, StakeStatus, StakeType, TOKEN_SUPPLY } from "../../shared/constants";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";
import { StakeMap, type StakeEvent, STAKE_MAP_EVENTS } from "../../../offchain/common/stakeMap";

/** Deterministic device keys, so a failing seed replays exactly. */
const DEVICE_KEYS = [1, 2, 3, 4].map((i) => ethers.zeroPadValue(ethers.toBeHex(0xde71ce00 + i), 32));

type Caller = "owner" | "stranger";

type Op =
  | { kind: "stake"; owner: number; stakeType: StakeType; tenths: number }
  | { kind: "stakeAndAssign"; owner: number; stakeType: StakeType; tenths: number; device: number }
  | { kind: "increase"; caller: Caller; stake: number; tenths: number }
  | { kind: "assign"; caller: Caller; stake: number; device: number }
  | { kind: "unassign"; caller: Caller; byDevice: boolean; stake: number }
  | { kind: "requestUnstake"; caller: Caller; stake: number }
  | { kind: "cancel"; caller: Caller; stake: number }
  | { kind: "release"; caller: Caller; stake: number }
  | { kind: "expressRelease"; caller: Caller; stake: number }
  | { kind: "slash"; stake: number; percent: number }
  | { kind: "setMinimum"; stakeType: StakeType; tenths: number }
  | { kind: "wait"; seconds: number };

const owner = fc.integer({ min: 0, max: 2 });
/** Most calls come from the stake's owner; one in five from another owner, to exercise the access checks. */
const caller = fc.nat({ max: 4 }).map((n) => (n === 0 ? "stranger" : "owner"));
const stakeRef = fc.nat({ max: 12 });
const stakeType = fc.constantFrom(StakeType.Host, StakeType.Gateway, StakeType.Stargate);
const tenths = fc.integer({ min: 5, max: 30 }); // 0.5x .. 3x the minimum: some stakes start below it
const device = fc.integer({ min: 0, max: DEVICE_KEYS.length - 1 });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("stake" as const), owner, stakeType, tenths }), weight: 3 },
  {
    arbitrary: fc.record({ kind: fc.constant("stakeAndAssign" as const), owner, stakeType, tenths, device }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant("increase" as const), caller, stake: stakeRef, tenths }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("assign" as const), caller, stake: stakeRef, device }), weight: 3 },
  {
    arbitrary: fc.record({ kind: fc.constant("unassign" as const), caller, byDevice: fc.boolean(), stake: stakeRef }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant("requestUnstake" as const), caller, stake: stakeRef }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("cancel" as const), caller, stake: stakeRef }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("release" as const), caller, stake: stakeRef }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("expressRelease" as const), caller, stake: stakeRef }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant("slash" as const),
      stake: stakeRef,
      percent: fc.integer({ min: 1, max: 100 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant("setMinimum" as const), stakeType, tenths }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant("wait" as const),
      seconds: fc.oneof(fc.integer({ min: 1, max: 86400 }), fc.integer({ min: 85 * 86400, max: 100 * 86400 })),
    }),
    weight: 4,
  },
);

async function invariantFixture() {
  const f = await deployStakingFixture();
  const stakingAddress = await f.staking.getAddress();
  const owners = [f.alice, f.bob, f.carol];
  for (const account of owners) await f.token.connect(account).approve(stakingAddress, ethers.MaxUint256);
  // A generous slash budget so the rate limit rarely decides; it has its own unit test.
  await f.staking.connect(f.parameterAdmin).setSlashLimit(DAY, 2n ** 95n);
  const devices: Wallet[] = DEVICE_KEYS.map((key) => new ethers.Wallet(key, ethers.provider));
  for (const d of devices) await f.admin.sendTransaction({ to: d.address, value: ethers.parseEther("1") });
  const signers = await ethers.getSigners();
  const holders = [...signers.map((s) => s.address), ...devices.map((d) => d.address), stakingAddress];
  return { ...f, owners, devices, holders };
}

type Fixture = Awaited<ReturnType<typeof invariantFixture>>;

/** Sends a transaction; returns "ok" or the name of the custom error it reverted with. Anything else fails. */
async function attempt(f: Fixture, send: () => Promise<ContractTransactionResponse>): Promise<string> {
  try {
    await (await send()).wait();
    return "ok";
  } catch (error) {
    const data = (error as { data?: string }).data;
    const decoded = data ? (f.staking.interface.parseError(data) ?? f.token.interface.parseError(data)) : null;
    if (!decoded) throw error; // a panic or a plain revert is a bug
    return decoded.name;
  }
}

async function run(f: Fixture, op: Op): Promise<string> {
  const count = Number(await f.staking.stakeCount());
  // Ref 0 (and any ref before the first stake) names an unknown stake; others pick an existing one.
  const ref = "stake" in op ? op.stake : 0;
  let id = ref === 0 || count === 0 ? BigInt(count + 1) : BigInt((ref % count) + 1);
  // Exits mostly aim at stakes that are unbonding, so sequences reach release rather than bounce off.
  if (ref % 4 !== 0 && (op.kind === "release" || op.kind === "expressRelease" || op.kind === "cancel")) {
    const unbonding: bigint[] = [];
    for (let i = 1n; i <= BigInt(count); i++) {
      const status = (await f.staking.getStake(i)).status;
      if (status === BigInt(StakeStatus.Unlocking) || status === BigInt(StakeStatus.Unlocked)) unbonding.push(i);
    }
    if (unbonding.length > 0) id = unbonding[ref % unbonding.length];
  }
  const min = (t: StakeType) => f.staking.typeParams(t).then((p) => p.minimumStake);
  // The stake's owner, or another owner (alice for an unknown stake).
  const who = async (c: Caller) => {
    if (id > BigInt(count)) return f.owners[0];
    const stakeOwner = (await f.staking.getStake(id)).owner;
    const index = f.owners.findIndex((o) => o.address === stakeOwner);
    return f.owners[c === "owner" ? index : (index + 1) % f.owners.length];
  };
  switch (op.kind) {
    case "stake": {
      const amount = ((await min(op.stakeType)) * BigInt(op.tenths)) / 10n;
      return attempt(f, () => f.staking.connect(f.owners[op.owner]).stake(op.stakeType, amount));
    }
    case "stakeAndAssign": {
      const amount = ((await min(op.stakeType)) * BigInt(op.tenths)) / 10n;
      const consent = await signConsent(f.staking, f.devices[op.device], f.owners[op.owner].address);
      return attempt(f, () => f.staking.connect(f.owners[op.owner]).stakeAndAssign(op.stakeType, amount, consent));
    }
    case "increase": {
      const signer = await who(op.caller);
      const amount = (MINIMUM[StakeType.Host] * BigInt(op.tenths)) / 10n;
      return attempt(f, () => f.staking.connect(signer).increase(id, amount));
    }
    case "assign": {
      const signer = await who(op.caller);
      const consent = await signConsent(f.staking, f.devices[op.device], signer.address);
      return attempt(f, () => f.staking.connect(signer).assignDevice(id, consent));
    }
    case "unassign": {
      let caller: Wallet | (typeof f.owners)[number] = await who(op.caller);
      if (op.byDevice && id <= BigInt(count)) {
        const bound = (await f.staking.getStake(id)).device;
        const key = f.devices.find((d) => d.address === bound);
        if (key) caller = key;
      }
      return attempt(f, () => f.staking.connect(caller).unassignDevice(id));
    }
    case "requestUnstake": {
      const signer = await who(op.caller);
      return attempt(f, () => f.staking.connect(signer).requestUnstake(id));
    }
    case "cancel": {
      const signer = await who(op.caller);
      return attempt(f, () => f.staking.connect(signer).cancelUnstake(id));
    }
    case "release": {
      const signer = await who(op.caller);
      return attempt(f, () => f.staking.connect(signer).release(id));
    }
    case "expressRelease": {
      const signer = await who(op.caller);
      return attempt(f, () => f.staking.connect(signer).expressRelease(id));
    }
    case "slash": {
      const amount = id <= BigInt(count) ? ((await f.staking.getStake(id)).amount * BigInt(op.percent)) / 100n : 1n;
      return attempt(f, () => f.staking.connect(f.slasher).slash(id, amount, "invariant test"));
    }
    case "setMinimum": {
      const minimum = (MINIMUM[op.stakeType] * BigInt(op.tenths)) / 10n;
      return attempt(f, () => f.staking.connect(f.parameterAdmin).setMinimumStake(op.stakeType, minimum));
    }
    case "wait":
      await network.provider.send("evm_increaseTime", [op.seconds]);
      await network.provider.send("evm_mine");
      return "ok";
  }
}

async function checkInvariants(f: Fixture, step: string): Promise<void> {
  // (a) conservation: every token is held by someone.
  let total = 0n;
  for (const holder of f.holders) total += await f.token.balanceOf(holder);
  expect(total).to.equal(TOKEN_SUPPLY, `${step}: tokens appeared or vanished`);

  // (b) the contract holds exactly the live stakes.
  const count = await f.staking.stakeCount();
  let live = 0n;
  const stakes = [];
  for (let id = 1n; id <= count; id++) {
    const stake = await f.staking.getStake(id);
    stakes.push(stake);
    live += stake.amount;
  }
  expect(await f.token.balanceOf(await f.staking.getAddress())).to.equal(live, `${step}: balance != live stakes`);

  // (d) replaying every event from the first block rebuilds the same map.
  const map = new StakeMap();
  const logs = await f.staking.queryFilter("*" as never, 0);
  for (const log of logs) {
    const parsed = f.staking.interface.parseLog(log);
    if (parsed && STAKE_MAP_EVENTS.has(parsed.name)) {
      map.apply({ name: parsed.name, args: parsed.args.toObject() } as StakeEvent);
    }
  }
  expect(map.stakeCount).to.equal(Number(count), `${step}: events miss stakes`);

  for (const device of f.devices) {
    const admitted = await f.staking.isAdmitted(device.address);
    // (c) isAdmitted equals a recomputation from the stake's own fields.
    const stakeId = await f.staking.stakeOfDevice(device.address);
    let expected = false;
    if (stakeId !== 0n) {
      const stake = stakes[Number(stakeId) - 1];
      expect(stake.device).to.equal(device.address, `${step}: device and stake disagree`);
      const minimum = (await f.staking.typeParams(stake.stakeType)).minimumStake;
      expected = stake.status === BigInt(StakeStatus.Assigned) && stake.amount >= minimum;
    }
    expect(admitted).to.equal(expected, `${step}: isAdmitted(${device.address})`);
    expect((await f.staking.deviceStatus(device.address)).admitted).to.equal(admitted);
    expect(map.isAdmitted(device.address)).to.equal(admitted, `${step}: event replay disagrees for ${device.address}`);
    expect(map.stakeOfDevice(device.address)?.stakeId ?? 0n).to.equal(stakeId, `${step}: replayed binding`);
  }
  for (const stake of stakes) {
    const replayed = map.getStake(stake.stakeId)!;
    expect(replayed.amount).to.equal(stake.amount, `${step}: replayed amount of stake ${stake.stakeId}`);
    const phase =
      stake.status === BigInt(StakeStatus.Released)
        ? "released"
        : stake.status >= BigInt(StakeStatus.Unlocking)
          ? "unlocking"
          : "active";
    expect(replayed.phase).to.equal(phase, `${step}: replayed phase of stake ${stake.stakeId}`);
  }
}

describe("StakeManager invariants", function () {
  it("conservation, solvency, admission and event replay hold over random operation sequences", async function () {
    this.timeout(600_000);
    const outcomes = new Map<string, number>();
    after(() => {
      if (process.env.FC_VERBOSE) console.log(Object.fromEntries([...outcomes].sort()));
    });
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 15, maxLength: 50, size: "medium" }), async (ops) => {
        const f = await loadFixture(invariantFixture);
        for (const [i, op] of ops.entries()) {
          const outcome = await run(f, op);
          const key = `${op.kind}:${outcome}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          await checkInvariants(f, `step ${i} ${JSON.stringify(op)} -> ${outcome}`);
        }
      }),
      { seed: FC_SEED, numRuns: fcRuns(16), endOnFailure: true },
    );
    // The sequences must actually exercise the contract, not only bounce off reverts.
    for (const kind of ["stake", "stakeAndAssign", "increase", "assign", "requestUnstake", "release", "slash"]) {
      expect(outcomes.get(`${kind}:ok`) ?? 0, `no successful ${kind}`).to.be.greaterThan(0);
    }
  });
});
