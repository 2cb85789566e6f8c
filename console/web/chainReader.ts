/**
 * What the read modules (readOverview, readStakes, readEarnings, readCustomer, checkConsent) need from the
 * chain: a public client on the wallet's provider, the connected account and the deployment's contracts.
 * EdgeChain (chain.ts) is one; the modules take it as an argument so that none of them imports another's client.
 */
import type { Address, PublicClient } from "viem";

import type { PostedScores } from "../../offchain/common/postedScores";
import type { edgeTokenAbi, stakeManagerAbi } from "../../offchain/common/generated/abis";
import type { Contracts } from "./pageConfig";

export interface ChainReader {
  readonly publicClient: PublicClient;
  readonly account: Address;
  readonly contracts: Contracts;
  /** Posted scores, read back from the chain (absent without RewardsManager). */
  readonly postedScores?: PostedScores;
}

/** A contract's EIP-712 domain (ERC-5267 `eip712Domain`), for checking and making typed signatures. */
export async function eip712DomainOf(
  reader: ChainReader,
  address: Address,
  abi: typeof stakeManagerAbi | typeof edgeTokenAbi,
) {
  const [, name, version, chainId, verifyingContract] = await reader.publicClient.readContract({
    address,
    abi: abi as typeof edgeTokenAbi,
    functionName: "eip712Domain",
  });
  return { name, version, chainId, verifyingContract };
}
