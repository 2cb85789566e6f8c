/**
 * The project's import rules, checked by `npm run lint` (depcruise; test/project/dependencies.test.ts shows it fails
 * on a cycle). Type-only imports count: a cycle through types is still a cycle in the design.
 * @type {import("dependency-cruiser").IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      comment: "No import cycles: modules form layers, and a module can be understood and tested from those below.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "scripts-stay-scripts",
      comment:
        "scripts/ (tasks, deploy, benchmarks, devnet) is a leaf: only scripts/, the tests of scripts/ and " +
        "hardhat.config.ts (which loads scripts/tasks) import it. Shared code belongs in offchain/common/.",
      severity: "error",
      from: { pathNot: ["^scripts/", "^test/", "^hardhat[.]config[.]ts$"] },
      to: { path: "^scripts/" },
    },
    {
      name: "tests-stay-tests",
      comment: "Nothing outside test/ imports test/: fixtures and helpers other code needs belong outside test/.",
      severity: "error",
      from: { pathNot: "^test/" },
      to: { path: "^test/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist|artifacts|cache|coverage)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
