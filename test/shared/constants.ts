/** The protocol's constants and enums for tests: defined in scripts/lib/constants.ts, shared with the benchmarks. */
export * from "../../scripts/lib/constants";
