/**
 * The chain and the contracts: a Hardhat JSON-RPC node that mines a block every second, and every contract deployed
 * with the project's Ignition modules (deploy:protocol) and devnet parameters: 60 s unbonding and withdrawal notice,
 * `--epoch-seconds` epochs from a genesis well after the setup (GENESIS_DELAY: the chain is moved forward to just
 * before it once every process runs, `advanceTo`), the oracle's key as a committee of one, the biller's role,
 * and a timelock with a 60 s delay as the contracts' admin (the deployer proposes through it: gov:* tasks).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Address, type Hex, type PublicClient, createPublicClient, createWalletClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { readAddressBook } from "../../offchain/common/addressBook";
import {
  type Accounts,
  CHAIN_ID,
  type DevAccount,
  DevnetError,
  ROOT,
  type StepLog,
  TOKEN,
  devKey,
  devnetChain,
  waitFor,
} from "./common";
import { type Processes, bin, freePort } from "./processes";

export type ContractName = "EdgeToken" | "StakeManager" | "RewardsManager" | "PaymentVault" | "ConfigRegistry";

/**
 * Chain seconds from the setup to genesis: more than starting a dozen ts-node processes takes on a busy 2-core
 * machine (over 60 s seen), so every process runs before epoch 0 starts; `advanceTo` skips the rest of the wait.
 */
const GENESIS_DELAY = 900;

const walletClient = (rpc: string, account: DevAccount) =>
  createWalletClient({ account, chain: devnetChain, transport: http(rpc, { retryCount: 0 }) });
export type Wallet = ReturnType<typeof walletClient>;

export interface Chain {
  rpc: string;
  client: PublicClient;
  /** Chain time, which closes epochs: blocks mined back to back during the setup move it ahead of the wall clock. */
  now(): Promise<number>;
  /** Chain time when the deployment started. */
  setupTime: number;
  /** When epoch 0 starts: once every stake exists and every process runs, so each stake is active through it. */
  genesis: number;
  /** The address book deploy:protocol wrote, copied into the run directory. */
  bookFile: string;
  address(name: ContractName): Address;
  wallet(account: DevAccount): Wallet;
  /** Moves chain time forward to `timestamp` (evm_increaseTime, then a block); nothing when it is past already. */
  advanceTo(timestamp: number): Promise<void>;
  /** Waits for the transaction's receipt; a revert fails the devnet. */
  send(hash: Promise<Hex>): ReturnType<PublicClient["waitForTransactionReceipt"]>;
}

/** Compiles, starts the chain (`chain.log`), deploys (`deploy.log`) and returns the chain and its contracts. */
export async function startChain(
  run: { dir: string; runId: string; epochSeconds: number },
  procs: Processes,
  accounts: Accounts,
  log: StepLog,
): Promise<Chain> {
  const compile = spawnSync(bin("hardhat"), ["compile", "--quiet"], { cwd: ROOT, encoding: "utf8" });
  if (compile.status !== 0) throw new DevnetError(`hardhat compile failed:\n${compile.stdout}${compile.stderr}`);
  const chainPort = await freePort();
  const rpc = `http://127.0.0.1:${chainPort}`;
  procs.start("chain", bin("hardhat"), ["node", "--hostname", "127.0.0.1", "--port", String(chainPort)]);
  const client = createPublicClient({ chain: devnetChain, transport: http(rpc, { retryCount: 0 }) }) as PublicClient;
  await waitFor("the chain", async () => (await client.getChainId()) === CHAIN_ID, 60_000);
  // Blocks every second, so chain time (which closes epochs) moves without transactions.
  await client.request({ method: "evm_setIntervalMining" as never, params: [1000] as never });
  log.step(`chain at ${rpc}`);

  const now = async () => Number((await client.getBlock({ blockTag: "latest" })).timestamp);
  const setupTime = await now();
  const genesis = setupTime + GENESIS_DELAY;
  const bookFile = deploy(rpc, run, deployParameters(accounts, run.epochSeconds, genesis));
  const book = readAddressBook(bookFile);
  log.step(`contracts deployed (address book ${bookFile})`);
  return {
    rpc,
    client,
    now,
    setupTime,
    genesis,
    bookFile,
    address: (name) => book.contracts[name]!.address as Address,
    wallet: (account) => walletClient(rpc, account),
    advanceTo: async (timestamp) => {
      const ahead = timestamp - (await now());
      if (ahead <= 0) return;
      await client.request({ method: "evm_increaseTime" as never, params: [ahead] as never });
      await client.request({ method: "evm_mine" as never, params: [] as never });
    },
    send: async (hash) => {
      const receipt = await client.waitForTransactionReceipt({ hash: await hash, timeout: 30_000 });
      if (receipt.status !== "success") throw new DevnetError(`transaction ${receipt.transactionHash} reverted`);
      return receipt;
    },
  };
}

