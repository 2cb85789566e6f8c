import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

const DAY = 24n * 3600n;
const NONE = "0x0000000000000000000000000000000000000000";

/**
 * ConfigRegistry: the chain's anchor of the network configuration (issue 17, D52). `admin` grants and revokes the
 * publisher and delta-signer roles (deployProtocol makes it the timelock when there is one); `publisher`, when
 * set, gets PUBLISHER_ROLE and DELTA_SIGNER_ROLE at deployment (a stargate's config key or the team's publishing
 * key), so the network can publish its first configuration without waiting for a governance delay.
 */
export default buildModule("ConfigRegistry", (m) => {
  const admin = m.getParameter("admin", m.getAccount(0));
  const adminDelay = m.getParameter("adminDelay", 2n * DAY);
  const publisher = m.getParameter("publisher", NONE);
  const configRegistry = m.contract("ConfigRegistry", [admin, adminDelay, publisher]);
  return { configRegistry };
});
