import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import StakeManagerModule from "./StakeManager";

const DAY = 24n * 3600n;

/**
 * RewardsManager over the StakeManager of the same deployment. `genesis` and `committee` have no sensible
 * static default: the deploy task fills them (the latest block's time; the deployer) unless the network's
 * parameters set them, which real networks should.
 */
export default buildModule("RewardsManager", (m) => {
  const { token, staking } = m.useModule(StakeManagerModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const adminDelay = m.getParameter("adminDelay", 2n * DAY);
  const genesis = m.getParameter<bigint>("genesis");
  const epochDuration = m.getParameter("epochDuration", DAY);
  const committee = m.getParameter<string[]>("committee");
  const threshold = m.getParameter("threshold", 1n);
  const yieldParams = m.getParameter("yieldParams", {
    hostBaseAprBps: 1000n,
    gatewayBaseAprBps: 1500n,
    stargateBaseAprBps: 2000n,
    tenureStepBps: 50n,
    maxTenureBonusBps: 500n,
  });
  const rewards = m.contract("RewardsManager", [
    staking,
    admin,
    adminDelay,
    genesis,
    epochDuration,
    committee,
    threshold,
    yieldParams,
  ]);
  return { token, staking, rewards };
});
