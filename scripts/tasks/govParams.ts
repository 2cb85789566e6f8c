/**
 * The protocol's parameters as gov:params shows and changes them: one row per parameter (a new parameter is one
 * line in PARAMETERS). A row names the view that reads it (`getter`, with leading `key` arguments, and the `field`
 * of a struct or of several return values) and the setter that changes it. A setter that takes a whole struct or
 * several values (setParams, setYieldParams, setSlashLimit, setCommittee) gets the current values with the one
 * field replaced, so changing one field never changes another.
 */
import type { Contract, Result } from "ethers";
import { formatUnits, getAddress, isAddress, parseUnits } from "ethers";

import { fail } from "./lib";

export type GovernedName = "StakeManager" | "RewardsManager" | "PaymentVault" | "TimelockController" | "ConfigRegistry";
export type Unit = "tokens" | "seconds" | "bps" | "address" | "addresses" | "count" | "timestamp";

export interface Parameter {
  name: string;
  contract: GovernedName;
  getter: string;
  /** Leading arguments of both getter and setter (the stake type). */
  key?: unknown[];
  /** The field of the getter's struct or named return values; none: the getter returns the value. */
  field?: string;
  /** None: fixed at deployment. */
  setter?: string;
  /** The role the setter needs (PARAMETER_ADMIN_ROLE unless given; "timelock": only the timelock itself). */
  role?: string;
  unit: Unit;
}

const TYPES = ["host", "gateway", "stargate"] as const;
const perType = (field: string, setter: string, unit: Unit): Parameter[] =>
  TYPES.map((t, i) => ({ name: `staking.${field}.${t}`, contract: "StakeManager", getter: "typeParams", key: [i], field, setter, unit })); // prettier-ignore
const yieldParam = (field: string): Parameter =>
  ({ name: `rewards.${field}`, contract: "RewardsManager", getter: "yieldParams", field, setter: "setYieldParams", unit: "bps" }); // prettier-ignore
const vaultParam = (field: string, unit: Unit): Parameter =>
  ({ name: `vault.${field}`, contract: "PaymentVault", getter: "params", field, setter: "setParams", unit }); // prettier-ignore

// prettier-ignore
export const PARAMETERS: Parameter[] = [
  ...perType("minimumStake", "setMinimumStake", "tokens"),
  ...perType("unbondingPeriod", "setUnbondingPeriod", "seconds"),
  { name: "staking.expressReleaseFeeBps", contract: "StakeManager", getter: "expressReleaseFeeBps", setter: "setExpressReleaseFee", unit: "bps" },
  { name: "staking.slashWindow", contract: "StakeManager", getter: "slashLimit", field: "window", setter: "setSlashLimit", unit: "seconds" },
  { name: "staking.slashCapacity", contract: "StakeManager", getter: "slashLimit", field: "capacity", setter: "setSlashLimit", unit: "tokens" },
  { name: "staking.treasury", contract: "StakeManager", getter: "treasury", setter: "setTreasury", unit: "address" },
  { name: "staking.rewardsManager", contract: "StakeManager", getter: "rewardsManager", setter: "setRewardsManager", role: "DEFAULT_ADMIN_ROLE", unit: "address" },
  { name: "staking.minUnbondingPeriod", contract: "StakeManager", getter: "minUnbondingPeriod", unit: "seconds" },
  { name: "staking.adminDelay", contract: "StakeManager", getter: "defaultAdminDelay", unit: "seconds" },
  yieldParam("hostBaseAprBps"),
  yieldParam("gatewayBaseAprBps"),
  yieldParam("stargateBaseAprBps"),
  yieldParam("tenureStepBps"),
  yieldParam("maxTenureBonusBps"),
  { name: "rewards.committee", contract: "RewardsManager", getter: "committee", field: "members", setter: "setCommittee", role: "ORACLE_ADMIN_ROLE", unit: "addresses" },
  { name: "rewards.threshold", contract: "RewardsManager", getter: "committee", field: "threshold", setter: "setCommittee", role: "ORACLE_ADMIN_ROLE", unit: "count" },
  { name: "rewards.genesis", contract: "RewardsManager", getter: "genesis", unit: "timestamp" },
  { name: "rewards.epochDuration", contract: "RewardsManager", getter: "epochDuration", unit: "seconds" },
  { name: "rewards.adminDelay", contract: "RewardsManager", getter: "defaultAdminDelay", unit: "seconds" },
  vaultParam("referrerShareBps", "bps"),
  vaultParam("rewardPoolShareBps", "bps"),
  vaultParam("withdrawalNotice", "seconds"),
  vaultParam("freeBuffer", "tokens"),
  vaultParam("withdrawalWindow", "seconds"),
  { name: "vault.billingWindow", contract: "PaymentVault", getter: "billingLimit", field: "window", setter: "setBillingLimit", unit: "seconds" },
  { name: "vault.billingCapacity", contract: "PaymentVault", getter: "billingLimit", field: "capacity", setter: "setBillingLimit", unit: "tokens" },
  { name: "vault.treasury", contract: "PaymentVault", getter: "treasury", setter: "setTreasury", unit: "address" },
  { name: "vault.rewardPool", contract: "PaymentVault", getter: "rewardPool", setter: "setRewardPool", unit: "address" },
  { name: "vault.adminDelay", contract: "PaymentVault", getter: "defaultAdminDelay", unit: "seconds" },
  { name: "timelock.minDelay", contract: "TimelockController", getter: "getMinDelay", setter: "updateDelay", role: "timelock", unit: "seconds" },
];

