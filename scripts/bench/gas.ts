/**
 * Gas benchmark: runs realistic scenarios on the in-process Hardhat network and writes whole-transaction gas
 * (21,000 base included) to bench/gas.json, merging with keys other benchmarks wrote. Prints a table.
 *
 *   npm run bench:gas
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ethers, network } from "hardhat";
import type { ContractTransactionResponse } from "ethers";

import { time } from "@nomicfoundation/hardhat-network-helpers";

import {
  type RewardsFixture,
  committeeWallets,
  deployMigrationFixture,
  deployPaymentsFixture,
  deployStakingFixture,
  latestTimestamp,
  newDevice,
  permitStruct,
  postBatch,
  signConsent,
  signPermit,
} from "../lib/fixtures";
import { toBatches } from "../../offchain/common/batches";
import type { ScoreEntry } from "../../offchain/common/scoreBatch";
import { DEFAULT_YIELD_PARAMS } from "../../offchain/common/yield";
import { DAY, StakeType } from "../lib/constants";
import { replaceBetween, writeFormatted } from "./report";

const ROOT = join(__dirname, "..", "..");
const OUT = join(ROOT, "bench", "gas.json");
const DOC = join(ROOT, "docs", "gas.md");

/** The targets of the issues, for the table (whole-transaction gas). */
const TARGETS: Record<string, number> = {
  "staking.stake": 100_000,
  "staking.stakeAndAssign": 130_000,
  "staking.increase": 85_000,
  "staking.requestUnstake": 60_000,
  "staking.release": 45_000,
  "migration.migrateWithPermit": 95_000,
  "rewards.postBatch.perEntry@200": 10_000,
  "rewards.claim": 60_000,
  "rewards.compound": 90_000,
  "payments.settle.perCustomer@100": 25_000,
  "payments.deposit.first": 80_000,
  "payments.withdraw": 50_000,
};

/** Comparable figures from other protocols, shown beside ours in docs/gas.md. */
const ANCHORS: Record<string, string> = {
  "staking.stake": "Synthetix-style staking with an unbonding queue: 95-119k",
  "staking.stakeAndAssign": "Uniswap v3-staker stake: 138.6k",
  "staking.requestUnstake": "Synthetix-style request unstake: 72.6k",
  "rewards.postBatch.perEntry@200": "one score into fresh storage ~23k, overwritten ~5.9k (storage alone, no yield)",
  "rewards.claim": "cumulative Merkle claim: 55.8-58.7k",
  "payments.settle.perCustomer@100":
    "one item of The Graph's unbounded collection loop ~22.7k; a Livepeer ticket redemption 190-300k",
  "payments.depositWithPermit": "Permit2 transfers: 52-88k",
};

const results: Record<string, number> = {};

async function measure(key: string, tx: Promise<ContractTransactionResponse>): Promise<void> {
  const receipt = await (await tx).wait();
  if (!receipt || receipt.status !== 1) throw new Error(`${key}: transaction failed`);
  results[key] = Number(receipt.gasUsed);
}

async function increaseTime(seconds: bigint): Promise<void> {
  await network.provider.send("evm_increaseTime", [Number(seconds)]);
  await network.provider.send("evm_mine");
}

