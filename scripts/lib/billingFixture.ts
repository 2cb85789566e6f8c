/**
 * A deployed protocol with a staked gateway, funded customers and a biller, and billing services over real HTTP on
 * the in-process Hardhat chain: shared by the billing tests and its benchmark.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import hre, { ethers } from "hardhat";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { type UsageRecord, signMessage, usageRecordsHash } from "../../offchain/common/protocol";
import { parsePriceList } from "../../offchain/billing/bills";
import { loadBillingConfig } from "../../offchain/billing/config";
import { type BillingDeps, BillingService } from "../../offchain/billing/service";
import { deployProtocol } from "../deploy/deployProtocol";
import type { EdgeToken, PaymentVault, StakeManager } from "../../typechain";
import { MINIMUM, StakeType } from "./constants";
import { bookContracts, signConsent } from "./fixtures";

export const CHAIN_ID = 31337;
export const ONE = ethers.parseEther("1");
export const BILLER_KEY = ethers.zeroPadValue(ethers.toBeHex(0xb111e5n), 32) as Hex;
export const BILLER = privateKeyToAccount(BILLER_KEY).address;

export const gatewayKey = (n: number) => ethers.zeroPadValue(ethers.toBeHex(0x6a7e0000 + n), 32) as Hex;
export const gatewayAccount = (n: number) => privateKeyToAccount(gatewayKey(n));
export const customerKey = (n: number) => ethers.zeroPadValue(ethers.toBeHex(0xc5700000 + n), 32) as Hex;
export const customerAccount = (n: number) => privateKeyToAccount(customerKey(n));

/** The price list the tests bill with: jobs at 2 tokens each, rounds at 0.3 tokens per 1,000, a 1-token buffer. */
export const PRICES = {
  freeBuffer: ONE.toString(),
  prices: {
    compute: {
      jobs: { unitSize: "1", unitPrice: (2n * ONE).toString() },
      rounds: { unitSize: "1000", unitPrice: ((3n * ONE) / 10n).toString() },
    },
  },
};

export interface BillingProtocol {
  book: string;
  prices: string;
  token: EdgeToken;
  vault: PaymentVault;
  staking: StakeManager;
}

/**
 * Deploys, grants BILLER_ROLE to BILLER (with gas), stakes gateways `gateways` (key indexes) and deposits
 * `deposits[i]` for customerAccount(i).
 */
export async function deployForBilling(options: {
  dir: string;
  gateways?: number[];
  deposits?: bigint[];
}): Promise<BillingProtocol> {
  const [deployer] = await ethers.getSigners();
  const { book, file } = await deployProtocol(hre, {
    parameters: {
      ignition: { StakeManager: { adminDelay: 0n }, RewardsManager: { adminDelay: 0n } },
      roles: { PaymentVault: { BILLER_ROLE: [BILLER] } },
    },
    addressesDir: join(options.dir, "book"),
  });
  await hre.network.provider.send("hardhat_setBalance", [BILLER, "0x56BC75E2D63100000"]); // 100 ETH
  const { staking, vault: maybeVault, token } = await bookContracts(book);
  const vault = maybeVault!;
  await token.connect(deployer).approve(await staking.getAddress(), ethers.MaxUint256);
  await token.connect(deployer).approve(await vault.getAddress(), ethers.MaxUint256);
  for (const n of options.gateways ?? [1]) {
    const device = new ethers.Wallet(gatewayKey(n));
    const consent = await signConsent(staking, device, deployer.address);
    await staking.connect(deployer).stakeAndAssign(StakeType.Gateway, MINIMUM[StakeType.Gateway], consent);
  }
  for (const [i, amount] of (options.deposits ?? []).entries()) {
    if (amount > 0n) await vault.connect(deployer).depositFor(customerAccount(i).address, amount);
  }
  const prices = join(options.dir, "prices.json");
  writeFileSync(prices, JSON.stringify(PRICES));
  return { book: file, prices, token, vault, staking };
}

/** Billing flags for tests: ephemeral port, no confirmations, fast polling, silent logs. */
export function billingArgs(rpc: string, p: BillingProtocol, db: string, extra: string[] = []): string[] {
  return [
    ...["--rpc", rpc, "--addresses", p.book, "--prices", p.prices, "--port", "0", "--db", db],
    ...["--confirmations", "0", "--poll-interval-ms", "50", "--log-level", "silent", ...extra],
  ];
}

/** Starts an in-process billing service with the biller key. */
export async function startBilling(
  rpc: string,
  p: BillingProtocol,
  db: string,
  extra: string[] = [],
  deps: BillingDeps = {},
): Promise<{ service: BillingService; url: string }> {
  const config = loadBillingConfig(billingArgs(rpc, p, db, extra), { EDGE_BILLING_BILLER_KEY: BILLER_KEY });
  const service = await BillingService.create(config, parsePriceList(PRICES), deps);
  const url = await service.start();
  return { service, url };
}

/** A gateway's signed usage batch, as edge-node sends it. */
export async function signUsage(gateway: number, sequence: bigint, records: UsageRecord[]) {
  const account = gatewayAccount(gateway);
  const signature = await signMessage(account, CHAIN_ID, "UsageBatch", {
    gateway: account.address,
    sequence,
    recordsHash: usageRecordsHash(records),
  });
  return { gateway: account.address, sequence: sequence.toString(), records, signature };
}

/** A usage record of `gateway` for customer `customer` (indexes). */
export function record(
  gateway: number,
  customer: number,
  id: string,
  metric: string,
  quantity: bigint | number,
  time: number,
): UsageRecord {
  return {
    id,
    gateway: gatewayAccount(gateway).address.toLowerCase(),
    customer: customerAccount(customer).address.toLowerCase(),
    service: "compute",
    metric,
    quantity: quantity.toString(),
    time,
  };
}
