import { parseEther } from "ethers";

export const DAY = 24n * 3600n;

/** Mirrors IStakeManager.StakeType. */
export enum StakeType {
  Host = 0,
  Gateway = 1,
  Stargate = 2,
}

/** Mirrors IStakeManager.StakeStatus. */
export enum StakeStatus {
  Unassigned = 0,
  Assigned = 1,
  Unlocking = 2,
  Unlocked = 3,
  Released = 4,
}

export const TOKEN_SUPPLY = parseEther("1000000000");

export interface TypeParams {
  minimumStake: bigint;
  unbondingPeriod: bigint;
}

/** The protocol defaults of PROTOCOL.md (the same values as the StakeManager Ignition module's defaults). */
export const DEFAULTS = {
  adminDelay: DAY,
  typeParams: [
    { minimumStake: parseEther("100"), unbondingPeriod: 90n * DAY },
    { minimumStake: parseEther("25000"), unbondingPeriod: 90n * DAY },
    { minimumStake: parseEther("250000"), unbondingPeriod: 90n * DAY },
  ] as [TypeParams, TypeParams, TypeParams],
  expressReleaseFeeBps: 2500n,
  slashWindow: DAY,
  slashCapacity: parseEther("500000"),
  minUnbondingPeriod: DAY,
};

export const MINIMUM = {
  [StakeType.Host]: DEFAULTS.typeParams[0].minimumStake,
  [StakeType.Gateway]: DEFAULTS.typeParams[1].minimumStake,
  [StakeType.Stargate]: DEFAULTS.typeParams[2].minimumStake,
} as const;