async function tokenAndStaking(): Promise<void> {
  const { token, staking, slasher, alice, bob, carol } = await deployStakingFixture();
  const stakingAddress = await staking.getAddress();
  const amount = ethers.parseEther("1000");

  // Transfer between two accounts that already hold tokens (the common case).
  await measure("token.transfer", token.connect(alice).transfer(bob.address, ethers.parseEther("10")));

  // Someone staked before: the contract's token balance and the stake counter are warm in the sense of non-zero.
  await token.connect(carol).approve(stakingAddress, amount);
  await staking.connect(carol).stake(StakeType.Host, amount);

  // An exact approval in a previous transaction, as wallets do.
  await token.connect(alice).approve(stakingAddress, amount);
  await measure("staking.stake", staking.connect(alice).stake(StakeType.Host, amount));
  const stakeId = await staking.stakeCount();

  const deadline = (await latestTimestamp()) + 3600n;
  const permit = await signPermit(token, alice, stakingAddress, amount, deadline);
  await measure(
    "staking.stakeWithPermit",
    staking.connect(alice).stakeWithPermit(StakeType.Host, amount, permitStruct(permit, deadline)),
  );

  await token.connect(alice).approve(stakingAddress, amount);
  const consent = await signConsent(staking, newDevice(), alice.address);
  await measure("staking.stakeAndAssign", staking.connect(alice).stakeAndAssign(StakeType.Host, amount, consent));

  await token.connect(alice).approve(stakingAddress, amount);
  await measure("staking.increase", staking.connect(alice).increase(stakeId, amount));

  const consent2 = await signConsent(staking, newDevice(), alice.address);
  await measure("staking.assignDevice", staking.connect(alice).assignDevice(stakeId, consent2));

  await measure(
    "staking.slash",
    staking.connect(slasher).slash(stakeId, ethers.parseEther("10"), "double-signed job report"),
  );

  await measure("staking.requestUnstake", staking.connect(alice).requestUnstake(stakeId));
  const expressId = stakeId + 1n;
  await staking.connect(alice).requestUnstake(expressId);
  await measure("staking.expressRelease", staking.connect(alice).expressRelease(expressId));

  await increaseTime(90n * DAY);
  await measure("staking.release", staking.connect(alice).release(stakeId));
}

async function migration(): Promise<void> {
  const { legacy, legacyPermit, lockingMigration, burningMigration, alice, bob } = await deployMigrationFixture();
  // Others migrated before, so the reserve and the locked legacy balance are non-zero.
  await legacy.connect(alice).transfer(bob.address, 1000n);
  await legacy.connect(bob).approve(await lockingMigration.getAddress(), 10n);
  await lockingMigration.connect(bob).migrate(10n);

  // A holder migrates their whole balance (approved in a previous transaction).
  await legacy.connect(alice).approve(await lockingMigration.getAddress(), 5000n);
  await legacy.connect(alice).transfer(bob.address, (await legacy.balanceOf(alice.address)) - 5000n);
  await measure("migration.migrate", lockingMigration.connect(alice).migrate(5000n));

  const amount = await legacyPermit.balanceOf(alice.address);
  const deadline = (await latestTimestamp()) + 3600n;
  const permit = await signPermit(legacyPermit, alice, await burningMigration.getAddress(), amount, deadline);
  await measure(
    "migration.migrateWithPermit",
    burningMigration.connect(alice).migrateWithPermit(amount, deadline, permit.v, permit.r, permit.s),
  );
}

/** Posts `entries` for `epoch` in batches of at most 200; returns the gas of each batch. */
async function post(f: RewardsFixture, epoch: bigint, entries: ScoreEntry[], signers: number): Promise<number[]> {
  const gas: number[] = [];
  for (const [i, batch] of toBatches(entries, 200).entries()) {
    const receipt = await (
      await postBatch(f, epoch, batch, { batchIndex: BigInt(i), signers: f.committee.slice(0, signers) })
    ).wait();
    gas.push(Number(receipt!.gasUsed));
  }
  return gas;
}

