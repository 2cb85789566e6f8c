import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import RewardsManagerModule from "./RewardsManager";

const DAY = 24n * 3600n;

/**
 * PaymentVault over the deployment's token, sending the reward pool's share to the deployment's RewardsManager
 * (its parameter admin can point it elsewhere later with setRewardPool).
 */
export default buildModule("PaymentVault", (m) => {
  const { token, rewards } = m.useModule(RewardsManagerModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const adminDelay = m.getParameter("adminDelay", 2n * DAY);
  const treasury = m.getParameter("treasury", m.getAccount(0));
  const params = m.getParameter("params", {
    referrerShareBps: 1000n,
    rewardPoolShareBps: 2000n,
    withdrawalNotice: 7n * DAY,
    freeBuffer: 0n,
  });
  const vault = m.contract("PaymentVault", [token, admin, adminDelay, treasury, rewards, params]);
  return { token, rewards, vault };
});
