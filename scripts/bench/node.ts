/**
 * edge-node benchmark: a separate `hardhat node` process with 10,000 stakes bound to devices, then
 *   - coldSync.stakes10k.seconds: a fresh chain view rebuilding the map over HTTP (median of 3);
 *   - memory.stakes10k.mb: heap the synced view holds, in a child process running compiled JavaScript (and that
 *     process's whole RSS);
 *   - eviction.p50.ms / eviction.p99.ms: from the block that starts a stake's unbonding to the running daemon
 *     (`npm run edge-node`, confirmations 0, 50 ms polling) reporting itself evicted, over 60 trials.
 * Writes bench/node.json and the table in docs/node.md.
 *
 *   npm run bench:node
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { artifacts } from "hardhat";
import { ethers } from "ethers";
import { http, createPublicClient, type Address } from "viem";

import { ChainView } from "../../offchain/common/chainView";
import { DEVICE_CONSENT_TYPES } from "../../offchain/common/consent";
import { writeBenchResults } from "./report";
import { waitUntil } from "./service";

const ROOT = join(__dirname, "..", "..");
const OUT = join(ROOT, "bench", "node.json");
const DOC = join(ROOT, "docs", "node.md");
const STAKES = 10_000;
const TRIALS = 60;
// Hardhat's well-known development account #0 (holds the supply on a fresh node).
const DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const deviceKey = (i: number) => ethers.zeroPadValue(ethers.toBeHex(0xbe0000000n + BigInt(i)), 32);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

type Results = Record<string, number>;

/** A `hardhat node` of its own with EdgeToken and StakeManager deployed by the development account #0. */
async function startChain(children: ChildProcess[]) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const chain = spawn("npx", ["hardhat", "node", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: ROOT,
    stdio: "ignore",
    detached: true, // its own process group: npx's child (the node) is stopped with it
  });
  children.push(chain);
  const provider = new ethers.JsonRpcProvider(url, 31337, {
    batchMaxCount: 1,
    cacheTimeout: -1,
    staticNetwork: true,
  });
  await waitUntil("the chain", async () => (await provider.getBlockNumber()) >= 0, 60_000, 100);
  const deployer = new ethers.NonceManager(new ethers.Wallet(DEPLOYER_KEY, provider));
  const deploy = async (name: string, args: unknown[]) => {
    const artifact = await artifacts.readArtifact(name);
    const contract = await new ethers.ContractFactory(artifact.abi, artifact.bytecode, deployer).deploy(...args);
    await contract.waitForDeployment();
    return contract;
  };
  const me = await deployer.getAddress();
  const token = await deploy("EdgeToken", [me, ethers.parseEther("1000000000")]);
  const staking = await deploy("StakeManager", [
    await token.getAddress(),
    me,
    0,
    me,
    [
      { minimumStake: ethers.parseEther("100"), unbondingPeriod: 3600 },
      { minimumStake: ethers.parseEther("25000"), unbondingPeriod: 3600 },
      { minimumStake: ethers.parseEther("250000"), unbondingPeriod: 3600 },
    ],
    2500,
    86400,
    ethers.parseEther("500000"),
    3600,
  ]);
  const stakingAddress = (await staking.getAddress()) as Address;
  const fromBlock = (await staking.deploymentTransaction()!.wait())!.blockNumber;
  await (await token.getFunction("approve")(stakingAddress, ethers.MaxUint256)).wait();
  return { url, provider, deployer, me, token, staking, stakingAddress, fromBlock };
}
type Chain = Awaited<ReturnType<typeof startChain>>;

