/** stake:revoke-consent (I-9): the device operator revokes a consent it handed out and that was not used yet. */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre, { ethers } from "hardhat";

import { deployProtocol } from "../../scripts/deploy/deployProtocol";
import type { StakeManager } from "../../typechain";

const DEVICE_KEY = "0x" + "33".repeat(32);

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

describe("stake:revoke-consent", function () {
  let dir: string;

  before(function () {
    dir = mkdtempSync(join(tmpdir(), "edge-revoke-"));
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
    delete process.env.EDGE_DEVICE_KEY;
  });

  it("I-9: a consent signed with stake:consent stops working once the device revokes it", async function () {
    const { file: addresses, book } = await deployProtocol(hre, {
      parameters: { ignition: {}, roles: {} },
      addressesDir: dir,
    });
    const staking = (await ethers.getContractAt(
      "StakeManager",
      book.contracts.StakeManager!.address,
    )) as unknown as StakeManager;
    const [owner] = await ethers.getSigners();
    const device = new ethers.Wallet(DEVICE_KEY);
    await (await owner.sendTransaction({ to: device.address, value: ethers.parseEther("1") })).wait();
    const token = await ethers.getContractAt("EdgeToken", book.contracts.EdgeToken!.address);
    await (await token.approve(await staking.getAddress(), ethers.MaxUint256)).wait();
    await (await staking.stake(0, ethers.parseEther("100"))).wait();
    const stakeId = await staking.stakeCount();

    process.env.EDGE_DEVICE_KEY = DEVICE_KEY;
    const consent = await runTask("stake:consent", { owner: owner.address, minutes: 60, addresses });
    const revoked = await runTask("stake:revoke-consent", { addresses });
    expect(revoked).to.contain(`consents of device ${device.address} for nonce 0 revoked`);
    expect(revoked).to.contain("its next consent needs nonce 1");
    expect(await staking.deviceNonce(device.address)).to.equal(1n);
    await expect(runTask("stake:assign", { stake: stakeId.toString(), consent, addresses })).to.be.rejectedWith(
      /assignDevice failed: DeviceConsentInvalid\(device=0x[0-9a-fA-F]{40}, signer=0x[0-9a-fA-F]{40}\)/,
    );
    // A fresh consent works.
    await runTask("stake:assign", { stake: stakeId.toString(), addresses });
    expect(await staking.stakeOfDevice(device.address)).to.equal(stakeId);
  });

  it("says which key is missing", async function () {
    delete process.env.EDGE_DEVICE_KEY;
    await expect(runTask("stake:revoke-consent", {})).to.be.rejectedWith("set EDGE_DEVICE_KEY");
  });
});
