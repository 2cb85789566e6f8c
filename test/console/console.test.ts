/**
 * The Console in a real browser: Debian's Chromium (headless, driven by playwright-core) loads the page from the
 * Console server; a test EIP-1193 wallet signs with a development key and forwards to a real JSON-RPC chain with
 * every contract deployed. Each step asserts on the page's visible text and on chain state read independently.
 * Screenshots of each main state go to test-output/console/.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { type Browser, type Page, chromium } from "playwright-core";
import type { Hex } from "viem";

import { startConsole } from "../../console/server";
import { formatTime, formatTokens } from "../../console/web/format";
import { DEVICE_CONSENT_TYPES } from "../../offchain/common/consent";
import { SCORE_BATCH_TYPES, entriesHash, packEntries } from "../../offchain/common/scoreBatch";
import { deployProtocol } from "../../scripts/deploy/deployProtocol";
import type { EdgeToken, PaymentVault, RewardsManager, StakeManager } from "../../typechain";
import { COMMITTEE_KEYS, eip712Domain } from "../shared/fixtures";
import { type RpcServer, startRpcServer } from "../shared/rpc";
import { CHROMIUM, SHOTS, requireChromium } from "./browser";
import { TestWallet } from "./testWallet";

const ONE = ethers.parseEther("1");
const EPOCH = 60n;
const USER_KEY = ethers.zeroPadValue(ethers.toBeHex(0xc0501e0001), 32) as Hex;
const DEVICE_KEY = ethers.zeroPadValue(ethers.toBeHex(0xc0501ed001), 32) as Hex;
const SECOND_DEVICE_KEY = ethers.zeroPadValue(ethers.toBeHex(0xc0501ed002), 32) as Hex;

describe("Console (browser)", function () {
  this.timeout(60_000);

  let rpc: RpcServer | undefined;
  let consoleServer: { url: string; close: () => Promise<void> } | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let dir: string;
  let wallet: TestWallet;
  let staking: StakeManager;
  let rewards: RewardsManager;
  let vault: PaymentVault;
  let token: EdgeToken;
  const requests: string[] = [];
  const shots: string[] = [];

  const shot = async (name: string, fullPage = true) => {
    const path = join(SHOTS, `${name}.png`);
    await page.screenshot({ path, fullPage });
    shots.push(path);
  };
  const text = (selector: string) => page.locator(selector).innerText();
  /**
   * Clicks `selector`, then waits until the transaction line `key` shows a new outcome (confirmed or failed:
   * every transaction the page starts gets a higher data-seq) and returns it.
   */
  const act = async (key: string, selector: string) => {
    const line = page.locator(`#tx-${key}`);
    const previous = Number((await line.count()) ? ((await line.getAttribute("data-seq")) ?? 0) : 0);
    await page.click(selector);
    await page.waitForFunction(
      ([id, seq]) => {
        // Runs in the page (the project's TypeScript has no DOM library, hence globalThis).
        const document = (globalThis as any).document;
        const el = document.getElementById(id);
        const state = el?.getAttribute("data-state");
        // A confirmed transaction re-reads the contracts: wait until <main> is no longer busy.
        const idle = document.getElementById("app")?.getAttribute("aria-busy") !== "true";
        return Number(el?.getAttribute("data-seq") ?? 0) > seq && (state === "confirmed" || state === "failed") && idle;
      },
      [`tx-${key}`, previous] as const,
      { timeout: 15_000 },
    );
    return { state: await line.getAttribute("data-state"), text: await line.innerText() };
  };
  /** A device's consent for the test wallet, exactly as `stake:consent` prints it. */
  const consentJson = async (deviceKey: Hex) => {
    const device = new ethers.Wallet(deviceKey);
    const deadline = BigInt((await ethers.provider.getBlock("latest"))!.timestamp) + 3600n;
    const nonce = await staking.deviceNonce(device.address);
    const signature = await device.signTypedData(await eip712Domain(staking), DEVICE_CONSENT_TYPES, {
      device: device.address,
      owner: wallet.address,
      nonce,
      deadline,
    });
    const consent = { device: device.address, owner: wallet.address, nonce: String(nonce), deadline: String(deadline) };
    return JSON.stringify({ ...consent, signature }, null, 2);
  };
  /** Waits for the next epoch to end and posts `score` for `stakeId` in it; returns the epoch. */
  const postScore = async (stakeId: bigint, score: bigint) => {
    const epoch = (await rewards.currentEpoch()) + 1n;
    const [, end] = await rewards.epochWindow(epoch);
    await time.increaseTo(end + 1n);
    const committee = new ethers.Wallet(COMMITTEE_KEYS[0]);
    const packed = packEntries([{ stakeId, score }]);
    const [, , version] = await rewards.committee();
    const signature = await committee.signTypedData(await eip712Domain(rewards), SCORE_BATCH_TYPES, {
      epoch,
      batchIndex: 0n,
      entriesHash: entriesHash(packed),
      committeeVersion: version,
    });
    await rewards.postScores(epoch, 0n, packed, [signature]);
    return epoch;
  };
  const refresh = async () => {
    await page.click("#refresh");
    await page.locator('#app[aria-busy="false"]').waitFor();
  };

  before(async function () {
    requireChromium(this);
    dir = mkdtempSync(join(tmpdir(), "edge-console-"));
    rpc = await startRpcServer();
    const committee = new ethers.Wallet(COMMITTEE_KEYS[0]);
    const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
    const { book, file } = await deployProtocol(hre, {
      parameters: {
        ignition: {
          StakeManager: { adminDelay: 0n },
          RewardsManager: {
            adminDelay: 0n,
            epochDuration: EPOCH,
            genesis: now,
            committee: [committee.address],
            threshold: 1n,
          },
          PaymentVault: { adminDelay: 0n },
        },
        // The deployer settles a referred customer's bill (as billing would) for the referral step.
        roles: { PaymentVault: { BILLER_ROLE: [(await ethers.getSigners())[0].address] } },
        rewards: { fund: 1_000_000n * ONE },
      },
      addressesDir: join(dir, "book"),
    });
    staking = (await ethers.getContractAt(
      "StakeManager",
      book.contracts.StakeManager!.address,
    )) as unknown as StakeManager;
    rewards = (await ethers.getContractAt(
      "RewardsManager",
      book.contracts.RewardsManager!.address,
    )) as unknown as RewardsManager;
    vault = (await ethers.getContractAt(
      "PaymentVault",
      book.contracts.PaymentVault!.address,
    )) as unknown as PaymentVault;
    token = (await ethers.getContractAt("EdgeToken", book.contracts.EdgeToken!.address)) as unknown as EdgeToken;

    wallet = new TestWallet(USER_KEY, rpc.url, 1, 31337);
    const [deployer] = await ethers.getSigners();
    await hre.network.provider.send("hardhat_setBalance", [wallet.address, "0x8AC7230489E80000"]); // 10 ETH
    await token.connect(deployer).transfer(wallet.address, 10_000n * ONE);

    consoleServer = await startConsole({ rpcUrl: rpc.url, addressesFile: file, port: 0, logLevel: "silent" });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on("request", (request) => requests.push(request.url()));
    await wallet.install(page);
    await page.goto(consoleServer.url);
  });

  after(async () => {
    await browser?.close();
    await consoleServer?.close();
    await rpc?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (shots.length) console.log(`    screenshots:\n${shots.map((s) => `      ${s}`).join("\n")}`);
  });

  it("refuses a wallet on another chain, then switches", async () => {
    // Keyboard: the connect button is a real button reachable and pressable from the keyboard.
    await page.locator("#connect:not([disabled])").waitFor();
    await page.focus("#connect");
    await page.keyboard.press("Enter");
    await page.locator("#wrong-chain").waitFor();
    expect(await text("#wrong-chain")).to.contain(
      "Wrong network: your wallet is on chain 1, but this Console works only with chain 31337",
    );
    expect(await page.locator("#stake-list").count()).to.equal(0);
    expect(wallet.count("eth_call")).to.equal(0);
    await shot("01-wrong-chain");

    await page.click("#switch-chain");
    await page.locator("#wallet-balance").waitFor();
    expect(await page.locator("#wrong-chain").count()).to.equal(0);
    expect(await text("#wallet-chain")).to.equal("wallet on chain 31337");
  });

  it("connects: account, balance and no stakes", async () => {
    expect(await text("#account")).to.equal(wallet.address);
    expect(await text("#wallet-balance")).to.equal("10,000 EDGE");
    expect(await text("#no-stakes")).to.equal("No stakes yet.");
    // Every control has a label.
    const unlabelled = await page.evaluate(() =>
      [...(globalThis as any).document.querySelectorAll("input, select, textarea")]
        .filter((el) => el.labels?.length === 0)
        .map((el) => el.id as string),
    );
    expect(unlabelled).to.deep.equal([]);
    await shot("02-connected");
  });

  it("validates the amount next to the field, then stakes with a permit in one transaction", async () => {
    await page.fill("#create-amount", "12abc");
    await page.click("#create-submit");
    expect(await text("#create-amount-error")).to.contain('"12abc" is not an amount');
    await page.fill("#create-amount", "50");
    await page.click("#create-submit");
    expect(await text("#create-amount-error")).to.contain("at least 100 EDGE (the host minimum)");
    expect(wallet.count("eth_sendTransaction")).to.equal(0);

    await page.fill("#create-amount", "1,000");
    const result = await act("create", "#create-submit");
    expect(result.state, result.text).to.equal("confirmed");
    expect(result.text).to.match(/Stake: confirmed in block \d+\.\s+Transaction 0x[0-9a-f]{64}/);
    expect(wallet.count("eth_signTypedData_v4")).to.equal(1);
    expect(wallet.count("eth_sendTransaction")).to.equal(1);

    const stake = await staking.getStake(1n);
    expect(stake.owner).to.equal(wallet.address);
    expect(stake.amount).to.equal(1000n * ONE);
    expect(await token.allowance(wallet.address, await staking.getAddress())).to.equal(0n);
    await page.locator("#stake-1").waitFor();
    expect(await text("#stake-1 .status")).to.equal("UNASSIGNED");
    expect(await text("#stake-1 .amount")).to.equal("1,000 EDGE");
    expect(await text("#stake-1 .minimum")).to.equal("yes (minimum 100 EDGE)");
    expect(await text("#wallet-balance")).to.equal("9,000 EDGE");
    await shot("03-staked");
  });

  it("assigns a device from its pasted consent and shows it admitted", async () => {
    await page.fill("#assign-1", '{"device": "0x1234"}');
    await page.click("#stake-1 button:text-is('Assign device')");
    expect(await text("#assign-1-error")).to.equal("consent.device must be an address");

    // The consent as `stake:consent` prints it: signed by the device key for the owner and the device's nonce.
    const device = new ethers.Wallet(DEVICE_KEY);
    await page.fill("#assign-1", await consentJson(DEVICE_KEY));
    const result = await act("stake-1", "#stake-1 button:text-is('Assign device')");
    expect(result.state, result.text).to.equal("confirmed");
    expect(result.text).to.contain(`Assign device ${device.address}: confirmed in block`);

    expect(await staking.isAdmitted(device.address)).to.equal(true);
    expect(await text("#stake-1 .status")).to.equal("ASSIGNED");
    expect(await text("#stake-1 .device")).to.equal(device.address);
    expect((await text("#stake-1 .admitted")).trim()).to.equal("admitted");
    await shot("04-assigned-admitted");
  });

  it("shows the yield of a posted epoch and claims exactly it", async () => {
    // Score the first epoch that starts after the stake was created, once it has ended.
    const epoch = await postScore(1n, 10_000n);
    const accrued = await rewards.accrued(1n);
    expect(accrued > 0n).to.equal(true);

    await refresh();
    expect(await text("#stake-1 .accrued")).to.equal(formatTokens(accrued));
    expect(await text("#stake-1 .last-epoch")).to.equal(String(epoch));
    expect(await text("#stake-1 .apr")).to.equal("10.00% (score 10000, 100.00% of the peer average)");
    await shot("05-earnings");

    const before = await token.balanceOf(wallet.address);
    const result = await act("stake-1", "#stake-1 button:text-is('Claim')");
    expect(result.state, result.text).to.equal("confirmed");
    expect(result.text).to.contain("Claim yield: confirmed");
    expect((await token.balanceOf(wallet.address)) - before).to.equal(accrued);
    expect(await rewards.accrued(1n)).to.equal(0n);
    expect(await text("#stake-1 .accrued")).to.equal("0 EDGE");
  });

  it("unstakes: the status changes and the device is no longer admitted", async () => {
    const result = await act("stake-1", "#stake-1 button:text-is('Request unstake')");
    expect(result.state, result.text).to.equal("confirmed");
    expect(await text("#stake-1 .status")).to.equal("UNLOCKING");
    expect((await text("#stake-1 .admitted")).trim()).to.equal("not admitted");
    expect(await staking.isAdmitted(new ethers.Wallet(DEVICE_KEY).address)).to.equal(false);
    const unlockAt = (await staking.getStake(1n)).unlockAt;
    expect(await text("#stake-1 .unlock")).to.contain(formatTime(unlockAt));
  });

  it("cancels the unstake (assigned and admitted again), then unstakes again", async () => {
    const device = new ethers.Wallet(DEVICE_KEY).address;
    let result = await act("stake-1", "#stake-1 button:text-is('Cancel unstake')");
    expect(result.state, result.text).to.equal("confirmed");
    expect(await text("#stake-1 .status")).to.equal("ASSIGNED");
    expect((await text("#stake-1 .admitted")).trim()).to.equal("admitted");
    expect(await staking.isAdmitted(device)).to.equal(true);
    result = await act("stake-1", "#stake-1 button:text-is('Request unstake')");
    expect(result.state, result.text).to.equal("confirmed");
    expect(await text("#stake-1 .status")).to.equal("UNLOCKING");
    expect(await staking.isAdmitted(device)).to.equal(false);
  });

  it("a release before the unlock time fails with the contract's error in words", async () => {
    const sent = wallet.count("eth_sendTransaction");
    const result = await act("stake-1", "#stake-1 button:text-is('Release')");
    expect(result.state).to.equal("failed");
    const unlockAt = (await staking.getStake(1n)).unlockAt;
    expect(result.text).to.equal(
      `Release failed. Stake 1 is still locked until ${formatTime(unlockAt)}. Wait until then, or use express release (for a fee).`,
    );
    expect(wallet.count("eth_sendTransaction")).to.equal(sent);
    await shot("06-release-refused");

    await page.click("#stake-1 button:text-is('Express release…')");
    expect(await text("#express-1-fee")).to.equal(
      `Fee: 250 EDGE (25.00%) goes to the treasury. You receive 750 EDGE now instead of 1,000 EDGE at ${formatTime(unlockAt)}.`,
    );
    await shot("07-express-release-fee");
    await page.click("#stake-1 button:text-is('Keep waiting')");
    expect(await page.locator("#express-1-fee").count()).to.equal(0);
  });

  it("after unbonding the stake is unlocked and releases in full", async () => {
    const { unlockAt } = await staking.getStake(1n);
    await time.increaseTo(unlockAt);
    await refresh();
    expect(await text("#stake-1 .status")).to.equal("UNLOCKED");
    const before = await token.balanceOf(wallet.address);
    const result = await act("stake-1", "#stake-1 button:text-is('Release')");
    expect(result.state, result.text).to.equal("confirmed");
    expect((await token.balanceOf(wallet.address)) - before).to.equal(1000n * ONE);
    expect(await text("#stake-1 .status")).to.equal("RELEASED");
    await shot("08-released");
  });

  it("a second stake: staked and assigned in one transaction, compounds its yield, unassigns, express-releases", async () => {
    const device = new ethers.Wallet(SECOND_DEVICE_KEY).address;
    const [signed, sent] = [wallet.count("eth_signTypedData_v4"), wallet.count("eth_sendTransaction")];
    await page.fill("#create-amount", "100");
    await page.fill("#create-consent", await consentJson(SECOND_DEVICE_KEY));
    let result = await act("create", "#create-submit");
    expect(result.state, result.text).to.equal("confirmed");
    expect([wallet.count("eth_signTypedData_v4") - signed, wallet.count("eth_sendTransaction") - sent]).to.deep.equal([
      1, 1,
    ]);
    expect(await staking.isAdmitted(device)).to.equal(true);
    await page.locator("#stake-2").waitFor();
    expect(await text("#stake-2 .status")).to.equal("ASSIGNED");

    await postScore(2n, 15_000n);
    const accrued = await rewards.accrued(2n);
    expect(accrued > 0n).to.equal(true);
    await refresh();
    expect(await text("#stake-2 .accrued")).to.equal(formatTokens(accrued));
    result = await act("stake-2", "#stake-2 button:text-is('Compound')");
    expect(result.state, result.text).to.equal("confirmed");
    const amount = (await staking.getStake(2n)).amount;
    expect(amount).to.equal(100n * ONE + accrued);
    expect(await text("#stake-2 .amount")).to.equal(formatTokens(amount));
    expect(await rewards.accrued(2n)).to.equal(0n);

    result = await act("stake-2", "#stake-2 button:text-is('Unassign device')");
    expect(result.state, result.text).to.equal("confirmed");
    expect(await text("#stake-2 .status")).to.equal("UNASSIGNED");
    expect(await staking.isAdmitted(device)).to.equal(false);

    result = await act("stake-2", "#stake-2 button:text-is('Request unstake')");
    expect(result.state, result.text).to.equal("confirmed");
    await page.click("#stake-2 button:text-is('Express release…')");
    const fee = (amount * 2500n) / 10_000n;
    expect(await text("#express-2-fee")).to.contain(`Fee: ${formatTokens(fee)} (25.00%) goes to the treasury.`);
    const before = await token.balanceOf(wallet.address);
    result = await act("stake-2", `#stake-2 button:text-is('Confirm express release (fee ${formatTokens(fee)})')`);
    expect(result.state, result.text).to.equal("confirmed");
    expect((await token.balanceOf(wallet.address)) - before).to.equal(amount - fee);
    expect(await text("#stake-2 .status")).to.equal("RELEASED");
  });

  it("customers deposit with a permit, set a cap and a referrer, and request a withdrawal", async () => {
    await page.fill("#deposit-amount", "50");
    let result = await act("deposit", "#deposit button[type=submit]");
    expect(result.state, result.text).to.equal("confirmed");
    expect(await vault.balanceOf(wallet.address)).to.equal(50n * ONE);
    expect(await text("#customer-balance")).to.equal("50 EDGE");
    expect(await text("#customer-standing")).to.equal("in good standing");

    await page.fill("#cap-amount", "20");
    result = await act("cap", "#cap button[type=submit]");
    expect(result.state, result.text).to.equal("confirmed");
    expect(await vault.spendingCap(wallet.address)).to.equal(20n * ONE);
    expect(await text("#customer-cap")).to.equal("20 EDGE per period");

    const referrer = (await ethers.getSigners())[5].address;
    await page.fill("#referrer-address", referrer);
    result = await act("referrer", "#referrer button[type=submit]");
    expect(result.state, result.text).to.equal("confirmed");
    expect(await vault.referrerOf(wallet.address)).to.equal(referrer);

    await page.fill("#withdraw-amount", "80");
    await page.click("#withdraw button[type=submit]");
    expect(await text("#withdraw-amount-error")).to.equal("the prepaid balance is 50 EDGE");
    await page.fill("#withdraw-amount", "10");
    result = await act("withdraw", "#withdraw button[type=submit]");
    expect(result.state, result.text).to.equal("confirmed");
    const [amount, executableAt] = await vault.pendingWithdrawal(wallet.address);
    expect(amount).to.equal(10n * ONE);
    expect(await text("#customer-withdrawal")).to.equal(`10 EDGE, executable from ${formatTime(executableAt)}`);
    await shot("09-customer");
  });

  it("customers cancel a withdrawal, and execute one after the notice", async () => {
    let result = await act("withdraw", "#withdraw button:text-is('Cancel withdrawal')");
    expect(result.state, result.text).to.equal("confirmed");
    expect((await vault.pendingWithdrawal(wallet.address))[0]).to.equal(0n);
    expect(await text("#customer-withdrawal")).to.equal("none");

    await page.fill("#withdraw-amount", "10");
    result = await act("withdraw", "#withdraw button[type=submit]");
    expect(result.state, result.text).to.equal("confirmed");
    const [, executableAt] = await vault.pendingWithdrawal(wallet.address);
    await time.increaseTo(executableAt);
    await refresh();
    const before = await token.balanceOf(wallet.address);
    result = await act("withdraw", "#withdraw button:text-is('Execute withdrawal')");
    expect(result.state, result.text).to.equal("confirmed");
    expect((await token.balanceOf(wallet.address)) - before).to.equal(10n * ONE);
    expect(await vault.balanceOf(wallet.address)).to.equal(40n * ONE);
    expect(await text("#customer-balance")).to.equal("40 EDGE");
  });

  it("referrers see their credit and claim it", async () => {
    // Another customer names the wallet as referrer; a 10-token bill is settled: 10% of it is the wallet's.
    const [deployer, , , , , , customer] = await ethers.getSigners();
    await token.connect(deployer).transfer(customer.address, 100n * ONE);
    await token.connect(customer).approve(await vault.getAddress(), 100n * ONE);
    await vault.connect(customer).deposit(100n * ONE);
    await vault.connect(customer).setReferrer(wallet.address);
    await vault
      .connect(deployer)
      .settle(0, [{ customer: customer.address, amount: 10n * ONE, billHash: ethers.id("bill") }]);
    const credit = await vault.referralCredit(wallet.address);
    expect(credit).to.equal(ONE);
    await refresh();
    expect(await text("#customer-credit")).to.equal("1 EDGE");
    const before = await token.balanceOf(wallet.address);
    const result = await act("referral", "button:text-is('Claim referral credit')");
    expect(result.state, result.text).to.equal("confirmed");
    expect((await token.balanceOf(wallet.address)) - before).to.equal(credit);
    expect(await vault.referralCredit(wallet.address)).to.equal(0n);
    expect(await text("#customer-credit")).to.equal("0 EDGE");
  });

  it("is readable at 360px and fetched nothing but its own files", async () => {
    await page.setViewportSize({ width: 360, height: 800 });
    const overflow = await page.evaluate(() => {
      const window = globalThis as any;
      return window.document.documentElement.scrollWidth - window.innerWidth;
    });
    expect(overflow).to.be.at.most(0);
    await shot("10-narrow-360", false);
    await page.locator("#stake-1").scrollIntoViewIfNeeded();
    await shot("11-narrow-360-stake", false);
    const foreign = requests.filter((url) => !url.startsWith(consoleServer!.url));
    expect(foreign).to.deep.equal([]);
  });
});
