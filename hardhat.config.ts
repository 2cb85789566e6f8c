import { HardhatUserConfig, subtask } from "hardhat/config";
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } from "hardhat/builtin-tasks/task-names";
import "@nomicfoundation/hardhat-toolbox";
import solcPkg from "solc/package.json";

import "./scripts/tasks";
import { hideStackTracesOfExpectedErrors } from "./scripts/tasks/cliErrors";
import { KeystoreError, keysFromKeystores } from "./offchain/common/keystore";

// A failing task (or a bad argument, HH306 and the like) prints its one-line message and exits 1, without the stack
// trace Hardhat's CLI adds on any machine it takes for a CI server (every Linux without a display): see
// scripts/tasks/cliErrors.ts. `--show-stack-traces` shows the trace.
hideStackTracesOfExpectedErrors();

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

// Any EVM network: `--network rpc` with EDGE_RPC_URL, and keys in EDGE_PRIVATE_KEYS (comma-separated) and/or
// JSON keystore files in EDGE_KEYSTORE (comma-separated; password in EDGE_KEYSTORE_PASSWORD or
// EDGE_KEYSTORE_PASSWORD_FILE). The first key sends transactions.
function rpcKeys(): string[] {
  const keys = (process.env.EDGE_PRIVATE_KEYS ?? "")
    .split(",")
    .map((key) => key.trim())
    .filter((key) => key.length > 0);
  try {
    return [...keys, ...keysFromKeystores(process.env, "EDGE_KEYSTORE")];
  } catch (error) {
    if (!(error instanceof KeystoreError)) throw error;
    console.error(`Error: ${error.message}`);
    process.exit(2);
  }
}

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
      accounts: rpcKeys(),
    },
  },
  // Ignition modules and journals live with the other deploy scripts.
  paths: { ignition: "scripts/deploy" },
  typechain: { outDir: "typechain", target: "ethers-v6" },
  gasReporter: { enabled: process.env.REPORT_GAS === "true", offline: true },
  mocha: { timeout: 120_000 },
};

export default config;
