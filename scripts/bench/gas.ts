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
import * as prettier from "prettier";

import {
  deployMigrationFixture,
  deployStakingFixture,
  latestTimestamp,
  newDevice,
  permitStruct,
  signConsent,
  signPermit,
} from "../../test/shared/fixtures";
import { DAY, StakeType } from "../../test/shared/constants";

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
};

/** Comparable figures from other protocols, shown beside ours in docs/gas.md. */
const ANCHORS: Record<string, string> = {
  "staking.stake": "Synthetix-style staking with an unbonding queue: 95-119k",
  "staking.stakeAndAssign": "Uniswap v3-staker stake: 138.6k",
  "staking.requestUnstake": "Synthetix-style request unstake: 72.6k",
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

async function main(): Promise<void> {
  if (network.name !== "hardhat") throw new Error("run the gas benchmark on the in-process hardhat network");
  await tokenAndStaking();
  await migration();

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

/** Rewrites the table between the markers of docs/gas.md from the whole snapshot. */
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
  const doc = readFileSync(DOC, "utf8");
  const start = "<!-- gas-table:start -->";
  const end = "<!-- gas-table:end -->";
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  if (from < 0 || to < 0) throw new Error(`${DOC} lacks the ${start} / ${end} markers`);
  const updated = doc.slice(0, from + start.length) + "\n" + lines.join("\n") + "\n" + doc.slice(to);
  // Formatted as `npm run lint` expects, so a benchmark run never leaves the tree failing the format check.
  writeFileSync(DOC, await prettier.format(updated, { ...(await prettier.resolveConfig(DOC)), filepath: DOC }));
  console.log(`updated ${DOC}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
