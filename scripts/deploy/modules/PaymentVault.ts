import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import RewardsManagerModule from "./RewardsManager";

const DAY = 24n * 3600n;
const TOKEN = 10n ** 18n;

/**
 * PaymentVault over the deployment's token, sending the reward pool's share to the deployment's RewardsManager
 * (its parameter admin can point it elsewhere later with setRewardPool).
 *
 * `minWithdrawalNotice` is fixed for the vault's life: set it to the billing service's grace period
 * (`--grace-seconds`, 1 hour by default); the withdrawal notice can never go below it. `billingWindow` and
 * `billingCapacity` bound what one biller key can bill (D35).
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
    withdrawalWindow: 2n * DAY,
  });
  const minWithdrawalNotice = m.getParameter("minWithdrawalNotice", 3600n);
  const billingWindow = m.getParameter("billingWindow", DAY);
  const billingCapacity = m.getParameter("billingCapacity", 10_000_000n * TOKEN);
  const vault = m.contract("PaymentVault", [
    token,
    admin,
    adminDelay,
    treasury,
    rewards,
    params,
    minWithdrawalNotice,
    billingWindow,
    billingCapacity,
  ]);
  return { token, rewards, vault };
});
