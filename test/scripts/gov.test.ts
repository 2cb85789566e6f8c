import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Interface } from "ethers";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";

import { deployProtocol } from "../../scripts/deploy/deployProtocol";
import { checkTimelockedRoles, parseTimelock } from "../../scripts/deploy/parameters";
import { PARAMETERS } from "../../scripts/tasks/govParams";
import type { EdgeToken, PaymentVault, RewardsManager, StakeManager, TimelockController } from "../../typechain";

const DELAY = 3600n;

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

const operationId = (out: string) => /operation (0x[0-9a-f]{64})/.exec(out)![1];

describe("gov:* tasks and the timelock (D37)", function () {
  let dir: string;
  let addresses: string;
  let staking: StakeManager;
  let rewards: RewardsManager;
  let vault: PaymentVault;
  let token: EdgeToken;
  let timelock: TimelockController;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-gov-"));
    const [deployer] = await ethers.getSigners();
    const { file, book } = await deployProtocol(hre, {
      parameters: {
        ignition: {},
        roles: {
          StakeManager: { SLASHER_ROLE: [deployer.address], PAUSER_ROLE: [deployer.address] },
          RewardsManager: { PAUSER_ROLE: [deployer.address] },
          PaymentVault: { PAUSER_ROLE: [deployer.address] },
        },
        timelock: { minDelay: DELAY, proposers: [deployer.address], executors: [deployer.address] },
      },
      addressesDir: dir,
    });
    addresses = file;
    const at = async <T>(name: string, address: string) => (await ethers.getContractAt(name, address)) as unknown as T;
    staking = await at<StakeManager>("StakeManager", book.contracts.StakeManager!.address);
    rewards = await at<RewardsManager>("RewardsManager", book.contracts.RewardsManager!.address);
    vault = await at<PaymentVault>("PaymentVault", book.contracts.PaymentVault!.address);
    token = await at<EdgeToken>("EdgeToken", book.contracts.EdgeToken!.address);
    timelock = await at<TimelockController>("TimelockController", book.contracts.TimelockController!.address);
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it("D37: deploys the timelock as admin and parameter-role holder; the deployer keeps only what it is listed for", async function () {
    const [deployer] = await ethers.getSigners();
    const address = await timelock.getAddress();
    for (const contract of [staking, rewards, vault]) {
      expect(await contract.defaultAdmin()).to.equal(address);
      expect(await contract.hasRole(await contract.PARAMETER_ADMIN_ROLE(), address)).to.equal(true);
      expect(await contract.hasRole(await contract.PARAMETER_ADMIN_ROLE(), deployer.address)).to.equal(false);
      expect(await contract.hasRole(await contract.PAUSER_ROLE(), deployer.address)).to.equal(true);
    }
    expect(await rewards.hasRole(await rewards.ORACLE_ADMIN_ROLE(), address)).to.equal(true);
    expect(await staking.hasRole(await staking.SLASHER_ROLE(), deployer.address)).to.equal(true);
    expect(await staking.rewardsManager()).to.equal(await rewards.getAddress());
    expect(await timelock.getMinDelay()).to.equal(DELAY);
    expect(await timelock.hasRole(await timelock.DEFAULT_ADMIN_ROLE(), deployer.address)).to.equal(false);
    expect(await timelock.hasRole(await timelock.PROPOSER_ROLE(), deployer.address)).to.equal(true);
    expect(await timelock.hasRole(await timelock.EXECUTOR_ROLE(), deployer.address)).to.equal(true);
    expect(await timelock.hasRole(await timelock.CANCELLER_ROLE(), deployer.address)).to.equal(true);
  });

  it("D37: every parameter row names a getter and setter the contracts have", function () {
    const interfaces: Record<string, Interface> = {
      StakeManager: staking.interface,
      RewardsManager: rewards.interface,
      PaymentVault: vault.interface,
      TimelockController: timelock.interface,
    };
    for (const row of PARAMETERS) {
      const iface = interfaces[row.contract];
      expect(iface.getFunction(row.getter), `${row.name} getter`).to.not.equal(null);
      if (row.setter) expect(iface.getFunction(row.setter), `${row.name} setter`).to.not.equal(null);
    }
    expect(new Set(PARAMETERS.map((p) => p.name)).size).to.equal(PARAMETERS.length);
  });

  it("D37: gov:params shows every parameter with its current value", async function () {
    const shown = JSON.parse(await runTask("gov:params", { json: true, addresses }));
    expect(shown.timelock).to.deep.equal({ address: await timelock.getAddress(), minDelay: Number(DELAY) });
    expect(shown.parameters.map((p: { name: string }) => p.name)).to.deep.equal(PARAMETERS.map((p) => p.name));
    const value = (name: string) => shown.parameters.find((p: { name: string }) => p.name === name).value;
    expect(value("staking.minimumStake.gateway")).to.equal((await staking.typeParams(1)).minimumStake.toString());
    expect(value("vault.withdrawalNotice")).to.equal((await vault.params()).withdrawalNotice.toString());
    expect(value("rewards.committee")).to.deep.equal((await rewards.committee())[0].map(String));
    expect(value("timelock.minDelay")).to.equal(DELAY.toString());
    const text = await runTask("gov:params", { addresses });
    expect(text).to.match(/staking\.minimumStake\.host\s+100\.0 EDGE/);
    expect(text).to.match(/rewards\.genesis\s+\d+ \(.*\)\s+\(fixed\)/);
  });

  it("D37: a proposed change is not applied before the delay; gov:params --execute refuses, then applies it after", async function () {
    const before = (await staking.typeParams(0)).minimumStake;
    const out = await runTask("gov:params", { name: "staking.minimumStake.host", value: "200", addresses });
    expect(out).to.match(/proposed StakeManager\.setMinimumStake\(0, 200000000000000000000\)/);
    const id = operationId(out);
    expect((await staking.typeParams(0)).minimumStake).to.equal(before);
    const pending = JSON.parse(await runTask("gov:params", { json: true, addresses })).pending;
    expect(pending).to.have.length(1);
    expect(pending[0]).to.include({ id, state: "waiting" });
    await expect(runTask("gov:params", { execute: id, addresses })).to.be.rejectedWith(
      new RegExp(`operation ${id} is not ready: it can be executed from .*, in \\d+ s`),
    );
    await time.increase(DELAY);
    const executed = await runTask("gov:params", { execute: id, addresses });
    expect(executed).to.match(/executed StakeManager\.setMinimumStake\(0, 200000000000000000000\)/);
    expect((await staking.typeParams(0)).minimumStake).to.equal(ethers.parseEther("200"));
    await expect(runTask("gov:params", { execute: id, addresses })).to.be.rejectedWith(/was already executed/);
  });

  it("D37: a struct field changes alone; a proposal can be cancelled", async function () {
    const before = await vault.params();
    const id = operationId(await runTask("gov:params", { name: "vault.withdrawalNotice", value: "3d", addresses }));
    await time.increase(DELAY);
    await runTask("gov:params", { execute: id, addresses });
    const after = await vault.params();
    expect(after.withdrawalNotice).to.equal(3n * 86_400n);
    expect(after.referrerShareBps).to.equal(before.referrerShareBps);
    expect(after.freeBuffer).to.equal(before.freeBuffer);
    const [window] = await vault.billingLimit();
    const limit = operationId(
      await runTask("gov:params", { name: "vault.billingCapacity", value: "12345", addresses }),
    );
    await time.increase(DELAY);
    await runTask("gov:params", { execute: limit, addresses });
    expect(await vault.billingLimit()).to.deep.equal([window, ethers.parseEther("12345")]);
    const other = operationId(await runTask("gov:params", { name: "timelock.minDelay", value: "2h", addresses }));
    expect(await runTask("gov:params", { cancel: other, addresses })).to.match(/cancelled operation/);
    await time.increase(DELAY);
    await expect(runTask("gov:params", { execute: other, addresses })).to.be.rejectedWith(/was cancelled/);
    expect(await timelock.getMinDelay()).to.equal(DELAY);
  });

  it("D37: gov:params refuses bad input and a change the contract would refuse, naming its custom error", async function () {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ name: "staking.nope", value: "1" }, /unknown parameter "staking\.nope"; known: staking\.minimumStake\.host/],
      [{ name: "staking.minimumStake.host" }, /--name and --value go together/],
      [{ name: "staking.minimumStake.host", value: "ten" }, /is not a token amount/],
      [{ name: "vault.referrerShareBps", value: "10001" }, /is not basis points \(0 to 10000\)/],
      [{ name: "vault.withdrawalNotice", value: "1w" }, /is not a duration/],
      [{ name: "staking.treasury", value: "0x12" }, /is not an address/],
      [{ name: "rewards.committee", value: "0x12,0x34" }, /"0x12" is not an address/],
      [{ name: "rewards.genesis", value: "1" }, /fixed at deployment/],
      [{ name: "staking.minimumStake.host", value: "200" }, /staking\.minimumStake\.host is already 200\.0 EDGE/],
      [{ name: "staking.minimumStake.host", value: "20000000" }, /would fail when executed: MinimumStakeOutOfBounds\(/],
      [{ execute: "0x1234" }, /--execute "0x1234" is not an operation id/],
      [{ execute: `0x${"ab".repeat(32)}` }, /no operation 0xabab.* was scheduled on the timelock/],
      [{ execute: `0x${"ab".repeat(32)}`, cancel: `0x${"ab".repeat(32)}` }, /not several/],
    ];
    const count = (await timelock.queryFilter(timelock.filters.CallScheduled())).length;
    for (const [args, message] of cases) {
      await expect(runTask("gov:params", { addresses, ...args }), JSON.stringify(args)).to.be.rejectedWith(message);
    }
    expect((await timelock.queryFilter(timelock.filters.CallScheduled())).length).to.equal(count);
  });

  it("D37: gov:pause and gov:unpause act at once with the pauser role", async function () {
    expect(await runTask("gov:pause", { contracts: "StakeManager,PaymentVault", addresses })).to.match(
      /StakeManager paused in 0x[0-9a-f]+\nPaymentVault paused/,
    );
    expect(await staking.paused()).to.equal(true);
    expect(await vault.paused()).to.equal(true);
    expect(await rewards.paused()).to.equal(false);
    expect(await runTask("gov:pause", { contracts: "StakeManager", addresses })).to.equal("StakeManager is already paused"); // prettier-ignore
    await runTask("gov:unpause", { contracts: "all", addresses });
    for (const contract of [staking, rewards, vault]) expect(await contract.paused()).to.equal(false);
    await expect(runTask("gov:pause", { contracts: "Staking", addresses })).to.be.rejectedWith(
      /contract "Staking" is not one of StakeManager, RewardsManager, PaymentVault \(or "all"\)/,
    );
  });

  it("D37: gov:slash slashes a stake or a device's stake and records the reason in StakeSlashed", async function () {
    const [, owner] = await ethers.getSigners();
    await token.transfer(owner.address, ethers.parseEther("1000"));
    await token.connect(owner).approve(await staking.getAddress(), ethers.parseEther("1000"));
    await staking.connect(owner).stake(0, ethers.parseEther("500"));
    const stakeId = (await staking.stakeCount()).toString();
    const out = await runTask("gov:slash", { stake: stakeId, amount: "50", reason: "served forged results in epoch 7", addresses }); // prettier-ignore
    expect(out).to.match(new RegExp(`slashed 50\\.0 EDGE from stake ${stakeId}`));
    expect(out).to.match(/left 450\.0 EDGE; reason recorded: "served forged results in epoch 7"/);
    const [event] = await staking.queryFilter(staking.filters.StakeSlashed(BigInt(stakeId)));
    expect(event.args.reason).to.equal("served forged results in epoch 7");
    expect((await staking.getStake(stakeId)).amount).to.equal(ethers.parseEther("450"));
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ amount: "1", reason: "x" }, /exactly one of --stake and --device/],
      [{ stake: stakeId, device: owner.address, amount: "1", reason: "x" }, /exactly one of --stake and --device/],
      [{ stake: stakeId, amount: "0", reason: "x" }, /amount must be positive/],
      [{ stake: stakeId, amount: "1", reason: "  " }, /--reason must say why/],
      [{ stake: stakeId, amount: "1", reason: "x".repeat(201) }, /at most 200/],
      [{ stake: "999", amount: "1", reason: "x" }, /stake 999 does not exist/],
      [{ stake: stakeId, amount: "451", reason: "x" }, /more than stake \d+ holds \(450\.0 EDGE\)/],
      [{ device: "0xnope", amount: "1", reason: "x" }, /--device "0xnope" is not an address/],
      [{ device: owner.address, amount: "1", reason: "x" }, /device 0x[0-9a-fA-F]+ has no stake/],
    ];
    for (const [args, message] of cases) {
      await expect(runTask("gov:slash", { addresses, ...args }), JSON.stringify(args)).to.be.rejectedWith(message);
    }
    expect((await staking.getStake(stakeId)).amount).to.equal(ethers.parseEther("450"));
    process.env.EDGE_DEVICE_KEY = "0x" + "55".repeat(32);
    try {
      await runTask("stake:create", { type: "host", amount: "300", assign: true, addresses });
    } finally {
      delete process.env.EDGE_DEVICE_KEY;
    }
    const device = new ethers.Wallet("0x" + "55".repeat(32)).address;
    const byDevice = await runTask("gov:slash", { device, amount: "0.5", reason: "offline for a week", addresses });
    expect(byDevice).to.match(new RegExp(`slashed 0\\.5 EDGE from stake ${await staking.stakeOfDevice(device)}`));
    expect((await staking.getStake(await staking.stakeOfDevice(device))).amount).to.equal(ethers.parseEther("299.5"));
  });

  it("D37: gov:roles lists holders, and grants and revokes through the timelock that administers the roles", async function () {
    const [deployer, , newcomer] = await ethers.getSigners();
    const listed = JSON.parse(await runTask("gov:roles", { json: true, addresses }));
    const address = await timelock.getAddress();
    expect(listed.StakeManager.PARAMETER_ADMIN_ROLE).to.deep.equal([address]);
    expect(listed.StakeManager.DEFAULT_ADMIN_ROLE).to.deep.equal([address]);
    expect(listed.StakeManager.SLASHER_ROLE).to.deep.equal([deployer.address]);
    expect(listed.TimelockController.PROPOSER_ROLE).to.deep.equal([deployer.address]);
    expect(listed.TimelockController.DEFAULT_ADMIN_ROLE).to.deep.equal([address]);
    const grant = { contract: "PaymentVault", grant: "PAUSER_ROLE", account: newcomer.address, addresses };
    const id = operationId(await runTask("gov:roles", grant));
    expect(await vault.hasRole(await vault.PAUSER_ROLE(), newcomer.address)).to.equal(false);
    await expect(runTask("gov:roles", { execute: id, addresses })).to.be.rejectedWith(/is not ready/);
    await time.increase(DELAY);
    expect(await runTask("gov:roles", { execute: id, addresses })).to.match(/executed PaymentVault\.grantRole\(PAUSER_ROLE, 0x/); // prettier-ignore
    expect(await vault.hasRole(await vault.PAUSER_ROLE(), newcomer.address)).to.equal(true);
    const vaultRoles = JSON.parse(await runTask("gov:roles", { contract: "PaymentVault", json: true, addresses }));
    expect(vaultRoles.PaymentVault.PAUSER_ROLE).to.deep.equal([deployer.address, newcomer.address]);
    const revoke = { contract: "PaymentVault", revoke: "PAUSER_ROLE", account: newcomer.address, addresses };
    const revokeId = operationId(await runTask("gov:roles", revoke));
    await time.increase(DELAY);
    await runTask("gov:roles", { execute: revokeId, addresses });
    expect(await vault.hasRole(await vault.PAUSER_ROLE(), newcomer.address)).to.equal(false);
  });

  it("D37: gov:roles refuses bad input", async function () {
    const [deployer, , newcomer] = await ethers.getSigners();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ contract: "Vault" }, /--contract "Vault" is not one of StakeManager/],
      [{ contract: "PaymentVault", grant: "PAUSER_ROLE" }, /--grant needs --contract and --account/],
      [{ contract: "PaymentVault", grant: "X", revoke: "X", account: newcomer.address }, /not both/],
      [{ contract: "PaymentVault", grant: "PAUSER_ROLE", account: "0x12" }, /--account "0x12" is not an address/],
      [{ contract: "PaymentVault", grant: "MINTER_ROLE", account: newcomer.address }, /PaymentVault has no role "MINTER_ROLE"; its roles: .*BILLER_ROLE/], // prettier-ignore
      [{ contract: "PaymentVault", grant: "PAUSER_ROLE", account: deployer.address }, /already holds PAUSER_ROLE on PaymentVault/], // prettier-ignore
      [{ contract: "PaymentVault", revoke: "BILLER_ROLE", account: newcomer.address }, /does not hold BILLER_ROLE on PaymentVault/], // prettier-ignore
      [{ contract: "StakeManager", grant: "DEFAULT_ADMIN_ROLE", account: newcomer.address }, /moves in two steps/],
      [{ account: newcomer.address }, /--account goes with --grant or --revoke/],
    ];
    for (const [args, message] of cases) {
      await expect(runTask("gov:roles", { addresses, ...args }), JSON.stringify(args)).to.be.rejectedWith(message);
    }
  });

  it("D37: a sender that is not a proposer is told so; without a timelock, changes apply at once with the role", async function () {
    const [deployer, other] = await ethers.getSigners();
    const otherDir = mkdtempSync(join(tmpdir(), "edge-gov-other-"));
    try {
      const timelock = { minDelay: 60n, proposers: [other.address], executors: [other.address] };
      const governed = await deployProtocol(hre, { parameters: { ignition: {}, roles: {}, timelock }, addressesDir: otherDir }); // prettier-ignore
      await expect(
        runTask("gov:params", { name: "staking.expressReleaseFeeBps", value: "1000", addresses: governed.file }),
      ).to.be.rejectedWith(`${deployer.address} is not a proposer of the timelock`);
      const roles = { StakeManager: { PARAMETER_ADMIN_ROLE: [deployer.address] } };
      const plain = await deployProtocol(hre, { parameters: { ignition: {}, roles }, addressesDir: otherDir });
      const out = await runTask("gov:params", { name: "staking.expressReleaseFeeBps", value: "1000", addresses: plain.file }); // prettier-ignore
      expect(out).to.match(/staking\.expressReleaseFeeBps: 2500 bps \(25%\) -> 1000 bps \(10%\) in 0x/);
      const plainStaking = await ethers.getContractAt("StakeManager", plain.book.contracts.StakeManager!.address);
      expect(await plainStaking.expressReleaseFeeBps()).to.equal(1000n);
      await expect(
        runTask("gov:params", { name: "vault.freeBuffer", value: "1", addresses: plain.file }),
      ).to.be.rejectedWith(
        `${deployer.address} does not hold PARAMETER_ADMIN_ROLE on PaymentVault, and the address book has no timelock`,
      );
      await expect(
        runTask("gov:params", { execute: `0x${"ab".repeat(32)}`, addresses: plain.file }),
      ).to.be.rejectedWith(/the address book has no TimelockController/);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it("D37: on the command line a refused gov task prints its message and exits non-zero", async function () {
    this.timeout(120_000);
    const hardhat = join(__dirname, "..", "..", "node_modules", ".bin", "hardhat");
    const args = ["gov:params", "--name", "staking.minimumStake", "--value", "1"];
    const { code, output } = await new Promise<{ code: number; output: string }>((resolve) =>
      // Plain text whatever the terminal: CI's environment makes Hardhat color its errors.
      execFile(hardhat, args, { cwd: join(__dirname, "..", ".."), env: plainEnv() }, (error, stdout, stderr) =>
        resolve({ code: error ? (error.code as number) : 0, output: `${stdout}${stderr}` }),
      ),
    );
    expect(code, output).to.equal(1);
    expect(output).to.include('Error in plugin edge: unknown parameter "staking.minimumStake"; known:');
  });

  it("D37: the parameters file's timelock section is validated", function () {
    const a = "0x000000000000000000000000000000000000dEaD";
    expect(parseTimelock({ minDelay: 60n, proposers: [a] })).to.deep.equal({ minDelay: 60n, proposers: [a], executors: [a] }); // prettier-ignore
    expect(() => parseTimelock({ minDelay: 60, proposers: [a] })).to.throw(/minDelay must be seconds as a bigint/);
    expect(() => parseTimelock({ minDelay: 40n * 86_400n, proposers: [a] })).to.throw(/at most 30 days/);
    expect(() => parseTimelock({ minDelay: 60n, proposers: [] })).to.throw(/at least one proposer/);
    expect(() => parseTimelock({ minDelay: 60n, proposers: ["0x1"] })).to.throw(
      /proposers must be a list of addresses/,
    );
    const timelock = { minDelay: 60n, proposers: [a], executors: [a] };
    const roles = { StakeManager: { PARAMETER_ADMIN_ROLE: [a] } };
    expect(() => checkTimelockedRoles({ ignition: {}, roles, timelock })).to.throw(/would bypass the timelock/);
    const ignition = { PaymentVault: { admin: a } };
    expect(() => checkTimelockedRoles({ ignition, roles: {}, timelock })).to.throw(/ignition\.PaymentVault\.admin/);
    expect(() => checkTimelockedRoles({ ignition, roles })).to.not.throw();
  });
});

/** The environment with colors off (as taskErrors.test.ts runs tasks). */
function plainEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  delete env.FORCE_COLOR;
  return env;
}
