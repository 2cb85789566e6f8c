import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import EdgeTokenModule from "./EdgeToken";

const DAY = 24n * 3600n;
const TOKEN = 10n ** 18n;

/** StakeManager with the defaults of PROTOCOL.md; every value can be overridden per network. */
export default buildModule("StakeManager", (m) => {
  const { token } = m.useModule(EdgeTokenModule);
  const admin = m.getParameter("admin", m.getAccount(0));
  const adminDelay = m.getParameter("adminDelay", 2n * DAY);
  const treasury = m.getParameter("treasury", m.getAccount(0));
  const typeParams = m.getParameter("typeParams", [
    { minimumStake: 100n * TOKEN, unbondingPeriod: 90n * DAY },
    { minimumStake: 25_000n * TOKEN, unbondingPeriod: 90n * DAY },
    { minimumStake: 250_000n * TOKEN, unbondingPeriod: 90n * DAY },
  ]);
  const expressReleaseFeeBps = m.getParameter("expressReleaseFeeBps", 2500n);
  const slashWindow = m.getParameter("slashWindow", DAY);
  const slashCapacity = m.getParameter("slashCapacity", 500_000n * TOKEN);
  // The floor of every unbonding period, for good; deployProtocol refuses less than a day off the development chain.
  const minUnbondingPeriod = m.getParameter("minUnbondingPeriod", DAY);
  const staking = m.contract("StakeManager", [
    token,
    admin,
    adminDelay,
    treasury,
    typeParams,
    expressReleaseFeeBps,
    slashWindow,
    slashCapacity,
    minUnbondingPeriod,
  ]);
  return { token, staking };
});
