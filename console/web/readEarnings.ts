/**
 * A stake's earnings, read from RewardsManager: accrued yield, last scored epoch, the score it got there (decoded
 * from the posted batch, offchain/common/postedScores.ts), the APR at that score with the stake's tenure
 * (offchain/common/apr.ts, RewardsManager's `aprBps`), and what one epoch at that rate earns (the project's yield
 * formula, offchain/common/yield.ts).
 */
import { aprBps, yieldParamsOf } from "../../offchain/common/apr";
import { rewardsManagerAbi } from "../../offchain/common/generated/abis";
import { StakeType } from "../../offchain/common/stakeMap";
import { epochReward } from "../../offchain/common/yield";
import type { ChainReader } from "./chainReader";

export interface Earnings {
  accrued: bigint;
  lastScoredEpoch: bigint | null;
  /** The score of the last scored epoch (basis points of the peer average), when it can be read. */
  score: bigint | null;
  /** APR at `score` (or at the average score when there is none), with the stake's tenure now. */
  aprBps: bigint;
  scoreUsed: bigint;
  /** The yield one epoch at `scoreUsed` would earn the stake at its current amount. */
  perEpoch: bigint;
}

/** The stake's fields the earnings depend on. */
interface EarningStake {
  id: bigint;
  type: number;
  amount: bigint;
  activeSince: bigint;
}

export async function readEarnings(reader: ChainReader, stake: EarningStake, now: bigint): Promise<Earnings> {
  const rewards = reader.contracts.rewards!;
  const read = reader.publicClient.readContract.bind(reader.publicClient);
  const [accrued, [scored, lastEpoch], params, duration] = await Promise.all([
    read({ address: rewards, abi: rewardsManagerAbi, functionName: "accrued", args: [stake.id] }),
    read({ address: rewards, abi: rewardsManagerAbi, functionName: "lastScoredEpoch", args: [stake.id] }),
    read({ address: rewards, abi: rewardsManagerAbi, functionName: "yieldParams" }),
    read({ address: rewards, abi: rewardsManagerAbi, functionName: "epochDuration" }),
  ]);
  const score = scored ? await reader.postedScores!.scoreOf(lastEpoch, stake.id) : null;
  const scoreUsed = score ?? 10_000n;
  const activeTime = stake.activeSince > 0n && stake.activeSince <= now ? now - stake.activeSince : 0n;
  const yieldParams = yieldParamsOf(params);
  const perEpoch = epochReward({
    stakeType: stake.type as StakeType,
    effectiveStake: stake.amount,
    activeSince: stake.activeSince,
    epochEnd: stake.activeSince > 0n ? now : 0n,
    epochDuration: duration,
    score: scoreUsed > 20_000n ? 20_000n : scoreUsed,
    params: yieldParams,
  });
  const apr = aprBps(yieldParams, stake.type as StakeType, activeTime, scoreUsed);
  return { accrued, lastScoredEpoch: scored ? lastEpoch : null, score, aprBps: apr, scoreUsed, perEpoch };
}
