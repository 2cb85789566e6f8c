/**
 * pay:* and billing:* tasks: customers' prepaid balances, and settling the billing service's bills.
 *
 *   npx hardhat pay:deposit      --amount 100 [--for 0x…]
 *   npx hardhat pay:withdraw     --amount 50 | --execute | --cancel
 *   npx hardhat pay:status       [--customer 0x…] [--json]
 *   npx hardhat pay:set-cap      --cap 250            (0: no cap)
 *   npx hardhat pay:set-referrer --referrer 0x…
 *   npx hardhat billing:settle   --bills bills.json [--batch-size 100]
 */
import { readFileSync } from "node:fs";
import { task, types } from "hardhat/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types";

import type { EdgeToken, PaymentVault } from "../../typechain";
import { PERMIT_TYPES } from "../../offchain/common/permit";
import { periodIndex } from "../../offchain/common/period";
import { toBatches } from "../../offchain/common/batches";
import { contractAt, eip712Domain, fail, formatTokens, loadBook, parseAddress, parseTokens, send, sender } from "./lib";

async function connect(hre: HardhatRuntimeEnvironment, addresses?: string) {
  const book = await loadBook(hre, addresses);
  const signer = await sender(hre);
  const vault = await contractAt<PaymentVault>(hre, book, "PaymentVault", signer);
  const token = await contractAt<EdgeToken>(hre, book, "EdgeToken", signer);
  return { signer, vault, token, interfaces: [vault.interface, token.interface] };
}

task("pay:deposit", "Adds tokens to a prepaid balance (permit by default: one transaction)")
  .addParam("amount", "amount in whole tokens")
  .addOptionalParam("for", "the customer to credit (default: the sender)")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { amount: string; for?: string; addresses?: string }, hre) => {
    const amount = parseTokens(hre, args.amount);
    const customerArg = args.for === undefined ? undefined : parseAddress(hre, args.for, "--for");
    const { signer, vault, token, interfaces } = await connect(hre, args.addresses);
    const from = await signer.getAddress();
    const customer = customerArg ?? from;
    const balance = await token.balanceOf(from);
    if (balance < amount) fail(`${from} holds ${formatTokens(hre, balance)}, less than ${args.amount}`);
    const spender = await vault.getAddress();
    const receipt = await send("deposit", interfaces, async () => {
      if ((await token.allowance(from, spender)) >= amount) return vault.depositFor(customer, amount);
      const latest = await hre.ethers.provider.getBlock("latest");
      const deadline = BigInt(latest!.timestamp) + 3600n;
      const message = { owner: from, spender, value: amount, nonce: await token.nonces(from), deadline };
      const sig = hre.ethers.Signature.from(
        await signer.signTypedData(await eip712Domain(token), PERMIT_TYPES, message),
      );
      return vault.depositWithPermit(customer, amount, deadline, sig.v, sig.r, sig.s);
    });
    console.log(`deposited ${formatTokens(hre, amount)} for ${customer} in ${receipt.hash}`);
    console.log(`balance now: ${formatTokens(hre, await vault.balanceOf(customer))}`);
  });

