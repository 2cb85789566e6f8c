/**
 * APR from a posted score: RewardsManager's `aprBps` view, in exact integers, built on the yield formula's own
 * terms (yield.ts: `baseAprBps`, `tenureBonusBps`), so there is one formula. The Console's earnings (console/web/
 * readEarnings.ts) and its map of regions (console/regionsView.ts) use it; test/console/regions.test.ts holds it
 * to the contract's view.
 *
 *   aprBps = floor((baseAprBps[type] + tenureBonusBps(activeTime)) * score / 10000)
 *
 * And the contract's `yieldParams()` struct as yield.ts takes it. Browser-safe (no Node built-ins): the Console's
 * page bundles it.
 */
import type { Address, PublicClient } from "viem";

import { rewardsManagerAbi } from "./generated/abis";
import type { StakeType } from "./stakeMap";
import { BPS, type YieldParams, baseAprBps, tenureBonusBps } from "./yield";

/** The APR in basis points of a stake of `stakeType`, active for `activeTime` seconds, at `score` (bps). */
export function aprBps(params: YieldParams, stakeType: StakeType, activeTime: bigint, score: bigint): bigint {
  return ((baseAprBps(params, stakeType) + tenureBonusBps(params, activeTime)) * score) / BPS;
}

/** RewardsManager's `yieldParams()` as the chain returns it (numbers or bigints by field size). */
export interface RawYieldParams {
  hostBaseAprBps: number | bigint;
  gatewayBaseAprBps: number | bigint;
  stargateBaseAprBps: number | bigint;
  tenureStepBps: number | bigint;
  maxTenureBonusBps: number | bigint;
}

export function yieldParamsOf(raw: RawYieldParams): YieldParams {
  return {
    hostBaseAprBps: BigInt(raw.hostBaseAprBps),
    gatewayBaseAprBps: BigInt(raw.gatewayBaseAprBps),
    stargateBaseAprBps: BigInt(raw.stargateBaseAprBps),
    tenureStepBps: BigInt(raw.tenureStepBps),
    maxTenureBonusBps: BigInt(raw.maxTenureBonusBps),
  };
}

/** The deployment's yield parameters now. */
export async function readYieldParams(client: Pick<PublicClient, "readContract">, rewards: Address) {
  return yieldParamsOf(
    await client.readContract({ address: rewards, abi: rewardsManagerAbi, functionName: "yieldParams" }),
  );
}
