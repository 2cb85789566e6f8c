/**
 * The timelock of a governed deployment (parameters "timelock" section; docs/decisions.md D37).
 *
 * StakeManager, RewardsManager, PaymentVault and ConfigRegistry are deployed with the timelock as their admin (no two-step admin
 * transfer to wait for). The timelock starts with no delay and the deployer as its admin, so the deployment's own
 * setup (the configured roles, the parameter roles for the timelock, StakeManager's rewards manager) runs through
 * it at once, in one batch that ends by setting the configured delay. Then the configured proposers and executors
 * get their roles and the deployer renounces its own (it keeps proposer or executor only where the file lists it).
 * Every step reads the chain first, so a resumed deployment does only what is left.
 */
import { randomBytes } from "node:crypto";
import type { Contract } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types";

import type { TimelockController } from "../../typechain";
import { TIMELOCKED_ROLES, type TimelockParameters } from "./parameters";

export interface GovernedContracts {
  StakeManager: Contract;
  RewardsManager: Contract;
  PaymentVault: Contract;
  ConfigRegistry: Contract;
}

interface Call {
  target: string;
  data: string;
  what: string;
}

export async function setUpTimelock(
  hre: HardhatRuntimeEnvironment,
  timelock: TimelockController,
  contracts: GovernedContracts,
  options: {
    settings: TimelockParameters;
    roles: Record<string, Record<string, string[]>>;
    log: (line: string) => void;
    confirms: number;
  },
): Promise<void> {
  const { settings, log, confirms } = options;
  const [deployer] = await hre.ethers.getSigners();
  const timelockAddress = await timelock.getAddress();
  const calls: Call[] = [];
  for (const [name, contract] of Object.entries(contracts) as Array<[keyof GovernedContracts, Contract]>) {
    const admin: string = await contract.getFunction("defaultAdmin")();
    if (admin.toLowerCase() !== timelockAddress.toLowerCase()) {
      throw new Error(`${name}'s admin is ${admin}, not the timelock ${timelockAddress}: redeploy it`);
    }
    const wanted: Record<string, string[]> = { ...(options.roles[name] ?? {}) };
    for (const role of TIMELOCKED_ROLES) {
      if (contract.interface.getFunction(role)) wanted[role] = [timelockAddress];
    }
    calls.push(...(await missingGrants(name, contract, wanted)));
  }
  const rewardsAddress = await contracts.RewardsManager.getAddress();
  if ((await contracts.StakeManager.getFunction("rewardsManager")()) !== rewardsAddress) {
    calls.push({
      target: await contracts.StakeManager.getAddress(),
      data: contracts.StakeManager.interface.encodeFunctionData("setRewardsManager", [rewardsAddress]),
      what: `StakeManager now compounds through ${rewardsAddress}`,
    });
  }
  if ((await timelock.getMinDelay()) !== settings.minDelay) {
    calls.push({
      target: timelockAddress,
      data: timelock.interface.encodeFunctionData("updateDelay", [settings.minDelay]),
      what: `timelock delay set to ${settings.minDelay} s`,
    });
  }
  const send = async (tx: Promise<{ wait(confirms?: number): Promise<unknown> }>) => (await tx).wait(confirms);
  const asDeployer = timelock.connect(deployer);
  const [PROPOSER, EXECUTOR, CANCELLER, ADMIN] = await Promise.all([
    timelock.PROPOSER_ROLE(),
    timelock.EXECUTOR_ROLE(),
    timelock.CANCELLER_ROLE(),
    timelock.DEFAULT_ADMIN_ROLE(),
  ]);
  const isAdmin = await timelock.hasRole(ADMIN, deployer.address);
  if (calls.length > 0) {
    if ((await timelock.getMinDelay()) !== 0n || !isAdmin) {
      log(`NOTE: the timelock's proposers must still propose: ${calls.map((c) => c.what).join("; ")}`);
    } else {
      for (const role of [PROPOSER, EXECUTOR]) {
        if (!(await timelock.hasRole(role, deployer.address))) await send(asDeployer.grantRole(role, deployer));
      }
      const args = [calls.map((c) => c.target), calls.map(() => 0n), calls.map((c) => c.data)] as const;
      const salt = `0x${randomBytes(32).toString("hex")}`;
      await send(asDeployer.scheduleBatch(...args, hre.ethers.ZeroHash, salt, 0n));
      await send(asDeployer.executeBatch(...args, hre.ethers.ZeroHash, salt));
      for (const call of calls) log(call.what);
    }
  }
  if (!isAdmin) return;
  const grants: Array<[string, string, string[]]> = [
    [PROPOSER, "PROPOSER_ROLE", settings.proposers],
    [CANCELLER, "CANCELLER_ROLE", settings.proposers],
    [EXECUTOR, "EXECUTOR_ROLE", settings.executors],
  ];
  for (const [role, roleName, accounts] of grants) {
    for (const account of accounts) {
      if (await timelock.hasRole(role, account)) continue;
      await send(asDeployer.grantRole(role, account));
      log(`timelock: granted ${roleName} to ${account}`);
    }
    const listed = accounts.some((a) => a.toLowerCase() === deployer.address.toLowerCase());
    if (!listed && (await timelock.hasRole(role, deployer.address))) {
      await send(asDeployer.renounceRole(role, deployer));
    }
  }
  await send(asDeployer.renounceRole(ADMIN, deployer));
  log(`timelock: the deployer renounced its admin role; delay ${await timelock.getMinDelay()} s`);
}

/** grantRole calls (through the timelock) for the accounts of `roles` that do not hold them yet. */
async function missingGrants(name: string, contract: Contract, roles: Record<string, string[]>): Promise<Call[]> {
  const calls: Call[] = [];
  const target = await contract.getAddress();
  for (const [roleName, accounts] of Object.entries(roles)) {
    if (!contract.interface.getFunction(roleName)) throw new Error(`${name} has no role ${roleName}`);
    const role: string = await contract.getFunction(roleName)();
    for (const account of accounts) {
      if (await contract.getFunction("hasRole")(role, account)) continue;
      calls.push({
        target,
        data: contract.interface.encodeFunctionData("grantRole", [role, account]),
        what: `granted ${name}.${roleName} to ${account}`,
      });
    }
  }
  return calls;
}
