/** The oracle's reads of RewardsManager. */
import type { Address, PublicClient, TypedDataDomain } from "viem";

import { rewardsManagerAbi } from "../common/generated/abis";

export interface Committee {
  members: readonly Address[];
  threshold: number;
  version: bigint;
}

export type RewardsReader = Pick<PublicClient, "readContract">;

export async function readCommittee(client: RewardsReader, rewards: Address): Promise<Committee> {
  const [members, threshold, version] = await client.readContract({
    address: rewards,
    abi: rewardsManagerAbi,
    functionName: "committee",
  });
  return { members, threshold: Number(threshold), version };
}

/** RewardsManager's EIP-712 domain (ERC-5267), which score batch signatures are made in. */
export async function readRewardsDomain(client: RewardsReader, rewards: Address): Promise<TypedDataDomain> {
  const [, name, version, chainId, verifyingContract] = await client.readContract({
    address: rewards,
    abi: rewardsManagerAbi,
    functionName: "eip712Domain",
  });
  return { name, version, chainId: Number(chainId), verifyingContract };
}

export function isBatchPosted(
  client: RewardsReader,
  rewards: Address,
  epoch: number,
  batchIndex: number,
): Promise<boolean> {
  return client.readContract({
    address: rewards,
    abi: rewardsManagerAbi,
    functionName: "isBatchPosted",
    args: [BigInt(epoch), BigInt(batchIndex)],
  });
}
