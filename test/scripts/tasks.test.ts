import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";

import { deployProtocol, deploymentBlock, recordedRewardsArguments } from "../../scripts/deploy/deployProtocol";
import { loadNetworkParameters } from "../../scripts/deploy/parameters";
import { readAddressBook } from "../../offchain/common/addressBook";
import { keysFromKeystores, writeKeystoreFile } from "../../offchain/common/keystore";
import { startRpcServer } from "../shared/rpc";
import type { StakeManager } from "../../typechain";
import { DAY, DEFAULTS, StakeStatus } from "../shared/constants";

const DEVICE_KEY = "0x" + "11".repeat(32);
const OTHER_DEVICE_KEY = "0x" + "22".repeat(32);

/** Runs a task in-process and returns what it printed. */
async function runTask(name: string, args: Record<string, unknown>): Promise<string> {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...parts: unknown[]) => lines.push(parts.map(String).join(" "));
  try {
    await hre.run(name, args);
  } finally {
    console.log = original;
  }
  return lines.join("\n");
}

describe("deploy and stake tasks", function () {
  let dir: string;
  let addresses: string;
  let staking: StakeManager;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-tasks-"));
    const [, slasher] = await ethers.getSigners();
    const { file, book } = await deployProtocol(hre, {
      parameters: {
        ignition: {},
        roles: {
          StakeManager: { SLASHER_ROLE: [slasher.address] },
          RewardsManager: { ORACLE_ADMIN_ROLE: [(await ethers.getSigners())[0].address] },
          PaymentVault: { BILLER_ROLE: [(await ethers.getSigners())[0].address] },
        },
      },
      addressesDir: dir,
    });
    addresses = file;
    staking = (await ethers.getContractAt(
      "StakeManager",
      book.contracts.StakeManager!.address,
    )) as unknown as StakeManager;
  });

  after(function () {
    delete process.env.EDGE_DEVICE_KEY;
    rmSync(dir, { recursive: true, force: true });
  });

  describe("deployProtocol", function () {
    it("deploys with the protocol defaults and writes the address book", async function () {
      const book = readAddressBook(addresses);
      expect(book.chainId).to.equal(31337);
      const token = await ethers.getContractAt("EdgeToken", book.contracts.EdgeToken!.address);
      expect(await staking.token()).to.equal(await token.getAddress());
      expect(await token.totalSupply()).to.equal(ethers.parseEther("1000000000"));
      for (let t = 0; t < 3; t++) {
        const params = await staking.typeParams(t);
        expect(params.minimumStake).to.equal(DEFAULTS.typeParams[t].minimumStake);
        expect(params.unbondingPeriod).to.equal(90n * DAY);
      }
      expect(await staking.expressReleaseFeeBps()).to.equal(2500n);
      expect(await staking.defaultAdminDelay()).to.equal(2n * DAY);
      expect(book.contracts.StakeManager!.blockNumber).to.equal(await deploymentBlock(hre, await staking.getAddress()));
      expect(book.contracts.TokenMigration).to.equal(undefined);
      const rewards = await ethers.getContractAt("RewardsManager", book.contracts.RewardsManager!.address);
      const [deployer] = await ethers.getSigners();
      expect(await staking.rewardsManager()).to.equal(await rewards.getAddress());
      expect(await rewards.epochDuration()).to.equal(DAY);
      const [members, threshold] = await rewards.committee();
      expect(members).to.deep.equal([deployer.address]);
      expect(threshold).to.equal(1n);
      const vault = await ethers.getContractAt("PaymentVault", book.contracts.PaymentVault!.address);
      expect(await vault.rewardPool()).to.equal(await rewards.getAddress());
      expect(await vault.token()).to.equal(await token.getAddress());
      expect((await vault.params()).referrerShareBps).to.equal(1000n);
    });

    it("keeps an earlier address book's deployment block only if the chain confirms it", async function () {
      // A local chain redeploys to the same addresses, not always in the same blocks (interval mining).
      const address = await staking.getAddress();
      const actual = await deploymentBlock(hre, address);
      expect(await deploymentBlock(hre, address, 0, actual)).to.equal(actual);
      expect(await deploymentBlock(hre, address, 0, actual + 1)).to.equal(actual);
      expect(await deploymentBlock(hre, address, 0, actual - 1)).to.equal(actual);
      expect(await deploymentBlock(hre, address, actual - 1, 0)).to.equal(actual);
    });

    it("deploys the migration and funds its reserve when a legacy token is named", async function () {
      const [deployer] = await ethers.getSigners();
      const legacy = await ethers.deployContract("LegacyTokenMock", [0, deployer.address, 1000n]);
      const otherDir = mkdtempSync(join(tmpdir(), "edge-migration-"));
      try {
        const deadline = BigInt((await ethers.provider.getBlock("latest"))!.timestamp) + 30n * DAY;
        const { book } = await deployProtocol(hre, {
          parameters: {
            ignition: { TokenMigration: { legacyToken: await legacy.getAddress(), deadline } },
            roles: {},
            migration: { reserve: ethers.parseEther("5000") },
          },
          addressesDir: otherDir,
        });
        const migration = await ethers.getContractAt("TokenMigration", book.contracts.TokenMigration!.address);
        expect(await migration.token()).to.equal(book.contracts.EdgeToken!.address);
        expect(await migration.legacyToken()).to.equal(await legacy.getAddress());
        const token = await ethers.getContractAt("EdgeToken", book.contracts.EdgeToken!.address);
        expect(await token.balanceOf(await migration.getAddress())).to.equal(ethers.parseEther("5000"));
      } finally {
        rmSync(otherDir, { recursive: true, force: true });
      }
    });

    it("grants the configured roles", async function () {
      const [, slasher] = await ethers.getSigners();
      expect(await staking.hasRole(await staking.SLASHER_ROLE(), slasher.address)).to.equal(true);
    });

    it("reuses the genesis and committee an interrupted deployment recorded", function () {
      const folder = join(dir, "journal");
      expect(recordedRewardsArguments(folder)).to.equal(undefined);
      mkdirSync(folder);
      const record = {
        futureId: "RewardsManager#RewardsManager",
        type: "DEPLOYMENT_EXECUTION_STATE_INITIALIZE",
        constructorArgs: [
          "0x1",
          "0x2",
          { _kind: "bigint", value: "0" },
          { _kind: "bigint", value: "1795315764" },
          {},
          ["0xabc"],
        ],
      };
      writeFileSync(join(folder, "journal.jsonl"), `{"type":"OTHER"}\n${JSON.stringify(record)}\n`);
      expect(recordedRewardsArguments(folder)).to.deep.equal({ genesis: 1795315764n, committee: ["0xabc"] });
    });

    it("reads per-network parameter files with bigints", function () {
      const params = loadNetworkParameters("localhost");
      const typeParams = (params.ignition.StakeManager as { typeParams: Array<{ unbondingPeriod: bigint }> })
        .typeParams;
      expect(typeParams[0].unbondingPeriod).to.equal(300n);
      expect(loadNetworkParameters("no-such-network")).to.deep.equal({ ignition: {}, roles: {} });
      expect(() => loadNetworkParameters("x", join(dir, "missing.json"))).to.throw(/does not exist/);
    });
  });

  describe("stake:*", function () {
    it("creates a stake with a permit, assigns a device, unstakes and releases", async function () {
      const out = await runTask("stake:create", { type: "gateway", amount: "25000", addresses });
      const stakeId = BigInt(/created stake (\d+)/.exec(out)![1]);
      expect(out).to.match(/gateway, unassigned/);
      expect((await staking.getStake(stakeId)).amount).to.equal(ethers.parseEther("25000"));

      process.env.EDGE_DEVICE_KEY = DEVICE_KEY;
      await runTask("stake:assign", { stake: stakeId.toString(), addresses });
      const device = new ethers.Wallet(DEVICE_KEY).address;
      expect(await staking.isAdmitted(device)).to.equal(true);

      const status = JSON.parse(await runTask("stake:status", { device, json: true, addresses }));
      expect(status).to.include({ stakeId: stakeId.toString(), type: "gateway", status: "assigned", admitted: true });

      await runTask("stake:unstake", { stake: stakeId.toString(), addresses });
      expect(await staking.isAdmitted(device)).to.equal(false);
      await runTask("stake:unstake", { stake: stakeId.toString(), cancel: true, addresses });
      expect(await staking.isAdmitted(device)).to.equal(true);
      await runTask("stake:unstake", { stake: stakeId.toString(), addresses });
      await expect(runTask("stake:release", { stake: stakeId.toString(), addresses })).to.be.rejectedWith(
        /release failed: .*StakeStillLocked/,
      );
      const express = await runTask("stake:release", { stake: stakeId.toString(), express: true, addresses });
      expect(express).to.match(/fee 6250\.0 EDGE, you receive 18750\.0 EDGE/);
      expect((await staking.getStake(stakeId)).status).to.equal(BigInt(StakeStatus.Released));
      await runTask("stake:unassign", { stake: stakeId.toString(), addresses });
      expect(await staking.stakeOfDevice(device)).to.equal(0n);
    });

    it("stakes and assigns in one go, then releases after unbonding", async function () {
      process.env.EDGE_DEVICE_KEY = OTHER_DEVICE_KEY;
      const out = await runTask("stake:create", { type: "host", amount: "150.5", assign: true, addresses });
      expect(out).to.match(/host, assigned, device admitted/);
      const stakeId = /created stake (\d+)/.exec(out)![1];
      await runTask("stake:unstake", { stake: stakeId, addresses });
      await time.increase(90n * DAY);
      expect(await runTask("stake:release", { stake: stakeId, addresses })).to.match(/150\.5 EDGE returned/);
    });

    it("assigns with a consent signed elsewhere (stake:consent, device key in a keystore)", async function () {
      const [owner] = await ethers.getSigners();
      const out = await runTask("stake:create", { type: "host", amount: "100", addresses });
      const stakeId = /created stake (\d+)/.exec(out)![1];
      // The device operator keeps the device key in an encrypted keystore.
      delete process.env.EDGE_DEVICE_KEY;
      const keystore = join(dir, "device-33.json");
      writeKeystoreFile(keystore, "device password", "0x" + "33".repeat(32), 1024);
      process.env.EDGE_DEVICE_KEY_KEYSTORE = keystore;
      process.env.EDGE_DEVICE_KEY_KEYSTORE_PASSWORD = "not it";
      await expect(runTask("stake:consent", { owner: owner.address, minutes: 30, addresses })).to.be.rejectedWith(
        `keystore ${keystore}: wrong password`,
      );
      process.env.EDGE_DEVICE_KEY_KEYSTORE_PASSWORD = "device password";
      let consent: string;
      try {
        consent = await runTask("stake:consent", { owner: owner.address, minutes: 30, addresses });
      } finally {
        delete process.env.EDGE_DEVICE_KEY_KEYSTORE;
        delete process.env.EDGE_DEVICE_KEY_KEYSTORE_PASSWORD;
      }
      expect(JSON.parse(consent).device).to.equal(new ethers.Wallet("0x" + "33".repeat(32)).address);
      const file = join(dir, "consent.json");
      writeFileSync(file, consent);
      await runTask("stake:assign", { stake: stakeId, consent: file, addresses });
      expect(await staking.isAdmitted(JSON.parse(consent).device)).to.equal(true);
    });

    it("lists an owner's stakes", async function () {
      const [owner] = await ethers.getSigners();
      const list = JSON.parse(await runTask("stake:status", { owner: owner.address, json: true, addresses }));
      expect(list.length).to.equal(Number(await staking.stakeCount()));
      expect(list.map((s: { stakeId: string }) => s.stakeId)).to.deep.equal(
        list.map((_: unknown, i: number) => String(i + 1)),
      );
    });

    it("rejects bad input with a clear message and changes nothing", async function () {
      const count = await staking.stakeCount();
      const cases: Array<[string, Record<string, unknown>, RegExp]> = [
        [
          "stake:create",
          { type: "validator", amount: "100" },
          /stake type "validator" is not one of host, gateway, stargate/,
        ],
        ["stake:create", { type: "host", amount: "ten" }, /amount "ten" is not a token amount/],
        ["stake:create", { type: "host", amount: "0" }, /amount must be positive/],
        ["stake:create", { type: "gateway", amount: "100" }, /below the gateway minimum of 25000\.0 EDGE/],
        ["stake:create", { type: "host", amount: "100", assign: true }, /set EDGE_DEVICE_KEY/],
        ["stake:status", { stake: "1", owner: "0x0000000000000000000000000000000000000001" }, /exactly one of/],
        ["stake:status", { stake: "999" }, /stake 999 does not exist/],
        ["stake:status", { device: "0x12" }, /--device "0x12" is not an address/],
        ["stake:unstake", { stake: "-1" }, /stake id "-1" is not a positive integer/],
        ["stake:consent", { owner: "0x0000000000000000000000000000000000000001", minutes: 60 }, /set EDGE_DEVICE_KEY/],
        [
          "stake:assign",
          { stake: "1", consent: '{"device":"0x1"}' },
          /invalid consent: consent.device must be an address/,
        ],
        ["stake:assign", { stake: "1", consent: "/no/such/file" }, /neither a consent JSON object nor a readable file/],
      ];
      for (const [name, args, message] of cases) {
        await expect(runTask(name, { addresses, ...args }), name).to.be.rejectedWith(message);
      }
      process.env.EDGE_DEVICE_KEY = "0x1234";
      await expect(runTask("stake:assign", { stake: "1", addresses })).to.be.rejectedWith(/is not a private key/);
      delete process.env.EDGE_DEVICE_KEY;
      await expect(runTask("stake:status", { stake: "1", addresses: join(dir, "none.json") })).to.be.rejectedWith(
        /no address book/,
      );
      expect(await staking.stakeCount()).to.equal(count);
    });

    it("refuses a consent given to another owner", async function () {
      const [, other] = await ethers.getSigners();
      process.env.EDGE_DEVICE_KEY = "0x" + "44".repeat(32);
      const consent = await runTask("stake:consent", { owner: other.address, minutes: 5, addresses });
      delete process.env.EDGE_DEVICE_KEY;
      await expect(runTask("stake:assign", { stake: "1", consent, addresses })).to.be.rejectedWith(
        /the consent is for owner .*, but transactions are sent by/,
      );
    });
  });

  describe("rewards:* and oracle:*", function () {
    // Hardhat's account #0: the deployer, hence the default one-member committee.
    const DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let stakeId: string;
    let epoch: bigint;

    before(async function () {
      const out = await runTask("stake:create", { type: "host", amount: "5000", addresses });
      stakeId = /created stake (\d+)/.exec(out)![1];
      const book = readAddressBook(addresses);
      const rewards = await ethers.getContractAt("RewardsManager", book.contracts.RewardsManager!.address);
      await time.increase(2n * DAY);
      epoch = (await rewards.currentEpoch()) - 1n;
    });

    after(function () {
      delete process.env.EDGE_ORACLE_KEYS;
    });

    it("funds the pool, posts scores idempotently, and claims and compounds", async function () {
      expect(await runTask("rewards:fund", { amount: "100000", addresses })).to.match(/available now: 100000\.0 EDGE/);
      const file = join(dir, "scores.json");
      writeFileSync(
        file,
        JSON.stringify({
          epoch: Number(epoch),
          scores: [
            { stakeId, score: 10000 },
            { stakeId: "999", score: 1 },
          ],
        }),
      );
      process.env.EDGE_ORACLE_KEYS = DEPLOYER_KEY;
      const first = await runTask("oracle:post", { scores: file, batchSize: 1, addresses });
      expect(first).to.match(/batch 0: 1 of 1 entries accrued/);
      expect(first).to.match(/batch 1: 0 of 1 entries accrued/);
      expect(await runTask("oracle:post", { scores: file, batchSize: 1, addresses })).to.match(
        /batch 0: already posted[\s\S]*batch 1: already posted[\s\S]*0 batch\(es\) posted/,
      );
      const status = JSON.parse(await runTask("rewards:status", { stake: stakeId, json: true, addresses }));
      expect(BigInt(status.stake.accrued)).to.be.greaterThan(0n);
      expect(status.stake.lastScoredEpoch).to.equal(epoch.toString());
      expect(status.stake.aprBpsAtAverageScore).to.equal(1000);
      expect(BigInt(status.pool.reserved)).to.equal(BigInt(status.stake.accrued));
      const [, other] = await ethers.getSigners();
      expect(await runTask("rewards:claim", { stake: stakeId, to: other.address, addresses })).to.match(
        /claimed .* to /,
      );
      await expect(runTask("rewards:claim", { stake: stakeId, addresses })).to.be.rejectedWith(/has no accrued yield/);
      // Score the next epoch by device, then compound.
      await time.increase(DAY);
      const device = new ethers.Wallet(DEVICE_KEY).address;
      writeFileSync(file, JSON.stringify({ epoch: Number(epoch + 1n), scores: [{ device, score: 10000 }] }));
      process.env.EDGE_DEVICE_KEY = DEVICE_KEY;
      await runTask("stake:assign", { stake: stakeId, addresses });
      delete process.env.EDGE_DEVICE_KEY;
      writeFileSync(
        file,
        JSON.stringify({
          epoch: Number(epoch + 1n),
          scores: [
            { device, score: 10000 },
            { device: ethers.ZeroAddress, score: 1 },
          ],
        }),
      );
      const byDevice = await runTask("oracle:post", { scores: file, addresses });
      expect(byDevice).to.match(/skipping 0x0{40}: not bound to a stake/);
      expect(byDevice).to.match(/batch 0: 1 of 1 entries accrued/);
      expect(await runTask("rewards:compound", { stake: stakeId, addresses })).to.match(/compounded .* into stake/);
    });

    it("shows and replaces the committee", async function () {
      const [deployer, second] = await ethers.getSigners();
      expect(await runTask("oracle:committee", { addresses })).to.match(/committee v1: 1 of 1/);
      const out = await runTask("oracle:committee", {
        members: `${deployer.address},${second.address}`,
        threshold: 2,
        addresses,
      });
      expect(out).to.match(/committee v2: 2 of 2/);
    });

    it("rejects bad input with a clear message", async function () {
      const file = join(dir, "bad.json");
      writeFileSync(file, JSON.stringify({ epoch: 1, scores: [{ stakeId: "1", score: 1 }] }));
      const cases: Array<[string, Record<string, unknown>, RegExp]> = [
        ["rewards:fund", { amount: "x" }, /is not a token amount/],
        ["rewards:fund", { amount: "9999999999" }, /holds .* less than 9999999999/],
        ["rewards:claim", { stake: "1", to: "nope" }, /--to "nope" is not an address/],
        ["rewards:status", { stake: "999" }, /stake 999 does not exist/],
        [
          "oracle:committee",
          { members: "0x0000000000000000000000000000000000000001" },
          /give both --members and --threshold/,
        ],
        [
          "oracle:committee",
          { members: "0x0000000000000000000000000000000000000001", threshold: 2 },
          /--threshold must be between 1 and 1/,
        ],
        ["oracle:post", { scores: join(dir, "none.json") }, /cannot read scores/],
        ["oracle:post", { scores: file, epoch: "2" }, /--epoch 2 differs from the file's epoch 1/],
      ];
      delete process.env.EDGE_ORACLE_KEYS;
      cases.push(["oracle:post", { scores: file }, /set EDGE_ORACLE_KEYS/]);
      for (const [name, args, message] of cases) {
        await expect(runTask(name, { addresses, batchSize: 200, ...args }), name).to.be.rejectedWith(message);
      }
      process.env.EDGE_ORACLE_KEYS = DEPLOYER_KEY;
      // The committee now needs 2 signatures (previous test): one key is not enough.
      await expect(runTask("oracle:post", { scores: file, batchSize: 200, addresses })).to.be.rejectedWith(
        /1 committee key\(s\) given, the threshold is 2/,
      );
      process.env.EDGE_ORACLE_KEYS = `${DEPLOYER_KEY},0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d`;
      const future = join(dir, "future.json");
      writeFileSync(future, JSON.stringify({ epoch: 10_000, scores: [{ stakeId: "1", score: 1 }] }));
      await expect(runTask("oracle:post", { scores: future, batchSize: 200, addresses })).to.be.rejectedWith(
        /epoch 10000 is not closed yet/,
      );
    });
  });

  describe("pay:* and billing:settle", function () {
    it("deposits, sets cap and referrer, settles bills idempotently and withdraws", async function () {
      const [owner, referrer] = await ethers.getSigners();
      expect(await runTask("pay:deposit", { amount: "100", addresses })).to.match(/balance now: 100\.0 EDGE/);
      await runTask("pay:set-cap", { cap: "30", addresses });
      await runTask("pay:set-referrer", { referrer: referrer.address, addresses });
      const file = join(dir, "bills.json");
      const hash = ethers.id("bill");
      writeFileSync(
        file,
        JSON.stringify({
          period: "2026-11",
          bills: [
            { customer: owner.address, total: ethers.parseEther("40").toString(), billHash: hash },
            { customer: referrer.address, total: "0", billHash: hash },
          ],
        }),
      );
      const first = await runTask("billing:settle", { bills: file, batchSize: 100, addresses });
      expect(first).to.match(/charged 30\.0 EDGE, short 10\.0 EDGE/);
      expect(first).to.match(/1 bill\(s\) settled, 30\.0 EDGE charged, 10\.0 EDGE short/);
      expect(await runTask("billing:settle", { bills: file, batchSize: 100, addresses })).to.match(
        /already settled[\s\S]*0 bill\(s\) settled/,
      );
      const status = JSON.parse(await runTask("pay:status", { json: true, addresses }));
      expect(status).to.include({
        balance: ethers.parseEther("70").toString(),
        outstanding: ethers.parseEther("10").toString(),
        goodStanding: false,
      });
      expect(status.lastSettledPeriod).to.equal((2026 - 1970) * 12 + 10);
      const referred = JSON.parse(await runTask("pay:status", { customer: referrer.address, json: true, addresses }));
      expect(referred.referralCredit).to.equal(ethers.parseEther("3").toString());
      expect(await runTask("pay:withdraw", { amount: "20", addresses })).to.match(/executable from/);
      await expect(runTask("pay:withdraw", { execute: true, addresses })).to.be.rejectedWith(
        /WithdrawalNotYetExecutable/,
      );
      await time.increase(7n * DAY);
      expect(await runTask("pay:withdraw", { execute: true, addresses })).to.match(/withdrew 20\.0 EDGE/);
      await runTask("pay:set-cap", { cap: "0", addresses });
      expect(await runTask("pay:status", { addresses })).to.match(/cap +none per period/);
    });

    it("rejects bad input with a clear message", async function () {
      const [owner] = await ethers.getSigners();
      const file = join(dir, "bad-bills.json");
      writeFileSync(file, JSON.stringify({ period: "2026-13", bills: [] }));
      const cases: Array<[string, Record<string, unknown>, RegExp]> = [
        ["pay:deposit", { amount: "-1" }, /is not a token amount/],
        ["pay:deposit", { amount: "1", for: "0x1" }, /--for "0x1" is not an address/],
        ["pay:withdraw", {}, /exactly one of --amount, --execute or --cancel/],
        ["pay:withdraw", { amount: "1", cancel: true }, /exactly one of/],
        ["pay:withdraw", { amount: "99999999" }, /the balance is .* less than 99999999/],
        ["pay:set-referrer", { referrer: owner.address }, /the referrer is already set|cannot refer itself/],
        ["billing:settle", { bills: file }, /period "2026-13" is neither a UTC month/],
        ["billing:settle", { bills: join(dir, "missing.json") }, /cannot read bills/],
      ];
      for (const [name, args, message] of cases) {
        await expect(
          runTask(name, { addresses, batchSize: 100, execute: false, cancel: false, ...args }),
          name,
        ).to.be.rejectedWith(message);
      }
      writeFileSync(
        file,
        JSON.stringify({
          period: "2026-10",
          bills: [{ customer: owner.address, total: "1.5", billHash: ethers.ZeroHash }],
        }),
      );
      await expect(runTask("billing:settle", { bills: file, batchSize: 100, addresses })).to.be.rejectedWith(
        /bills\[0\]\.total must be a decimal integer string/,
      );
    });
  });

  describe("keys:keystore and keystores on --network rpc", function () {
    const PASSWORD = "a password for tests";

    afterEach(function () {
      delete process.env.EDGE_KEYSTORE_PASSWORD;
      delete process.env.EDGE_TEST_KEY;
    });

    it("encrypts a key from the environment or a new one, and never overwrites", async function () {
      const key = ethers.Wallet.createRandom().privateKey;
      process.env.EDGE_TEST_KEY = key;
      const file = join(dir, "given.json");
      await expect(runTask("keys:keystore", { out: file, keyEnv: "EDGE_TEST_KEY" })).to.be.rejectedWith(
        /EDGE_KEYSTORE is set: give its password in EDGE_KEYSTORE_PASSWORD or EDGE_KEYSTORE_PASSWORD_FILE/,
      );
      process.env.EDGE_KEYSTORE_PASSWORD = PASSWORD;
      const out = await runTask("keys:keystore", { out: file, keyEnv: "EDGE_TEST_KEY" });
      expect(out).to.include(`${new ethers.Wallet(key).address} written to ${file}`);
      expect(
        keysFromKeystores({ EDGE_KEYSTORE: file, EDGE_KEYSTORE_PASSWORD: PASSWORD }, "EDGE_KEYSTORE"),
      ).to.deep.equal([key]);
      await expect(runTask("keys:keystore", { out: file })).to.be.rejectedWith(/exists; not overwriting a keystore/);
      await expect(runTask("keys:keystore", { out: join(dir, "x.json"), keyEnv: "EDGE_NO_SUCH" })).to.be.rejectedWith(
        /EDGE_NO_SUCH is not set/,
      );
      const fresh = await runTask("keys:keystore", { out: join(dir, "fresh.json") });
      const [address] = fresh.split(" ");
      const [freshKey] = keysFromKeystores(
        { EDGE_KEYSTORE: join(dir, "fresh.json"), EDGE_KEYSTORE_PASSWORD: PASSWORD },
        "EDGE_KEYSTORE",
      );
      expect(new ethers.Wallet(freshKey).address).to.equal(address);
    });

    it("sends from the keystore's account on --network rpc, and refuses a wrong password", async function () {
      this.timeout(120_000);
      const rpc = await startRpcServer();
      try {
        const [deployer] = await ethers.getSigners();
        const account = ethers.Wallet.createRandom();
        await (await deployer.sendTransaction({ to: account.address, value: ethers.parseEther("1") })).wait();
        const token = await ethers.getContractAt("EdgeToken", readAddressBook(addresses).contracts.EdgeToken!.address);
        await (await token.connect(deployer).transfer(account.address, ethers.parseEther("10"))).wait();
        const file = join(dir, "rpc-sender.json");
        writeKeystoreFile(file, PASSWORD, account.privateKey, 1024);
        const run = promisify(execFile);
        const env = { ...process.env, EDGE_RPC_URL: rpc.url, EDGE_KEYSTORE: file, EDGE_KEYSTORE_PASSWORD: PASSWORD };
        const args = ["hardhat", "pay:deposit", "--amount", "2.5", "--network", "rpc", "--addresses", addresses];
        await run("npx", args, { cwd: join(__dirname, "..", ".."), env });
        const vault = await ethers.getContractAt(
          "PaymentVault",
          readAddressBook(addresses).contracts.PaymentVault!.address,
        );
        expect(await vault.balanceOf(account.address)).to.equal(ethers.parseEther("2.5"));
        const error = await run("npx", args, {
          cwd: join(__dirname, "..", ".."),
          env: { ...env, EDGE_KEYSTORE_PASSWORD: "wrong" },
        }).then(
          () => undefined,
          (e: { code: number; stderr: string }) => e,
        );
        expect(error, "the command succeeded").to.not.equal(undefined);
        expect(error!.code).to.equal(2);
        expect(error!.stderr).to.include(`keystore ${file}: wrong password`);
        expect(await vault.balanceOf(account.address)).to.equal(ethers.parseEther("2.5"));
      } finally {
        await rpc.close();
      }
    });

    it("refuses a confirmation depth that is not a whole number", async function () {
      process.env.EDGE_CONFIRMATIONS = "two";
      try {
        await expect(runTask("pay:deposit", { amount: "1", addresses })).to.be.rejectedWith(
          /EDGE_CONFIRMATIONS "two" is not a whole number of blocks from 1 to 1000/,
        );
      } finally {
        delete process.env.EDGE_CONFIRMATIONS;
      }
    });
  });

  it("exits non-zero with the message when run from the command line", async function () {
    this.timeout(60_000);
    const run = promisify(execFile);
    const error = await run("npx", ["hardhat", "stake:status", "--stake", "abc", "--addresses", addresses], {
      cwd: join(__dirname, "..", ".."),
    }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error, "the command succeeded").to.not.equal(undefined);
    expect(error!.code).to.equal(1);
    expect(error!.stderr).to.match(/stake id "abc" is not a positive integer/);
  });
});
