/** What the StakeManager tests share: alice's host stake with a device and bob's gateway stake; ether for a device key. */
import { ethers } from "hardhat";

import { deployStakingFixture, newDevice, signConsent } from "../../shared/fixtures";
import { MINIMUM, StakeType } from "../../shared/constants";

export const ONE = ethers.parseEther("1");
export const HOST_AMOUNT = ethers.parseEther("1000");

export async function stakedFixture() {
  const f = await deployStakingFixture();
  const stakingAddress = await f.staking.getAddress();
  for (const account of [f.alice, f.bob, f.carol]) {
    await f.token.connect(account).approve(stakingAddress, ethers.MaxUint256);
  }
  const device = newDevice();
  const consent = await signConsent(f.staking, device, f.alice.address);
  await f.staking.connect(f.alice).stakeAndAssign(StakeType.Host, HOST_AMOUNT, consent);
  // Stake 1: alice's host with `device`; stake 2: bob's gateway without a device.
  await f.staking.connect(f.bob).stake(StakeType.Gateway, MINIMUM[StakeType.Gateway]);
  return { ...f, stakingAddress, device };
}

export async function fund(address: string) {
  const [funder] = await ethers.getSigners();
  await funder.sendTransaction({ to: address, value: ethers.parseEther("1") });
}
