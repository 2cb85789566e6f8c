import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

import ConfigRegistryModule from "./ConfigRegistry";
import PaymentVaultModule from "./PaymentVault";
import RewardsManagerModule from "./RewardsManager";
import TokenMigrationModule from "./TokenMigration";

/**
 * The whole protocol in one Ignition deployment, so every module shares one EdgeToken even on the
 * in-process network (where separate deploy calls would not share state).
 */
export default buildModule("Protocol", (m) => {
  const { token, staking, rewards } = m.useModule(RewardsManagerModule);
  const { vault } = m.useModule(PaymentVaultModule);
  const { configRegistry } = m.useModule(ConfigRegistryModule);
  return { token, staking, rewards, vault, configRegistry };
});

/** The protocol plus the legacy token migration (for networks whose parameters name a legacy token). */
export const ProtocolWithMigrationModule = buildModule("ProtocolWithMigration", (m) => {
  const { token, staking, rewards } = m.useModule(RewardsManagerModule);
  const { vault } = m.useModule(PaymentVaultModule);
  const { configRegistry } = m.useModule(ConfigRegistryModule);
  const { migration } = m.useModule(TokenMigrationModule);
  return { token, staking, rewards, vault, configRegistry, migration };
});
