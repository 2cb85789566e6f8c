/** What the RewardsManager tests share: two stakes active through epoch 0, and the formula's reward for one. */
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";

import { type RewardsFixture, deployRewardsFixture } from "../../shared/fixtures";
import { DAY, MINIMUM, StakeType } from "../../shared/constants";
import { epochReward } from "../../../offchain/common/yield";

export const ONE = ethers.parseEther("1");
export const HOST = ethers.parseEther("10000");

export enum Skip {
  ScoreAboveMaximum = 0,
  NotActiveThroughEpoch = 1,
  AlreadyScored = 2,
}

/** Alice's host stake 1 and bob's gateway stake 2, created before genesis; now in epoch 1. */
export async function scoredFixture() {
  const f = await deployRewardsFixture();
  const stakingAddress = await f.staking.getAddress();
  for (const account of [f.alice, f.bob, f.carol])
    await f.token.connect(account).approve(stakingAddress, ethers.MaxUint256);
  await f.staking.connect(f.alice).stake(StakeType.Host, HOST);
  await f.staking.connect(f.bob).stake(StakeType.Gateway, MINIMUM[StakeType.Gateway]);
  // Epoch 1 starts a day after genesis; both stakes are active through it once it ends.
  await time.increaseTo(f.genesis + DAY + 10n);
  return f;
}

export async function window(f: RewardsFixture, epoch: bigint) {
  const [start, end] = await f.rewards.epochWindow(epoch);
  return { start, end };
}

/** The formula's reward for a stake, from the stake's own data and the epoch's window. */
export async function expected(f: RewardsFixture, stakeId: bigint, epoch: bigint, score: bigint, effective?: bigint) {
  const stake = await f.staking.getStake(stakeId);
  const { end } = await window(f, epoch);
  return epochReward({
    stakeType: Number(stake.stakeType),
    effectiveStake: effective ?? stake.amount,
    activeSince: stake.activeSince,
    epochEnd: end,
    epochDuration: f.epochDuration,
    score,
  });
}