async function rewards(): Promise<void> {
  const base = await deployStakingFixture();
  const { staking, token, alice, admin, treasury } = base;
  await token.connect(alice).approve(await staking.getAddress(), ethers.MaxUint256);
  const STAKES = 1000;
  for (let i = 0; i < STAKES; i++) await staking.connect(alice).stake(StakeType.Host, ethers.parseEther("1000"));
  const ids = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, k) => ({ stakeId: BigInt(from + k), score: 9_000n + BigInt(k % 2000) }));

  // Two RewardsManagers over the same stakes: threshold 1 (the main one) and threshold 3.
  const genesis = (await latestTimestamp()) + 60n;
  const deploy = async (threshold: number): Promise<RewardsFixture> => {
    const committee = committeeWallets().slice(0, 3);
    const rewardsManager = await ethers.deployContract("RewardsManager", [
      staking,
      admin.address,
      DAY,
      genesis,
      DAY,
      committee.map((w) => w.address),
      threshold,
      DEFAULT_YIELD_PARAMS,
    ]);
    await token.connect(treasury).transfer(await rewardsManager.getAddress(), ethers.parseEther("10000000"));
    return { ...base, rewards: rewardsManager, committee, genesis, epochDuration: DAY };
  };
  const main = await deploy(1);
  const t3 = await deploy(3);
  await staking.connect(admin).setRewardsManager(await main.rewards.getAddress());

  // Steady state: every stake was scored once before, so its rewards slot is not empty.
  await time.increaseTo(genesis + DAY + 1n);
  await post(main, 0n, ids(1, STAKES), 1);
  await post(t3, 0n, ids(1, 200), 3);

  // During epoch 1: a first compound (new history entry), a claim, and 200 stakes compounding, whose
  // epoch-1 scores then need one history read each.
  await measure("rewards.compound", main.rewards.connect(alice).compound(STAKES));
  await measure("rewards.claim", main.rewards.connect(alice).claim(STAKES - 1, alice.address));
  for (let id = 201; id <= 400; id++) await main.rewards.connect(alice).compound(id);
  await token.connect(treasury).approve(await main.rewards.getAddress(), ethers.parseEther("1000"));
  await measure("rewards.fund", main.rewards.connect(treasury).fund(ethers.parseEther("1000")));

  // Each measured batch is the first of its epoch, so it also pays for marking the epoch's batch word.
  await time.increaseTo(genesis + 10n * DAY);
  results["rewards.postBatch.perEntry@200.compounding"] = Math.round((await post(main, 1n, ids(201, 400), 1))[0] / 200);
  results["rewards.postBatch.perEntry@1"] = (await post(main, 2n, ids(1, 1), 1))[0];
  results["rewards.postBatch.perEntry@50"] = Math.round((await post(main, 3n, ids(1, 50), 1))[0] / 50);
  results["rewards.postBatch.perEntry@200"] = Math.round((await post(main, 4n, ids(1, 200), 1))[0] / 200);
  results["rewards.postBatch.perEntry@200.t3"] = Math.round((await post(t3, 4n, ids(1, 200), 3))[0] / 200);
  for (const [epoch, n] of [
    [5n, 10],
    [6n, 100],
    [7n, 1000],
  ] as const) {
    results[`rewards.epoch.stakes${n}`] = (await post(main, epoch, ids(1, n), 1)).reduce((a, b) => a + b, 0);
  }
}

async function payments(): Promise<void> {
  const f = await deployPaymentsFixture();
  const { token, vault, alice, bob, treasury, biller } = f;
  const vaultAddress = await vault.getAddress();
  await vault.connect(bob).deposit(ethers.parseEther("100")); // the vault already holds tokens

  // First deposit and a top-up, each after an exact approval.
  const [carol] = [f.carol];
  await token.connect(carol).approve(vaultAddress, ethers.parseEther("500"));
  await measure("payments.deposit.first", vault.connect(carol).deposit(ethers.parseEther("500")));
  await token.connect(carol).approve(vaultAddress, ethers.parseEther("50"));
  await measure("payments.deposit.topUp", vault.connect(carol).deposit(ethers.parseEther("50")));
  // A new customer onboarding with a permit: one transaction, no approval.
  const newcomer = ethers.Wallet.createRandom().connect(ethers.provider);
  await treasury.sendTransaction({ to: newcomer.address, value: ethers.parseEther("1") });
  await token.connect(treasury).transfer(newcomer.address, ethers.parseEther("1000"));
  const deadline = (await latestTimestamp()) + 3600n;
  const sig = await signPermit(token, newcomer, vaultAddress, ethers.parseEther("1000"), deadline);
  await measure(
    "payments.depositWithPermit",
    vault
      .connect(newcomer)
      .depositWithPermit(newcomer.address, ethers.parseEther("1000"), deadline, sig.v, sig.r, sig.s),
  );

  // 100 customers with balances, half of them referred by one of five referrers.
  const referrers = Array.from({ length: 5 }, () => ethers.Wallet.createRandom().address);
  const customers = Array.from({ length: 100 }, () => ethers.Wallet.createRandom().connect(ethers.provider));
  await token.connect(alice).approve(vaultAddress, ethers.MaxUint256);
  for (const [i, c] of customers.entries()) {
    await vault.connect(alice).depositFor(c.address, ethers.parseEther("1000"));
    if (i % 2 === 0) {
      await treasury.sendTransaction({ to: c.address, value: ethers.parseEther("0.01") });
      await vault.connect(c).setReferrer(referrers[i % 5]);
    }
  }
  const bills = (period: number) =>
    customers.map((c, i) => ({
      customer: c.address,
      amount: ethers.parseEther(String(10 + (i % 7))) + BigInt(i),
      billHash: ethers.id(`bill ${period} ${i}`),
    }));
  // Steady state: the referrers already hold unclaimed credit from the previous period.
  await (await vault.connect(biller).settle(1, bills(1))).wait();
  const receipt = await (await vault.connect(biller).settle(2, bills(2))).wait();
  results["payments.settle.perCustomer@100"] = Math.round(Number(receipt!.gasUsed) / 100);

  // A withdrawal that leaves a balance behind, after the notice.
  await vault.connect(carol).requestWithdrawal(ethers.parseEther("200"));
  await time.increase(7n * DAY);
  await measure("payments.withdraw", vault.connect(carol).executeWithdrawal());

  // A referrer with an account claims to itself.
  const referrer = f.referrer;
  await vault.connect(carol).setReferrer(referrer.address);
  await vault
    .connect(biller)
    .settle(3, [{ customer: carol.address, amount: ethers.parseEther("20"), billHash: ethers.ZeroHash }]);
  await measure("payments.claimReferral", vault.connect(referrer).claimReferral(referrer.address));
}

