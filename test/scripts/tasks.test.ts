import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";

import { deployProtocol, deploymentBlock } from "../../scripts/deploy/deployProtocol";
import { loadNetworkParameters } from "../../scripts/deploy/parameters";
import { readAddressBook } from "../../offchain/common/addressBook";
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
      parameters: { ignition: {}, roles: { StakeManager: { SLASHER_ROLE: [slasher.address] } } },
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
    });

    it("grants the configured roles", async function () {
      const [, slasher] = await ethers.getSigners();
      expect(await staking.hasRole(await staking.SLASHER_ROLE(), slasher.address)).to.equal(true);
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

    it("assigns with a consent signed elsewhere (stake:consent)", async function () {
      const [owner] = await ethers.getSigners();
      const out = await runTask("stake:create", { type: "host", amount: "100", addresses });
      const stakeId = /created stake (\d+)/.exec(out)![1];
      process.env.EDGE_DEVICE_KEY = "0x" + "33".repeat(32);
      const consent = await runTask("stake:consent", { owner: owner.address, minutes: 30, addresses });
      delete process.env.EDGE_DEVICE_KEY;
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