/** 10,000 stakes, each bound to its own device: signed offline, sent 100 to a block. */
async function createStakes({ provider, staking, stakingAddress, me }: Chain): Promise<void> {
  console.log(`creating ${STAKES} stakes with devices...`);
  const started = Date.now();
  const domain = { name: "Edge StakeManager", version: "1", chainId: 31337, verifyingContract: stakingAddress };
  const deadline = BigInt(Math.floor(Date.now() / 1000)) + 86_400n;
  await provider.send("evm_setAutomine", [false]);
  for (let from = 0; from < STAKES; from += 100) {
    const sends = [];
    for (let i = from; i < Math.min(STAKES, from + 100); i++) {
      const device = new ethers.Wallet(deviceKey(i));
      const signature = await device.signTypedData(domain, DEVICE_CONSENT_TYPES, {
        device: device.address,
        owner: me,
        nonce: 0n,
        deadline,
      });
      sends.push(
        staking.getFunction("stakeAndAssign")(
          0,
          ethers.parseEther("100"),
          { device: device.address, deadline, signature },
          { gasLimit: 250_000 },
        ),
      );
    }
    await Promise.all(sends);
    await provider.send("evm_mine", []);
  }
  await provider.send("evm_setAutomine", [true]);
  const count = await staking.getFunction("stakeCount")();
  if (count !== BigInt(STAKES)) throw new Error(`created ${count} stakes, wanted ${STAKES}`);
  console.log(`created in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** Cold sync, three fresh views, median. */
async function measureColdSync({ url, stakingAddress, fromBlock }: Chain, results: Results): Promise<void> {
  const client = createPublicClient({ transport: http(url, { retryCount: 0, timeout: 60_000 }) });
  const times: number[] = [];
  for (let run = 0; run < 3; run++) {
    const view = new ChainView({ client, stakeManager: stakingAddress, fromBlock: BigInt(fromBlock) });
    const t0 = performance.now();
    await view.syncOnce();
    times.push((performance.now() - t0) / 1000);
    if (view.map.stakeCount !== STAKES || !view.map.isAdmitted(new ethers.Wallet(deviceKey(STAKES - 1)).address)) {
      throw new Error("the view does not match the chain");
    }
  }
  times.sort((a, b) => a - b);
  results["coldSync.stakes10k.seconds"] = Math.round(times[1] * 1000) / 1000;
  results["coldSync.stakes10k.events"] = STAKES * 2 + 5;
}

/**
 * Memory, in a process of its own running compiled JavaScript (as a production deployment would, rather than
 * ts-node, whose TypeScript compiler alone takes ~100 MB).
 */
async function measureMemory(dir: string, { url, stakingAddress, fromBlock }: Chain, results: Results) {
  const build = join(dir, "build");
  execFileSync(
    "npx",
    [
      "tsc",
      "--noCheck",
      "--outDir",
      build,
      "--rootDir",
      ROOT,
      "--module",
      "commonjs",
      "--moduleResolution",
      "node",
      "--target",
      "es2022",
      "--esModuleInterop",
      "--skipLibCheck",
      "--resolveJsonModule",
      join(__dirname, "viewMemory.ts"),
    ],
    { cwd: ROOT, stdio: "inherit" },
  );
  const memory = JSON.parse(
    execFileSync(
      process.execPath,
      ["--expose-gc", join(build, "scripts", "bench", "viewMemory.js"), url, stakingAddress, String(fromBlock)],
      { cwd: ROOT, encoding: "utf8", env: { ...process.env, NODE_PATH: join(ROOT, "node_modules") } },
    ).trim(),
  ) as { viewHeapMb: number; rssMb: number; heapUsedMb: number };
  results["memory.stakes10k.mb"] = memory.viewHeapMb;
  results["memory.process.rss.mb"] = memory.rssMb;
}

/** Eviction latency, against the real daemon. */
async function measureEviction(dir: string, chain: Chain, children: ChildProcess[], results: Results) {
  const { url, token, staking, stakingAddress, fromBlock, deployer } = chain;
  const book = join(dir, "book.json");
  writeFileSync(
    book,
    JSON.stringify({
      chainId: 31337,
      contracts: {
        EdgeToken: { address: await token.getAddress(), blockNumber: fromBlock },
        StakeManager: { address: stakingAddress, blockNumber: fromBlock },
      },
    }),
  );
  const nodePort = await freePort();
  const nodeUrl = `http://127.0.0.1:${nodePort}`;
  const daemon = spawn(
    "npm",
    [
      "run",
      "-s",
      "edge-node",
      "--",
      "--role",
      "host",
      "--rpc",
      url,
      "--addresses",
      book,
      "--port",
      String(nodePort),
      "--gateway",
      "http://127.0.0.1:9",
      "--confirmations",
      "0",
      "--poll-interval-ms",
      "50",
      "--data-dir",
      join(dir, "data"),
      "--log-level",
      "error",
    ],
    { cwd: ROOT, stdio: "ignore", detached: true, env: { ...process.env, EDGE_NODE_DEVICE_KEY: deviceKey(0) } },
  );
  children.push(daemon);
  const status = async () =>
    (await (await fetch(`${nodeUrl}/status`)).json()) as { admitted: boolean; admissionChangedAt: number };
  await waitUntil("the daemon admitted", async () => (await status()).admitted === true, 120_000, 100);
  const latencies: number[] = [];
  const stake = staking.connect(deployer) as ethers.Contract;
  for (let trial = 0; trial < TRIALS; trial++) {
    const hash = await stake.getFunction("requestUnstake").send(1n);
    const minedAt = Date.now(); // automine: the block exists once the hash is back
    await hash.wait();
    await waitUntil("eviction", async () => (await status()).admitted === false, 10_000, 2);
    latencies.push((await status()).admissionChangedAt - minedAt);
    await (await stake.getFunction("cancelUnstake").send(1n)).wait();
    await waitUntil("readmission", async () => (await status()).admitted === true, 10_000, 5);
  }
  latencies.sort((a, b) => a - b);
  results["eviction.p50.ms"] = percentile(latencies, 50);
  results["eviction.p99.ms"] = percentile(latencies, 99);
  results["eviction.max.ms"] = latencies.at(-1)!;
  results["eviction.trials"] = TRIALS;
  results["eviction.pollIntervalMs"] = 50;
}

async function main(): Promise<void> {
  const children: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), "edge-bench-node-"));
  const results: Results = {};
  try {
    const chain = await startChain(children);
    await createStakes(chain);
    await measureColdSync(chain, results);
    await measureMemory(dir, chain, results);
    await measureEviction(dir, chain, children, results);
  } finally {
    // The whole group: killing npm or npx alone left the daemon and the chain running after the bench.
    for (const child of children) {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }

  await writeBenchResults(OUT, DOC, "node-bench", results, TARGETS);
}

const TARGETS: Record<string, string> = {
  "coldSync.stakes10k.seconds": "<= 1 s",
  "eviction.p50.ms": "",
  "eviction.p99.ms": "<= 250 ms",
  "memory.stakes10k.mb": "<= 100 MB",
};

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