/** deploy:protocol's parameters file: the protocol's minimums, short delays, and the devnet's epochs and roles. */
function deployParameters(accounts: Accounts, epochSeconds: number, genesis: number) {
  return {
    ignition: {
      StakeManager: {
        adminDelay: "0n",
        typeParams: [
          { minimumStake: `${100n * TOKEN}n`, unbondingPeriod: "60n" },
          { minimumStake: `${25_000n * TOKEN}n`, unbondingPeriod: "60n" },
          { minimumStake: `${250_000n * TOKEN}n`, unbondingPeriod: "60n" },
        ],
      },
      RewardsManager: {
        adminDelay: "0n",
        epochDuration: `${epochSeconds}n`,
        genesis: `${genesis}n`,
        committee: [privateKeyToAccount(accounts.oracleKey).address],
        threshold: "1n",
      },
      PaymentVault: {
        adminDelay: "0n",
        params: {
          referrerShareBps: "1000n",
          rewardPoolShareBps: "2000n",
          withdrawalNotice: "60n",
          freeBuffer: `${TOKEN}n`,
          withdrawalWindow: "3600n",
        },
        // The floor of the notice is billing's grace period: the devnet's billing runs with 3 s.
        minWithdrawalNotice: "3n",
      },
      // The stargate's configuration key anchors the devnet's configuration and signs its deltas (D52): an account
      // of its own, so its transactions never race the deployer's.
      ConfigRegistry: { adminDelay: "0n", publisher: accounts.config.address },
    },
    roles: { PaymentVault: { BILLER_ROLE: [privateKeyToAccount(accounts.billerKey).address] } },
    rewards: { fund: `${1_000_000n * TOKEN}n` },
    // The admin and parameter roles behind a timelock, as on a real network, with a delay short enough to try
    // gov:params on the devnet; the deployer proposes and executes (D37). The setup above needs nothing after it.
    timelock: { minDelay: "60n", proposers: [accounts.deployer.address], executors: [accounts.deployer.address] },
  };
}

/** Runs deploy:protocol against the chain; returns the address book, copied into the run directory. */
function deploy(rpc: string, run: { dir: string; runId: string }, parameters: object): string {
  const parametersFile = join(run.dir, "parameters.json");
  writeFileSync(parametersFile, JSON.stringify(parameters, null, 2));
  // deploy:protocol reuses a previous book's deployment blocks when its check passes or cannot be made (an RPC
  // error). Twice at load 9 a book left by an earlier chain on 31337 kept StakeManager's block after the real one,
  // and every node's view missed the minimums ("no stargate minimum in the chain view", D67). This chain is new:
  // its blocks are searched afresh.
  rmSync(join(ROOT, "scripts", "deploy", "addresses", `${CHAIN_ID}.json`), { force: true });
  const deployment = spawnSync(
    bin("hardhat"),
    ["deploy:protocol", "--network", "rpc", "--parameters", parametersFile, "--deployment-id", `devnet-${run.runId}`],
    { cwd: ROOT, env: { ...process.env, EDGE_RPC_URL: rpc, EDGE_PRIVATE_KEYS: devKey(0) }, encoding: "utf8" },
  );
  writeFileSync(join(run.dir, "deploy.log"), `${deployment.stdout}${deployment.stderr}`);
  if (deployment.status !== 0) throw new DevnetError(`deploy:protocol failed; see ${join(run.dir, "deploy.log")}`);
  // The Ignition journal only serves to resume an interrupted deployment: this chain dies with the run.
  rmSync(join(ROOT, "scripts", "deploy", "deployments", `devnet-${run.runId}`), { recursive: true, force: true });
  const bookFile = join(run.dir, "addresses.json");
  writeFileSync(bookFile, readFileSync(join(ROOT, "scripts", "deploy", "addresses", `${CHAIN_ID}.json`)));
  return bookFile;
}
