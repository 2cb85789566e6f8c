import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import EdgeTokenModule from "./EdgeToken";

/**
 * The legacy -> EdgeToken migration. Deployed only where the network's parameters name a legacy token.
 * The treasury funds its reserve with a plain transfer (see docs/operations.md); the deploy task does it when
 * the deployer holds the supply.
 */
export default buildModule("TokenMigration", (m) => {
  const { token } = m.useModule(EdgeTokenModule);
  const legacyToken = m.getParameter<string>("legacyToken");
  const treasury = m.getParameter("treasury", m.getAccount(0));
  const deadline = m.getParameter<bigint>("deadline");
  const rateNumerator = m.getParameter("rateNumerator", 1n);
  const rateDenominator = m.getParameter("rateDenominator", 1n);
  const burnLegacy = m.getParameter("burnLegacy", false);
  const migration = m.contract("TokenMigration", [
    legacyToken,
    token,
    treasury,
    deadline,
    rateNumerator,
    rateDenominator,
    burnLegacy,
  ]);
  return { token, migration };
});
