/**
 * Per-network deployment parameters: scripts/deploy/parameters/<network>.json (or a file given explicitly).
 *
 *   {
 *     "ignition": { "$global": { "treasury": "0x…" }, "StakeManager": { "adminDelay": "172800n", … } },
 *     "roles": { "StakeManager": { "SLASHER_ROLE": ["0x…"], "PAUSER_ROLE": ["0x…"] } },
 *     "migration": { "reserve": "100000000000000000000000000n" },
 *     "rewards": { "fund": "1000000000000000000000000n" },
 *     "timelock": { "minDelay": "172800n", "proposers": ["0x…"], "executors": ["0x…"] }
 *   }
 *
 * "ignition" goes to Hardhat Ignition as module parameters (bigints as "123n", as Ignition expects); "roles" are
 * granted after deployment when the deployer is the admin; "migration.reserve" is transferred from the deployer
 * to TokenMigration when that module is deployed, and "rewards.fund" to the reward pool. "timelock" (optional)
 * deploys OpenZeppelin's TimelockController as the admin and parameter-role holder of StakeManager, RewardsManager
 * and PaymentVault, and the admin of ConfigRegistry (scripts/deploy/governance.ts, docs/decisions.md D37, D52);
 * without it the deployer stays admin. "ignition.ConfigRegistry.publisher" (optional) gets ConfigRegistry's
 * PUBLISHER_ROLE and DELTA_SIGNER_ROLE at deployment; "roles.ConfigRegistry" grants them to more accounts.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { DeploymentParameters } from "@nomicfoundation/ignition-core";

export interface NetworkParameters {
  ignition: DeploymentParameters;
  roles: Record<string, Record<string, string[]>>;
  migration?: { reserve?: bigint };
  rewards?: { fund?: bigint };
  timelock?: TimelockParameters;
}

export interface TimelockParameters {
  /** Seconds between proposing a change and executing it. */
  minDelay: bigint;
  /** Who may schedule (and cancel) operations. */
  proposers: string[];
  /** Who may execute ready operations (default: the proposers; the zero address: anyone). */
  executors: string[];
}

/** Roles the timelock holds alone when there is one: granting them to an account would bypass the delay. */
export const TIMELOCKED_ROLES = ["PARAMETER_ADMIN_ROLE", "ORACLE_ADMIN_ROLE"] as const;
const TIMELOCKED_CONTRACTS = ["StakeManager", "RewardsManager", "PaymentVault", "ConfigRegistry"] as const;
const MAX_TIMELOCK_DELAY = 30n * 24n * 3600n;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

export const PARAMETERS_DIR = join(__dirname, "parameters");

function bigintReviver(_key: string, value: unknown): unknown {
  return typeof value === "string" && /^\d+n$/.test(value) ? BigInt(value.slice(0, -1)) : value;
}

/** Reads the parameter file of `network` (none is fine: module defaults apply) or an explicit `file`. */
export function loadNetworkParameters(network: string, file?: string): NetworkParameters {
  const path = file ?? join(PARAMETERS_DIR, `${network}.json`);
  if (!existsSync(path)) {
    if (file) throw new Error(`parameter file ${file} does not exist`);
    return { ignition: {}, roles: {} };
  }
  let raw: Partial<NetworkParameters>;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"), bigintReviver);
  } catch (error) {
    throw new Error(`parameter file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  const parameters: NetworkParameters = {
    ignition: raw.ignition ?? {},
    roles: raw.roles ?? {},
    migration: raw.migration,
    rewards: raw.rewards,
  };
  if (raw.timelock !== undefined) parameters.timelock = parseTimelock(raw.timelock, path);
  checkTimelockedRoles(parameters, path);
  return parameters;
}

/** Validates the "timelock" section: a delay of 0 to 30 days, at least one proposer, addresses only. */
export function parseTimelock(raw: unknown, source = "parameters"): TimelockParameters {
  const section = raw as Partial<Record<keyof TimelockParameters, unknown>>;
  if (typeof section !== "object" || section === null) throw new Error(`${source}: timelock must be an object`);
  const delay = section.minDelay;
  if (typeof delay !== "bigint" || delay > MAX_TIMELOCK_DELAY) {
    throw new Error(`${source}: timelock.minDelay must be seconds as a bigint string ("60n"), at most 30 days`);
  }
  const addresses = (value: unknown, what: string): string[] => {
    if (!Array.isArray(value) || !value.every((a) => typeof a === "string" && ADDRESS.test(a))) {
      throw new Error(`${source}: timelock.${what} must be a list of addresses`);
    }
    return value as string[];
  };
  const proposers = addresses(section.proposers, "proposers");
  if (proposers.length === 0) throw new Error(`${source}: timelock.proposers must name at least one proposer`);
  const executors = section.executors === undefined ? proposers : addresses(section.executors, "executors");
  if (executors.length === 0)
    throw new Error(`${source}: timelock.executors must not be empty (omit it for the proposers)`);
  return { minDelay: delay, proposers, executors };
}

/** With a timelock, the parameter and oracle admin roles and the contracts' admin are the timelock's alone. */
export function checkTimelockedRoles(parameters: NetworkParameters, source = "parameters"): void {
  if (!parameters.timelock) return;
  for (const contract of TIMELOCKED_CONTRACTS) {
    for (const role of TIMELOCKED_ROLES) {
      if ((parameters.roles[contract]?.[role] ?? []).length > 0) {
        throw new Error(
          `${source}: roles.${contract}.${role} would bypass the timelock, which holds that role; remove the accounts`,
        );
      }
    }
    if ((parameters.ignition[contract] as { admin?: unknown } | undefined)?.admin !== undefined) {
      throw new Error(`${source}: ignition.${contract}.admin is the timelock when there is one; remove it`);
    }
  }
}