/** Anchoring a configuration version (D52): the first one also sets the latest version's slot from zero. */
async function config(): Promise<void> {
  const [admin, publisher] = await ethers.getSigners();
  const registry = await ethers.deployContract("ConfigRegistry", [admin.address, 0n, publisher.address]);
  const hash = (version: number) => ethers.keccak256(ethers.toUtf8Bytes(`configuration ${version}`));
  await measure("config.publish.first", registry.connect(publisher).publish(1n, hash(1)));
  await measure("config.publish", registry.connect(publisher).publish(2n, hash(2)));
}

async function main(): Promise<void> {
  if (network.name !== "hardhat") throw new Error("run the gas benchmark on the in-process hardhat network");
  await tokenAndStaking();
  await migration();
  await rewards();
  await payments();
  await config();

  const previous: Record<string, number> = existsSync(OUT) ? JSON.parse(readFileSync(OUT, "utf8")) : {};
  const merged = { ...previous, ...results };
  const sorted = Object.fromEntries(Object.entries(merged).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(OUT, JSON.stringify(sorted, null, 2) + "\n");

  const rows = Object.entries(results).map(([key, gas]) => ({
    operation: key,
    gas,
    target: TARGETS[key] ?? "",
    status: TARGETS[key] === undefined ? "" : gas <= TARGETS[key] ? "ok" : "OVER",
  }));
  console.table(rows);
  console.log(`wrote ${OUT}`);
  await writeDocTable(sorted);
}

/** Rewrites the tables between the markers of docs/gas.md from the whole snapshot. */
async function writeDocTable(snapshot: Record<string, number>): Promise<void> {
  if (!existsSync(DOC)) return;
  const lines = [
    "| operation | gas | target | anchor |",
    "| --- | ---: | ---: | --- |",
    ...Object.entries(snapshot).map(([key, gas]) => {
      const target = TARGETS[key];
      const verdict =
        target === undefined ? "" : `${target.toLocaleString("en-US")} ${gas <= target ? "(met)" : "(**missed**)"}`;
      return `| \`${key}\` | ${gas.toLocaleString("en-US")} | ${verdict} | ${ANCHORS[key] ?? ""} |`;
    }),
  ];
  const scaling = [
    "| stakes scored in an epoch | transactions (batches of 200) | gas per epoch | gas per stake |",
    "| ---: | ---: | ---: | ---: |",
    ...[10, 100, 1000]
      .filter((n) => snapshot[`rewards.epoch.stakes${n}`] !== undefined)
      .map((n) => {
        const gas = snapshot[`rewards.epoch.stakes${n}`];
        const fmt = (x: number) => x.toLocaleString("en-US");
        return `| ${fmt(n)} | ${Math.ceil(n / 200)} | ${fmt(gas)} | ${fmt(Math.round(gas / n))} |`;
      }),
  ];
  let updated = readFileSync(DOC, "utf8");
  updated = replaceBetween(updated, "gas-table", lines);
  updated = replaceBetween(updated, "gas-scaling", scaling);
  await writeFormatted(DOC, updated);
  console.log(`updated ${DOC}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