export function findParameter(name: string): Parameter {
  const row = PARAMETERS.find((p) => p.name === name);
  if (!row) fail(`unknown parameter "${name}"; known: ${PARAMETERS.map((p) => p.name).join(", ")}`);
  return row;
}

/** A Result (ethers' return values) as plain values: arrays stay arrays, structs become objects. */
export function plain(value: unknown): unknown {
  if (Array.isArray(value) && typeof (value as Result).toObject === "function") {
    const result = value as Result;
    let object: Record<string, unknown> | undefined;
    try {
      object = result.toObject();
    } catch {
      object = undefined; // unnamed values: a plain array
    }
    const keys = Object.keys(object ?? {});
    if (keys.length === result.length && keys.length > 0 && keys.every((k) => k !== "_" && !/^\d+$/.test(k))) {
      return Object.fromEntries(Object.entries(object!).map(([k, v]) => [k, plain(v)]));
    }
    return Array.from(result, plain);
  }
  return value;
}

/** The raw current value of a parameter (a bigint, an address, or a list of addresses). */
export async function readParameter(contract: Contract, row: Parameter): Promise<unknown> {
  const current = plain(await contract.getFunction(row.getter)(...(row.key ?? [])));
  return row.field ? (current as Record<string, unknown>)[row.field] : current;
}

/** The setter's arguments that change `row` to `value` and leave everything else as it is now. */
export async function setterArguments(contract: Contract, row: Parameter, value: unknown): Promise<unknown[]> {
  if (!row.setter) fail(`${row.name} is fixed at deployment; no setter changes it`);
  const key = row.key ?? [];
  if (!row.field) return [...key, value];
  const current = plain(await contract.getFunction(row.getter)(...key)) as Record<string, unknown>;
  const inputs = contract.interface.getFunction(row.setter)!.inputs.slice(key.length);
  if (inputs.length === 1 && inputs[0].baseType === "tuple") {
    const struct = Object.fromEntries(inputs[0].components!.map((c) => [c.name, current[c.name]]));
    return [...key, { ...struct, [row.field]: value }];
  }
  return [...key, ...inputs.map((input) => (input.name === row.field ? value : current[input.name]))];
}

const DURATION = /^(\d+)([smhd]?)$/;
const SECONDS: Record<string, bigint> = { "": 1n, s: 1n, m: 60n, h: 3600n, d: 86_400n };

/** Parses a value given on the command line in the unit of `row`. */
export function parseValue(row: Parameter, text: string): unknown {
  const what = `--value "${text}" for ${row.name}`;
  switch (row.unit) {
    case "tokens":
      if (!/^\d+(\.\d{1,18})?$/.test(text)) fail(`${what} is not a token amount (like 1000 or 0.5)`);
      return parseUnits(text, 18);
    case "seconds": {
      const match = DURATION.exec(text);
      if (!match) fail(`${what} is not a duration (seconds, or a number with s, m, h or d: 90, 5m, 7d)`);
      return BigInt(match[1]) * SECONDS[match[2]];
    }
    case "bps":
      if (!/^\d+$/.test(text) || BigInt(text) > 10_000n) fail(`${what} is not basis points (0 to 10000)`);
      return BigInt(text);
    case "count":
      if (!/^\d+$/.test(text) || BigInt(text) === 0n) fail(`${what} is not a positive integer`);
      return BigInt(text);
    case "address":
      if (!isAddress(text)) fail(`${what} is not an address`);
      return getAddress(text);
    case "addresses": {
      const list = text.split(",").map((a) => a.trim());
      const bad = list.find((a) => !isAddress(a));
      if (bad !== undefined) fail(`${what}: "${bad}" is not an address (give a comma-separated list)`);
      const addresses = list.map((a) => getAddress(a));
      if (new Set(addresses).size !== addresses.length) fail(`${what} names an address twice`);
      return addresses;
    }
    default:
      return fail(`${row.name} cannot be set`);
  }
}

export function formatValue(unit: Unit, value: unknown): string {
  switch (unit) {
    case "tokens":
      return `${formatUnits(value as bigint, 18)} EDGE`;
    case "seconds": {
      const s = Number(value);
      const readable = s % 86_400 === 0 && s > 0 ? `${s / 86_400} d` : s % 3600 === 0 && s > 0 ? `${s / 3600} h` : "";
      return readable ? `${s} s (${readable})` : `${s} s`;
    }
    case "bps":
      return `${value} bps (${Number(value) / 100}%)`;
    case "addresses":
      return (value as string[]).join(", ");
    case "timestamp":
      return `${value} (${new Date(Number(value) * 1000).toISOString()})`;
    default:
      return String(value);
  }
}

export function sameValue(a: unknown, b: unknown): boolean {
  return (
    JSON.stringify(a, (_k, v) => (typeof v === "bigint" ? v.toString() : v)).toLowerCase() ===
    JSON.stringify(b, (_k, v) => (typeof v === "bigint" ? v.toString() : v)).toLowerCase()
  );
}
