/**
 * Deploys the protocol with its Ignition modules, grants the configured roles and writes the address book.
 * Used by the `deploy:protocol` task, the devnet and tests.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { DeploymentParameters } from "@nomicfoundation/ignition-core";
import type { Contract } from "ethers";
import type { HardhatRuntimeEnvironment } from "hardhat/types";

import {
  type AddressBook,
  type ContractName,
  addressBookPath,
  readAddressBook,
  writeAddressBook,
} from "../../offchain/common/addressBook";
import type { TimelockController } from "../../typechain";
import { setUpTimelock } from "./governance";
import ProtocolModule, { ProtocolWithMigrationModule } from "./modules/Protocol";
import TimelockModule from "./modules/Timelock";
import { type NetworkParameters, loadNetworkParameters } from "./parameters";
import { withUnbondingFloor } from "./unbondingFloor";

export const ADDRESSES_DIR = join(__dirname, "addresses");

/**
 * Blocks every deployment step and task waits for after its transaction's block (EDGE_CONFIRMATIONS, default 1):
 * on a chain that reorgs, a step that waits too little can build on a transaction that then disappears.
 */
export function requiredConfirmations(env: NodeJS.ProcessEnv): number {
  const raw = env.EDGE_CONFIRMATIONS;
  if (raw === undefined || raw === "") return 1;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 1000) {
    throw new Error(`EDGE_CONFIRMATIONS "${raw}" is not a whole number of blocks from 1 to 1000`);
  }
  return Number(raw);
}

export interface DeployOptions {
  parameters?: NetworkParameters;
  /** Ignition deployment id (its journal folder); defaults to chain-<id>. */
  deploymentId?: string;
  /** Where to write the address book; defaults to scripts/deploy/addresses. */
  addressesDir?: string;
  log?: (line: string) => void;
}

export interface DeployResult {
  book: AddressBook;
  file: string;
}

export async function deployProtocol(
  hre: HardhatRuntimeEnvironment,
  options: DeployOptions = {},
): Promise<DeployResult> {
  const log = options.log ?? (() => undefined);
  const parameters = options.parameters ?? loadNetworkParameters(hre.network.name);
  const chainId = Number((await hre.ethers.provider.getNetwork()).chainId);
  const [deployer] = await hre.ethers.getSigners();
  const startBlock = await hre.ethers.provider.getBlockNumber();
  // RewardsManager's genesis and committee depend on the moment and the deployer unless the network sets them;
  // a resumed deployment reuses what its journal recorded, or Ignition would see changed arguments.
  const latest = await hre.ethers.provider.getBlock(startBlock);
  const deploymentId = options.deploymentId ?? `chain-${chainId}`;
  const recorded = recordedRewardsArguments(join(hre.config.paths.ignition, "deployments", deploymentId));
  const ignitionParameters: DeploymentParameters = {
    ...parameters.ignition,
    // StakeManager's unbonding floor: at least a day off the development chain (D36, L-2).
    StakeManager: withUnbondingFloor(chainId, parameters.ignition.StakeManager),
    RewardsManager: {
      genesis: recorded?.genesis ?? BigInt(latest!.timestamp),
      committee: recorded?.committee ?? [deployer.address],
      ...parameters.ignition.RewardsManager,
    },
  };
  const confirms = requiredConfirmations(process.env);
  const deployOptions = {
    parameters: ignitionParameters,
    deploymentId: options.deploymentId,
    displayUi: false,
    config: { requiredConfirmations: confirms },
  };
  // A governed deployment: the timelock first, then the contracts with it as their admin (D37).
  let timelock: TimelockController | undefined;
  if (parameters.timelock) {
    timelock = (await hre.ignition.deploy(TimelockModule, { ...deployOptions, parameters: {} }))
      .timelock as unknown as TimelockController;
    const admin = await timelock.getAddress();
    for (const name of ["StakeManager", "RewardsManager", "PaymentVault", "ConfigRegistry"]) {
      ignitionParameters[name] = { ...ignitionParameters[name], admin };
    }
  }

  // One Ignition deployment for everything: every module shares the same EdgeToken.
  const withMigration = Boolean(parameters.ignition.TokenMigration?.legacyToken);
  const result: Record<string, Contract> = withMigration
    ? await hre.ignition.deploy(ProtocolWithMigrationModule, deployOptions)
    : await hre.ignition.deploy(ProtocolModule, deployOptions);
  const { token, staking, rewards, vault, configRegistry } = result;
  // Sends `holder` from the deployer what it lacks of `target` tokens, so a re-run never funds it twice.
  const topUp = async (holder: string, target: bigint, what: string) => {
    const held: bigint = await token.balanceOf(holder);
    if (target <= held) return;
    await (await token.connect(deployer).getFunction("transfer")(holder, target - held)).wait(confirms);
    log(`funded ${what} with ${target - held} base units`);
  };
  const deployed: Partial<Record<ContractName, string>> = {
    EdgeToken: await token.getAddress(),
    StakeManager: await staking.getAddress(),
    RewardsManager: await rewards.getAddress(),
    PaymentVault: await vault.getAddress(),
    ConfigRegistry: await configRegistry.getAddress(),
  };
  for (const [name, address] of Object.entries(deployed)) log(`${name.padEnd(14)} ${address}`);
  if (result.migration) {
    deployed.TokenMigration = await result.migration.getAddress();
    log(`TokenMigration ${deployed.TokenMigration}`);
    await topUp(deployed.TokenMigration, parameters.migration?.reserve ?? 0n, "the migration reserve");
  }

  if (timelock) {
    deployed.TimelockController = await timelock.getAddress();
    log(`Timelock       ${deployed.TimelockController}`);
    const contracts = {
      StakeManager: staking,
      RewardsManager: rewards,
      PaymentVault: vault,
      ConfigRegistry: configRegistry,
    };
    await setUpTimelock(hre, timelock, contracts, {
      settings: parameters.timelock!,
      roles: parameters.roles,
      log,
      confirms,
    });
  } else {
    log("NOTE: no timelock section: the admin and parameter roles act at once (docs/operations.md, Governance)");
    await grantRoles(hre, staking, parameters.roles.StakeManager ?? {}, log, confirms);
    await grantRoles(hre, rewards, parameters.roles.RewardsManager ?? {}, log, confirms);
    await grantRoles(hre, vault, parameters.roles.PaymentVault ?? {}, log, confirms);
    await grantRoles(hre, configRegistry, parameters.roles.ConfigRegistry ?? {}, log, confirms);
  }

  // Compounding needs StakeManager to know its rewards manager; only its admin can say so.
  const adminRole = await staking.getFunction("DEFAULT_ADMIN_ROLE")();
  if (!timelock && (await staking.getFunction("rewardsManager")()) !== deployed.RewardsManager) {
    if (await staking.getFunction("hasRole")(adminRole, deployer.address)) {
      await (await staking.connect(deployer).getFunction("setRewardsManager")(deployed.RewardsManager)).wait(confirms);
      log(`StakeManager now compounds through ${deployed.RewardsManager}`);
    } else {
      log(`NOTE: StakeManager's admin must call setRewardsManager(${deployed.RewardsManager})`);
    }
  }
  await topUp(deployed.RewardsManager!, parameters.rewards?.fund ?? 0n, "the reward pool");

  const dir = options.addressesDir ?? ADDRESSES_DIR;
  const file = addressBookPath(dir, chainId);
  const previous = existsSync(file) ? readAddressBook(file) : undefined;
  const book: AddressBook = { chainId, contracts: {} };
  for (const [name, address] of Object.entries(deployed) as Array<[ContractName, string]>) {
    const known = previous?.contracts[name];
    const blockNumber = await deploymentBlock(
      hre,
      address,
      startBlock,
      known && known.address.toLowerCase() === address.toLowerCase() ? known.blockNumber : undefined,
    );
    book.contracts[name] = { address, blockNumber };
  }
  writeAddressBook(file, book);
  log(`address book  ${file}`);
  return { book, file };
}

