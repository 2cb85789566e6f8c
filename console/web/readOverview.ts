/**
 * Everything the page shows, read in one go: the chain's time, the wallet's token balance, StakeManager's
 * parameters, the account's stakes (readStakes), the current epoch and the account as a customer (readCustomer).
 */
import { edgeTokenAbi, rewardsManagerAbi, stakeManagerAbi } from "../../offchain/common/generated/abis";
import type { ChainReader } from "./chainReader";
import { type CustomerView, readCustomer } from "./readCustomer";
import { type StakeRow, readStakes } from "./readStakes";

export interface Overview {
  blockTime: bigint;
  walletBalance: bigint;
  expressReleaseFeeBps: bigint;
  minimums: bigint[];
  unbondingPeriods: bigint[];
  stakes: StakeRow[];
  epoch?: { current: bigint; start: bigint; end: bigint; duration: bigint };
  customer?: CustomerView;
}

export async function readOverview(reader: ChainReader): Promise<Overview> {
  const c = reader.contracts;
  const read = reader.publicClient.readContract.bind(reader.publicClient);
  const [block, walletBalance, expressReleaseFeeBps, ...typeParams] = await Promise.all([
    reader.publicClient.getBlock({ blockTag: "latest" }),
    read({ address: c.token, abi: edgeTokenAbi, functionName: "balanceOf", args: [reader.account] }),
    read({ address: c.staking, abi: stakeManagerAbi, functionName: "expressReleaseFeeBps" }),
    ...[0, 1, 2].map((t) => read({ address: c.staking, abi: stakeManagerAbi, functionName: "typeParams", args: [t] })),
  ]);
  const overview: Overview = {
    blockTime: block.timestamp,
    walletBalance,
    expressReleaseFeeBps,
    minimums: typeParams.map((p) => BigInt(p.minimumStake)),
    unbondingPeriods: typeParams.map((p) => BigInt(p.unbondingPeriod)),
    stakes: await readStakes(reader, block.timestamp),
  };
  if (c.rewards) overview.epoch = await readEpoch(reader);
  if (c.vault) overview.customer = await readCustomer(reader);
  return overview;
}

async function readEpoch(reader: ChainReader): Promise<Overview["epoch"]> {
  const rewards = reader.contracts.rewards!;
  const read = reader.publicClient.readContract.bind(reader.publicClient);
  const [current, duration] = await Promise.all([
    read({ address: rewards, abi: rewardsManagerAbi, functionName: "currentEpoch" }),
    read({ address: rewards, abi: rewardsManagerAbi, functionName: "epochDuration" }),
  ]);
  const [start, end] = await read({
    address: rewards,
    abi: rewardsManagerAbi,
    functionName: "epochWindow",
    args: [current],
  });
  return { current, start, end, duration };
}
