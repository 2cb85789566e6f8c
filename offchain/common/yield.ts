/**
 * The yield formula of PROTOCOL.md, in exact integers, independent of the contract (the property test holds
 * RewardsManager to it bit for bit; the oracle and wallets use it to preview yield).
 *
 *   tenureBonusBps = min(maxTenureBonusBps, tenureStepBps * floor(activeTime / 30 days))
 *   reward = floor(effectiveStake * (baseAprBps[type] + tenureBonusBps) * score * epochDuration
 *                  / (10000 * 10000 * 365 days))
 */
import { StakeType } from "./stakeMap";

export const BPS = 10_000n;
export const YEAR = 365n * 24n * 3600n;
export const TENURE_STEP = 30n * 24n * 3600n;
export const MAX_SCORE = 20_000n;

export interface YieldParams {
  hostBaseAprBps: bigint;
  gatewayBaseAprBps: bigint;
  stargateBaseAprBps: bigint;
  tenureStepBps: bigint;
  maxTenureBonusBps: bigint;
}

/** The protocol's defaults: 10/15/20% base APR at an average score, +0.5% per 30 days of tenure up to +5%. */
export const DEFAULT_YIELD_PARAMS: YieldParams = {
  hostBaseAprBps: 1000n,
  gatewayBaseAprBps: 1500n,
  stargateBaseAprBps: 2000n,
  tenureStepBps: 50n,
  maxTenureBonusBps: 500n,
};

export function baseAprBps(params: YieldParams, stakeType: StakeType): bigint {
  switch (stakeType) {
    case StakeType.Host:
      return params.hostBaseAprBps;
    case StakeType.Gateway:
      return params.gatewayBaseAprBps;
    case StakeType.Stargate:
      return params.stargateBaseAprBps;
  }
}

export function tenureBonusBps(params: YieldParams, activeTime: bigint): bigint {
  const bonus = params.tenureStepBps * (activeTime / TENURE_STEP);
  return bonus < params.maxTenureBonusBps ? bonus : params.maxTenureBonusBps;
}

export interface EpochRewardInput {
  stakeType: StakeType;
  /** min(amount at the epoch's start, amount now). */
  effectiveStake: bigint;
  /** Start of the stake's continuous active period. */
  activeSince: bigint;
  epochEnd: bigint;
  epochDuration: bigint;
  /** Basis points of the peer average, 0..20000. */
  score: bigint;
  params?: YieldParams;
}

export function epochReward(input: EpochRewardInput): bigint {
  const params = input.params ?? DEFAULT_YIELD_PARAMS;
  if (input.score < 0n || input.score > MAX_SCORE)
    throw new RangeError(`score ${input.score} is outside 0..${MAX_SCORE}`);
  const rate = baseAprBps(params, input.stakeType) + tenureBonusBps(params, input.epochEnd - input.activeSince);
  return (input.effectiveStake * rate * input.score * input.epochDuration) / (BPS * BPS * YEAR);
}