async function grantRoles(
  hre: HardhatRuntimeEnvironment,
  contract: Contract,
  roles: Record<string, string[]>,
  log: (line: string) => void,
  confirms: number,
): Promise<void> {
  const [deployer] = await hre.ethers.getSigners();
  for (const [roleName, accounts] of Object.entries(roles)) {
    const role: string = await contract.getFunction(roleName)();
    for (const account of accounts) {
      if (await contract.getFunction("hasRole")(role, account)) continue;
      await (await contract.connect(deployer).getFunction("grantRole")(role, account)).wait(confirms);
      log(`granted ${roleName} to ${account}`);
    }
  }
}

/** The genesis and committee an earlier run of this Ignition deployment gave RewardsManager, if any. */
export function recordedRewardsArguments(deploymentDir: string): { genesis: bigint; committee: string[] } | undefined {
  const journal = join(deploymentDir, "journal.jsonl");
  if (!existsSync(journal)) return undefined;
  for (const line of readFileSync(journal, "utf8").split("\n")) {
    if (!line.includes('"RewardsManager#RewardsManager"') || !line.includes("DEPLOYMENT_EXECUTION_STATE_INITIALIZE"))
      continue;
    const args = (JSON.parse(line) as { constructorArgs: unknown[] }).constructorArgs;
    return { genesis: BigInt((args[3] as { value: string }).value), committee: args[5] as string[] };
  }
  return undefined;
}

/**
 * The first block in which `address` has code: a safe start for reading its logs. A contract deployed after
 * `after` is found without touching older state (which a non-archive node may have pruned).
 */
/**
 * The block in which `address` got its code. A block number `known` from an earlier address book is kept if the
 * chain confirms it (code there, none before): a local chain redeploys to the same addresses in other blocks, and
 * a daemon that starts reading logs one block late never sees the constructor's events (the type minimums).
 */
export async function deploymentBlock(
  hre: HardhatRuntimeEnvironment,
  address: string,
  after = 0,
  known?: number,
): Promise<number> {
  const provider = hre.ethers.provider;
  if (known !== undefined) {
    try {
      const here = await provider.getCode(address, known);
      const before = known === 0 ? "0x" : await provider.getCode(address, known - 1);
      if (here !== "0x" && before === "0x") return known;
    } catch {
      // A pruned node cannot answer for old blocks: a real network's committed address book is the record.
      return known;
    }
  }
  let high = await provider.getBlockNumber();
  if ((await provider.getCode(address, high)) === "0x") throw new Error(`no contract at ${address}`);
  let low = after > 0 && (await provider.getCode(address, after)) === "0x" ? after + 1 : 0;
  while (low < high) {
    const mid = Math.floor((low + high) / 2);
    if ((await provider.getCode(address, mid)) === "0x") low = mid + 1;
    else high = mid;
  }
  return low;
}
