/** Every stake the connected account created, read from StakeManager, with its device's admission and earnings. */
import { zeroAddress, type Address } from "viem";

import { stakeManagerAbi } from "../../offchain/common/generated/abis";
import { getLogsPaged } from "../../offchain/common/logPages";
import type { ChainReader } from "./chainReader";
import { type Earnings, readEarnings } from "./readEarnings";

export interface StakeRow {
  id: bigint;
  type: number;
  status: number;
  amount: bigint;
  device: Address | null;
  admitted: boolean;
  minimumMet: boolean;
  minimumStake: bigint;
  createdAt: bigint;
  activeSince: bigint;
  unlockAt: bigint;
  releasedAt: bigint;
  earnings?: Earnings;
}

/** Every stake the account created (from StakeCreated logs), newest first, with its earnings. */
export async function readStakes(reader: ChainReader, now: bigint): Promise<StakeRow[]> {
  const c = reader.contracts;
  // Paged like the chain view (wallet providers refuse one getLogs over a long history).
  const head = await reader.publicClient.getBlockNumber();
  const logs = await getLogsPaged(
    (fromBlock, toBlock) =>
      reader.publicClient.getContractEvents({
        address: c.staking,
        abi: stakeManagerAbi,
        eventName: "StakeCreated",
        args: { owner: reader.account },
        fromBlock,
        toBlock,
      }),
    c.stakingFromBlock,
    head,
  );
  const ids = logs.map((log) => log.args.stakeId as bigint).reverse();
  return Promise.all(ids.map((stakeId) => readStake(reader, stakeId, now)));
}

export async function readStake(reader: ChainReader, stakeId: bigint, now: bigint): Promise<StakeRow> {
  const c = reader.contracts;
  const read = reader.publicClient.readContract.bind(reader.publicClient);
  const s = await read({ address: c.staking, abi: stakeManagerAbi, functionName: "getStake", args: [stakeId] });
  const device = s.device === zeroAddress ? null : s.device;
  const [params, deviceStatus] = await Promise.all([
    read({ address: c.staking, abi: stakeManagerAbi, functionName: "typeParams", args: [s.stakeType] }),
    device
      ? read({ address: c.staking, abi: stakeManagerAbi, functionName: "deviceStatus", args: [device] })
      : undefined,
  ]);
  const row: StakeRow = {
    id: stakeId,
    type: s.stakeType,
    status: s.status,
    amount: s.amount,
    device,
    // deviceStatus answers for the device's current stake: this one only while the device is bound to it.
    admitted: Boolean(deviceStatus && deviceStatus.stakeId === stakeId && deviceStatus.admitted),
    minimumMet: s.minimumMet,
    minimumStake: BigInt(params.minimumStake),
    createdAt: s.createdAt,
    activeSince: s.activeSince,
    unlockAt: s.unlockAt,
    releasedAt: s.releasedAt,
  };
  if (c.rewards) row.earnings = await readEarnings(reader, row, now);
  return row;
}