task("pay:withdraw", "Requests a withdrawal (after the notice period), executes it, or cancels it")
  .addOptionalParam("amount", "amount in whole tokens to request")
  .addFlag("execute", "pay out the pending withdrawal")
  .addFlag("cancel", "cancel the pending withdrawal")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { amount?: string; execute: boolean; cancel: boolean; addresses?: string }, hre) => {
    const chosen = [args.amount !== undefined, args.execute, args.cancel].filter(Boolean).length;
    if (chosen !== 1) fail("give exactly one of --amount, --execute or --cancel");
    const amount = args.amount === undefined ? undefined : parseTokens(hre, args.amount);
    const { signer, vault, interfaces } = await connect(hre, args.addresses);
    const customer = await signer.getAddress();
    if (amount !== undefined) {
      const balance = await vault.balanceOf(customer);
      if (amount > balance) fail(`the balance is ${formatTokens(hre, balance)}, less than ${args.amount}`);
      const receipt = await send("requestWithdrawal", interfaces, () => vault.requestWithdrawal(amount));
      const [, executableAt] = await vault.pendingWithdrawal(customer);
      console.log(`withdrawal of ${formatTokens(hre, amount)} requested in ${receipt.hash}`);
      console.log(`executable from ${new Date(Number(executableAt) * 1000).toISOString()} (pay:withdraw --execute)`);
    } else if (args.execute) {
      const receipt = await send("executeWithdrawal", interfaces, () => vault.executeWithdrawal());
      const event = receipt.logs.map((l) => vault.interface.parseLog(l)).find((l) => l?.name === "Withdrawn");
      console.log(`withdrew ${formatTokens(hre, event!.args.amount)} in ${receipt.hash}`);
    } else {
      const receipt = await send("cancelWithdrawal", interfaces, () => vault.cancelWithdrawal());
      console.log(`withdrawal cancelled in ${receipt.hash}`);
    }
  });

task("pay:status", "Shows a customer's prepaid balance, cap, referrer, debt, withdrawal and standing")
  .addOptionalParam("customer", "customer address (default: the sender)")
  .addFlag("json", "print JSON")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { customer?: string; json: boolean; addresses?: string }, hre) => {
    const given = args.customer === undefined ? undefined : parseAddress(hre, args.customer, "--customer");
    const { signer, vault } = await connect(hre, args.addresses);
    const customer = given ?? (await signer.getAddress());
    const [amount, executableAt] = await vault.pendingWithdrawal(customer);
    const [settled, period] = await vault.lastSettledPeriod(customer);
    const referrer = await vault.referrerOf(customer);
    const view = {
      customer,
      balance: (await vault.balanceOf(customer)).toString(),
      spendingCap: (await vault.spendingCap(customer)).toString(),
      referrer: referrer === hre.ethers.ZeroAddress ? null : referrer,
      outstanding: (await vault.outstanding(customer)).toString(),
      pendingWithdrawal: amount === 0n ? null : { amount: amount.toString(), executableAt: Number(executableAt) },
      goodStanding: await vault.isInGoodStanding(customer),
      referralCredit: (await vault.referralCredit(customer)).toString(),
      lastSettledPeriod: settled ? Number(period) : null,
    };
    if (args.json) {
      console.log(JSON.stringify(view, null, 2));
      return;
    }
    const t = (v: string) => formatTokens(hre, BigInt(v));
    console.log(`${customer}: ${view.goodStanding ? "in good standing" : "NOT in good standing"}`);
    console.log(`  balance      ${t(view.balance)}`);
    console.log(`  cap          ${view.spendingCap === "0" ? "none" : t(view.spendingCap)} per period`);
    console.log(`  outstanding  ${t(view.outstanding)}`);
    console.log(`  referrer     ${view.referrer ?? "-"}`);
    console.log(
      `  withdrawal   ${view.pendingWithdrawal ? `${t(view.pendingWithdrawal.amount)} from ${new Date(view.pendingWithdrawal.executableAt * 1000).toISOString()}` : "-"}`,
    );
    console.log(`  referral credit ${t(view.referralCredit)}; last settled period ${view.lastSettledPeriod ?? "-"}`);
  });

task("pay:set-cap", "Sets the sender's per-period spending cap")
  .addParam("cap", "cap in whole tokens (0: no cap)")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { cap: string; addresses?: string }, hre) => {
    const cap = args.cap === "0" ? 0n : parseTokens(hre, args.cap, "cap");
    const { vault, interfaces } = await connect(hre, args.addresses);
    const receipt = await send("setSpendingCap", interfaces, () => vault.setSpendingCap(cap));
    console.log(`spending cap ${cap === 0n ? "removed" : `set to ${formatTokens(hre, cap)}`} in ${receipt.hash}`);
  });

