/**
 * What the server hands the page at /config.json (the chain id, the RPC URL and the address book), and the
 * contracts' addresses the page reads from it. No DOM, no network.
 */
import type { Address } from "viem";

/**
 * The address book as the page receives it (the shape of offchain/common/addressBook.ts, which reads files and
 * so cannot be bundled for the browser; the server validated it with parseAddressBook).
 */
export interface PageAddressBook {
  chainId: number;
  contracts: Partial<
    Record<"EdgeToken" | "TokenMigration" | "StakeManager" | "RewardsManager" | "PaymentVault", ContractEntry>
  >;
}

interface ContractEntry {
  address: string;
  blockNumber: number;
}

/** What the server hands the page at /config.json. */
export interface ConsoleConfig {
  chainId: number;
  rpcUrl: string;
  addresses: PageAddressBook;
}

export interface Contracts {
  token: Address;
  staking: Address;
  rewards?: Address;
  vault?: Address;
  stakingFromBlock: bigint;
  rewardsFromBlock: bigint;
}

export function contractsOf(book: PageAddressBook): Contracts {
  const c = book.contracts;
  if (!c.EdgeToken || !c.StakeManager) throw new Error("the address book has no EdgeToken or StakeManager");
  return {
    token: c.EdgeToken.address as Address,
    staking: c.StakeManager.address as Address,
    rewards: c.RewardsManager?.address as Address | undefined,
    vault: c.PaymentVault?.address as Address | undefined,
    stakingFromBlock: BigInt(c.StakeManager.blockNumber),
    rewardsFromBlock: BigInt(c.RewardsManager?.blockNumber ?? c.StakeManager.blockNumber),
  };
}

/** How the page names the deployment's chain to viem and to wallets that do not know it yet. */
export const chainName = (chainId: number) => `Edge chain ${chainId}`;
export const NATIVE_CURRENCY = { name: "Ether", symbol: "ETH", decimals: 18 } as const;
