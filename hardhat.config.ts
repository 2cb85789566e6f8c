import { HardhatUserConfig, subtask } from "hardhat/config";
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } from "hardhat/builtin-tasks/task-names";
import "@nomicfoundation/hardhat-toolbox";
import solcPkg from "solc/package.json";

import "./scripts/tasks";

// Compile with the solc-js build pinned in package.json: Hardhat would otherwise download
// a compiler, which fails on machines without internet (CI included).
subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD).setAction(async ({ solcVersion }, _hre, runSuper) => {
  if (solcVersion !== solcPkg.version) return runSuper();
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: solcVersion,
    longVersion: solcVersion,
  };
});

// Any EVM network: `--network rpc` with EDGE_RPC_URL and EDGE_PRIVATE_KEYS (comma-separated).
const rpcKeys = (process.env.EDGE_PRIVATE_KEYS ?? "")
  .split(",")
  .map((key) => key.trim())
  .filter((key) => key.length > 0);

const config: HardhatUserConfig = {
  solidity: {
    version: solcPkg.version,
    settings: {
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 10_000 },
    },
  },
  networks: {
    hardhat: {
      // Tests travel in time; keep the chain id fixed so signatures in fixtures are stable.
      chainId: 31337,
    },
    rpc: {
      url: process.env.EDGE_RPC_URL ?? "http://127.0.0.1:8545",
      accounts: rpcKeys,
    },
  },
  // Ignition modules and journals live with the other deploy scripts.
  paths: { ignition: "scripts/deploy" },
  typechain: { outDir: "typechain", target: "ethers-v6" },
  gasReporter: { enabled: process.env.REPORT_GAS === "true", offline: true },
  mocha: { timeout: 120_000 },
};

export default config;
