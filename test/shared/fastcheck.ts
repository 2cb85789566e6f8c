/**
 * Property tests run a fixed seed in CI so failures reproduce. Locally, run them longer or with another seed:
 *   FC_SEED=123 FC_RUNS_SCALE=20 npx hardhat test test/contracts/staking/StakeManager.invariants.test.ts
 */
export const FC_SEED = Number(process.env.FC_SEED ?? 20261122);

const SCALE = Number(process.env.FC_RUNS_SCALE ?? 1);

/** `runs` scaled by FC_RUNS_SCALE (at least 1). */
export function fcRuns(runs: number): number {
  return Math.max(1, Math.round(runs * SCALE));
}
