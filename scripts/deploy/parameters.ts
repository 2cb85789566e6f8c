/**
 * Per-network deployment parameters: scripts/deploy/parameters/<network>.json (or a file given explicitly).
 *
 *   {
 *     "ignition": { "$global": { "treasury": "0x…" }, "StakeManager": { "adminDelay": "172800n", … } },
 *     "roles": { "StakeManager": { "SLASHER_ROLE": ["0x…"], "PAUSER_ROLE": ["0x…"] } },
 *     "migration": { "reserve": "100000000000000000000000000n" },
 *     "rewards": { "fund": "1000000000000000000000000n" }
 *   }
 *
 * "ignition" goes to Hardhat Ignition as module parameters (bigints as "123n", as Ignition expects); "roles" are
 * granted after deployment when the deployer is the admin; "migration.reserve" is transferred from the deployer
 * to TokenMigration when that module is deployed, and "rewards.fund" to the reward pool.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { DeploymentParameters } from "@nomicfoundation/ignition-core";

export interface NetworkParameters {
  ignition: DeploymentParameters;
  roles: Record<string, Record<string, string[]>>;
  migration?: { reserve?: bigint };
  rewards?: { fund?: bigint };
}

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
  return { ignition: raw.ignition ?? {}, roles: raw.roles ?? {}, migration: raw.migration, rewards: raw.rewards };
}
