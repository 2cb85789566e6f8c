/**
 * A stake's earnings, read from RewardsManager: accrued yield, last scored epoch, the score it got there (decoded
 * from the posted batch), the APR at that score with the stake's tenure, and what one epoch at that rate earns
 * (the project's yield formula, offchain/common/yield.ts).
 */
import { type Hash, decodeFunctionData } from "viem";

import { rewardsManagerAbi } from "../../offchain/common/generated/abis";
import { getLogsPaged } from "../../offchain/common/logPages";
import { unpackEntries } from "../../offchain/common/scoreBatch";
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
  const score = scored ? await postedScore(reader, lastEpoch, stake.id) : null;
  const scoreUsed = score ?? 10_000n;
  const activeTime = stake.activeSince > 0n && stake.activeSince <= now ? now - stake.activeSince : 0n;
  const aprBps = await read({
    address: rewards,
    abi: rewardsManagerAbi,
    functionName: "aprBps",
    args: [stake.type, activeTime, scoreUsed],
  });
  const perEpoch = epochReward({
    stakeType: stake.type as StakeType,
    effectiveStake: stake.amount,
    activeSince: stake.activeSince,
    epochEnd: stake.activeSince > 0n ? now : 0n,
    epochDuration: duration,
    score: scoreUsed > 20_000n ? 20_000n : scoreUsed,
    params: {
      hostBaseAprBps: BigInt(params.hostBaseAprBps),
      gatewayBaseAprBps: BigInt(params.gatewayBaseAprBps),
      stargateBaseAprBps: BigInt(params.stargateBaseAprBps),
      tenureStepBps: BigInt(params.tenureStepBps),
      maxTenureBonusBps: BigInt(params.maxTenureBonusBps),
    },
  });
  return { accrued, lastScoredEpoch: scored ? lastEpoch : null, score, aprBps, scoreUsed, perEpoch };
}

interface PostingScan {
  /** The last block scanned for ScoresPosted. */
  scannedTo: bigint;
  /** epoch -> the transactions that posted its batches */
  byEpoch: Map<string, Hash[]>;
  /** The scan in progress: stakes read in parallel share it. */
  running: Promise<void> | null;
}
const postingScans = new WeakMap<ChainReader, PostingScan>();

/**
 * The transactions that posted an epoch's batches. ScoresPosted logs of every epoch are read once, in pages like
 * the chain view's (a wallet's provider refuses one getLogs over a long history), and then only new blocks.
 */
async function postingTransactions(reader: ChainReader, epoch: bigint): Promise<Hash[]> {
  let scan = postingScans.get(reader);
  if (!scan) {
    scan = { scannedTo: reader.contracts.rewardsFromBlock - 1n, byEpoch: new Map(), running: null };
    postingScans.set(reader, scan);
  }
  const state = scan;
  while (state.running) await state.running;
  const head = await reader.publicClient.getBlockNumber();
  if (head > state.scannedTo) {
    state.running = (async () => {
      const logs = await getLogsPaged(
        (fromBlock, toBlock) =>
          reader.publicClient.getContractEvents({
            address: reader.contracts.rewards!,
            abi: rewardsManagerAbi,
            eventName: "ScoresPosted",
            fromBlock,
            toBlock,
          }),
        state.scannedTo + 1n,
        head,
      );
      for (const log of logs) {
        const key = (log.args.epoch as bigint).toString();
        state.byEpoch.set(key, [...(state.byEpoch.get(key) ?? []), log.transactionHash]);
      }
      state.scannedTo = head;
    })().finally(() => (state.running = null));
    await state.running;
  }
  return state.byEpoch.get(epoch.toString()) ?? [];
}

/**
 * The score a stake got in an epoch, read from the posted batches' calldata (the contract keeps no per-stake
 * score). Null when the batches were posted through another contract (a multisig) and cannot be decoded.
 */
async function postedScore(reader: ChainReader, epoch: bigint, stakeId: bigint): Promise<bigint | null> {
  const key = epoch.toString();
  let scores = reader.postedScores.get(key);
  if (!scores) {
    scores = new Map();
    for (const hash of await postingTransactions(reader, epoch)) {
      try {
        const tx = await reader.publicClient.getTransaction({ hash });
        const call = decodeFunctionData({ abi: rewardsManagerAbi, data: tx.input });
        if (call.functionName !== "postScores") continue;
        for (const entry of unpackEntries(call.args[2])) scores.set(entry.stakeId, BigInt(entry.score));
      } catch {
        // Not a direct postScores call: the score stays unknown.
      }
    }
    reader.postedScores.set(key, scores);
  }
  return scores.get(stakeId) ?? null;
}
