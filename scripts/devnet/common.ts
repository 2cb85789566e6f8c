/**
 * What every part of the devnet shares: the chain and its development accounts, the error a broken step raises,
 * waiting for a condition, and the log of steps the live view redraws above itself.
 */
import { join } from "node:path";
import { defineChain, keccak256, toHex } from "viem";
import { mnemonicToAccount } from "viem/accounts";

import { errorClass } from "../../offchain/common/errors";

export const ROOT = join(__dirname, "..", "..");
export const CHAIN_ID = 31337;
export const TOKEN = 10n ** 18n;
const MNEMONIC = "test test test test test test test test test test test junk";

export const devnetChain = defineChain({
  id: CHAIN_ID,
  name: "devnet",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: ["http://127.0.0.1:8545"] } },
});

export const devAccount = (i: number) => mnemonicToAccount(MNEMONIC, { addressIndex: i });
export type DevAccount = ReturnType<typeof devAccount>;
export const devKey = (i: number) => toHex(devAccount(i).getHdKey().privateKey!);
export const deviceKey = (name: string) => keccak256(toHex(`edge devnet device ${name}`));

/** Who is who among Hardhat's development accounts. */
export interface Accounts {
  /** Deploys the contracts and owns every stake. */
  deployer: DevAccount;
  oracleKey: `0x${string}`;
  billerKey: `0x${string}`;
  /** Customers A (referred by `referrer`), B and C. */
  customers: DevAccount[];
  referrer: DevAccount;
  /** The stargate's configuration key: ConfigRegistry's publisher and delta signer (D52). */
  config: DevAccount;
  configKey: `0x${string}`;
}

export function devnetAccounts(): Accounts {
  return {
    deployer: devAccount(0),
    oracleKey: devKey(1),
    billerKey: devKey(2),
    customers: [devAccount(3), devAccount(4), devAccount(5)],
    referrer: devAccount(6),
    config: devAccount(7),
    configKey: devKey(7),
  };
}

/** A step of the devnet that failed: `npm start` prints its message and exits 1. */
export const DevnetError = errorClass("DevnetError", "DEVNET_STEP_FAILED", 500);
export type DevnetError = InstanceType<typeof DevnetError>;

/** Checks every wait runs first (Processes: a child that died throws its failure). */
export const failureChecks = new Set<() => void>();

/** Polls `check` every 250 ms until it returns something truthy (errors count as "not yet"). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    for (const failed of failureChecks) failed();
    try {
      const value = await check();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > until) throw new DevnetError(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Prints each step as `devnet: <what>` and keeps them, for the live view to redraw above itself on a terminal. */
export class StepLog {
  readonly history: string[] = [];

  step(what: string): void {
    this.history.push(`devnet: ${what}`);
    console.log(`devnet: ${what}`);
  }
}