task("pay:set-referrer", "Names the sender's referrer (once)")
  .addParam("referrer", "the referrer's address")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { referrer: string; addresses?: string }, hre) => {
    const referrer = parseAddress(hre, args.referrer, "--referrer");
    const { signer, vault, interfaces } = await connect(hre, args.addresses);
    const customer = await signer.getAddress();
    if (referrer === customer) fail("a customer cannot refer itself");
    const current = await vault.referrerOf(customer);
    if (current !== hre.ethers.ZeroAddress) fail(`the referrer is already set, to ${current}`);
    const receipt = await send("setReferrer", interfaces, () => vault.setReferrer(referrer));
    console.log(`referrer set to ${referrer} in ${receipt.hash}`);
  });

interface BillsFile {
  period: string;
  bills: Array<{ customer: string; total: string; billHash: string }>;
}

task("billing:settle", "Settles a bills file from the billing service, in batches; re-running is safe")
  .addParam("bills", 'JSON file: {"period": "YYYY-MM", "bills": [{"customer", "total", "billHash", ...}]}')
  .addOptionalParam("batchSize", "bills per transaction", 100, types.int)
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { bills: string; batchSize: number; addresses?: string }, hre) => {
    let file: BillsFile;
    try {
      file = JSON.parse(readFileSync(args.bills, "utf8"));
    } catch (error) {
      return fail(`cannot read bills from ${args.bills}: ${(error as Error).message}`);
    }
    if (typeof file?.period !== "string" || !Array.isArray(file.bills)) {
      fail(`${args.bills}: expected {"period": "YYYY-MM", "bills": [...]}`);
    }
    let period: number;
    try {
      period = periodIndex(file.period);
    } catch (error) {
      return fail((error as Error).message);
    }
    if (!(args.batchSize >= 1 && args.batchSize <= 500)) fail("--batch-size must be between 1 and 500");
    const bills = file.bills.map((b, i) => {
      const customer = parseAddress(hre, b.customer, `bills[${i}].customer`);
      if (typeof b.total !== "string" || !/^\d+$/.test(b.total))
        fail(`bills[${i}].total must be a decimal integer string`);
      if (typeof b.billHash !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(b.billHash))
        fail(`bills[${i}].billHash must be 32 bytes of hex`);
      return { customer, amount: BigInt(b.total), billHash: b.billHash };
    });
    const { signer, vault, interfaces } = await connect(hre, args.addresses);
    const from = await signer.getAddress();
    if (!(await vault.hasRole(await vault.BILLER_ROLE(), from)))
      fail(`${from} does not hold BILLER_ROLE on PaymentVault`);

    // Zero bills are not settled; bills already settled are left out (the contract would skip them anyway).
    const due = [];
    for (const bill of bills) {
      if (bill.amount === 0n) continue;
      if (await vault.isSettled(bill.customer, period)) console.log(`${bill.customer}: already settled`);
      else due.push(bill);
    }
    let charged = 0n;
    let shortfall = 0n;
    for (const [i, batch] of toBatches(due, args.batchSize).entries()) {
      const receipt = await send(`batch ${i}`, interfaces, () => vault.settle(period, batch));
      for (const log of receipt.logs) {
        const parsed = vault.interface.parseLog(log);
        if (parsed?.name !== "BillSettled") continue;
        charged += parsed.args.charged;
        shortfall += parsed.args.shortfall;
        const short = parsed.args.shortfall === 0n ? "" : `, short ${formatTokens(hre, parsed.args.shortfall)}`;
        console.log(
          `${parsed.args.customer}: charged ${formatTokens(hre, parsed.args.charged)}${short} (${receipt.hash})`,
        );
      }
    }
    console.log(
      `period ${file.period} (index ${period}): ${due.length} bill(s) settled, ${formatTokens(hre, charged)} charged, ${formatTokens(hre, shortfall)} short`,
    );
  });
