/**
 * StakeManager's floor of unbonding periods (`minUnbondingPeriod`, fixed at deployment: D36, finding L-2). Off the
 * development chain a deployment must promise at least a day; Hardhat's chain and the devnet (both chain id 31337)
 * keep their short periods (the devnet unbonds in 60 s), with a floor of 1 s by default there.
 */
import type { ModuleParameters } from "@nomicfoundation/ignition-core";

export const DEVELOPMENT_CHAIN_ID = 31337;
/** The lowest floor a deployment off the development chain may choose. */
export const PRODUCTION_UNBONDING_FLOOR = 24n * 3600n;
/** The floor on the development chain when the parameters name none. */
export const DEVELOPMENT_UNBONDING_FLOOR = 1n;

function seconds(value: unknown, what: string): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === "string" && /^\d+n?$/.test(value)) return BigInt(value.replace(/n$/, ""));
  throw new Error(`StakeManager.${what} must be a whole number of seconds ("86400n"), not ${String(value)}`);
}

/**
 * The StakeManager module parameters with `minUnbondingPeriod` checked (and filled in on the development chain),
 * or an error naming the value refused: a floor below a day off the development chain, or a type's unbonding period
 * below the floor (the constructor would revert with UnbondingPeriodOutOfBounds).
 */
export function withUnbondingFloor(chainId: number, stakeManager: ModuleParameters = {}): ModuleParameters {
  const development = chainId === DEVELOPMENT_CHAIN_ID;
  const given = stakeManager.minUnbondingPeriod;
  const floor =
    given === undefined
      ? development
        ? DEVELOPMENT_UNBONDING_FLOOR
        : PRODUCTION_UNBONDING_FLOOR
      : seconds(given, "minUnbondingPeriod");
  if (!development && floor < PRODUCTION_UNBONDING_FLOOR) {
    throw new Error(
      `StakeManager.minUnbondingPeriod ${floor} s is below 1 day (${PRODUCTION_UNBONDING_FLOOR} s): only the development chain (${DEVELOPMENT_CHAIN_ID}) may unbond faster`,
    );
  }
  const typeParams = stakeManager.typeParams;
  if (Array.isArray(typeParams)) {
    for (const [index, params] of typeParams.entries()) {
      const period = seconds((params as { unbondingPeriod?: unknown }).unbondingPeriod, "typeParams.unbondingPeriod");
      if (period < floor) {
        throw new Error(
          `StakeManager.typeParams[${index}].unbondingPeriod ${period} s is below the floor of ${floor} s (minUnbondingPeriod)`,
        );
      }
    }
  }
  return { ...stakeManager, minUnbondingPeriod: floor };
}
