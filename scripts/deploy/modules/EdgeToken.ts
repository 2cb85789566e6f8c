import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/** The reissued Edge token; the whole fixed supply goes to the treasury. */
export default buildModule("EdgeToken", (m) => {
  const treasury = m.getParameter("treasury", m.getAccount(0));
  // 1,000,000,000 EDGE (18 decimals) unless the network's parameters say otherwise.
  const supply = m.getParameter("supply", 1_000_000_000n * 10n ** 18n);
  const token = m.contract("EdgeToken", [treasury, supply]);
  return { token };
});
