import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * OpenZeppelin's TimelockController, deployed before the protocol when the network's parameters have a "timelock"
 * section, so the protocol's contracts can name it as their admin. It starts with no delay, no proposer and the
 * deployer as its admin: deploy:protocol then runs the setup through it, sets the delay of the parameters file,
 * hands the proposer and executor roles to the configured accounts and renounces the deployer's
 * (scripts/deploy/governance.ts).
 */
export default buildModule("Timelock", (m) => {
  const timelock = m.contract("TimelockController", [0n, [], [], m.getAccount(0)]);
  return { timelock };
});
