/**
 * The tests' typed deployment fixtures (use them with `loadFixture`): defined in scripts/lib/fixtures.ts, which
 * the gas benchmark shares; re-exported here so every test imports its fixtures from test/shared/.
 */
export * from "../../scripts/lib/fixtures";
