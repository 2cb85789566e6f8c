/**
 * The whole network on one machine:  npm start [-- --hosts 6 --epochs 3 --epoch-seconds 12 --keep-running]
 *
 * A Hardhat JSON-RPC chain, the contracts deployed with the project's Ignition modules (deploy:protocol), stakes
 * for 1 stargate, 2 gateways and N hosts, their edge-node daemons, the oracle and billing, each its own process on
 * a loopback port, and 3 customers sending signed jobs (one with a referrer, one who runs out of balance). Midway a
 * host's stake is unstaked: the host evicts itself and its gateway stops sending it jobs. After the epochs and one
 * billing period it checks and prints what happened (scores, yield accrued and claimed, bills settled with their
 * hashes, the referral credit) and exits 0; any broken step exits 1 with the reason. Every process logs to its own
 * file in the run directory printed at the start.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  type Address,
  type Hex,
  type PublicClient,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  keccak256,
  parseEventLogs,
  toHex,
} from "viem";
import { mnemonicToAccount, privateKeyToAccount } from "viem/accounts";

import { edgeTokenAbi, paymentVaultAbi, rewardsManagerAbi, stakeManagerAbi } from "../../offchain/common/generated/abis";
import { readAddressBook } from "../../offchain/common/addressBook";
import { DEVICE_CONSENT_TYPES } from "../../offchain/common/consent";
import { submitJob } from "../../offchain/common/jobClient";
import {
  EpochScores,
  type ViewCustomer,
  type ViewNode,
  billingSession,
  getJson,
  liveView,
  yieldCheck,
} from "./observe";

const ROOT = join(__dirname, "..", "..");
const MNEMONIC = "test test test test test test test test test test test junk";
const CHAIN_ID = 31337;
const TOKEN = 10n ** 18n;

const hardhat = defineChain({
  id: CHAIN_ID,
  name: "devnet",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: ["http://127.0.0.1:8545"] } },
});

const devAccount = (i: number) => mnemonicToAccount(MNEMONIC, { addressIndex: i });
const devKey = (i: number) => toHex(devAccount(i).getHdKey().privateKey!);
const deviceKey = (name: string) => keccak256(toHex(`edge devnet device ${name}`));

class DevnetError extends Error {}

interface Options {
  hosts: number;
  epochs: number;
  epochSeconds: number;
  keepRunning: boolean;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      hosts: { type: "string", default: "6" },
      epochs: { type: "string", default: "3" },
      "epoch-seconds": { type: "string", default: "12" },
      "keep-running": { type: "boolean", default: false },
    },
    strict: true,
  });
  const int = (value: string, flag: string, min: number, max: number) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new DevnetError(`--${flag} must be an integer ${min}..${max}`);
    return n;
  };
  return {
    hosts: int(values.hosts!, "hosts", 2, 20),
    epochs: int(values.epochs!, "epochs", 2, 50),
    epochSeconds: int(values["epoch-seconds"]!, "epoch-seconds", 6, 3600),
    keepRunning: values["keep-running"]!,
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > until) throw new DevnetError(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

class Processes {
  readonly children: Array<{ name: string; child: ChildProcess; log: string }> = [];
  private stopping = false;

  constructor(private readonly dir: string) {}

  /** Starts `command args` with its output in <dir>/<name>.log; a process that dies early fails the devnet. */
  start(name: string, command: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    const log = join(this.dir, `${name}.log`);
    const out = createWriteStream(log);
    const child = spawn(command, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    child.on("exit", (code, signal) => {
      if (!this.stopping) this.failure ??= new DevnetError(`${name} exited (${code ?? signal}); see ${log}`);
    });
    this.children.push({ name, child, log });
    return child;
  }

  failure?: DevnetError;

  check(): void {
    if (this.failure) throw this.failure;
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.children.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
            child.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
  }
}

const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);
const tsNode = ["-r", "ts-node/register/transpile-only"];

export async function runDevnet(argv: string[]): Promise<number> {
  const opts = options(argv);
  const runId = new Date().toISOString().replace(/[:.]/g, "-");
  const dir = join(ROOT, ".devnet", runId);
  mkdirSync(dir, { recursive: true });
  console.log(`devnet: run directory ${dir} (every process logs there)`);
  const procs = new Processes(dir);
  const stop = () => void procs.stopAll().then(() => process.exit(130));
  process.once("SIGINT", stop);
  try {
    return await run(opts, dir, runId, procs);
  } finally {
    process.removeListener("SIGINT", stop);
    if (!opts.keepRunning || procs.failure) await procs.stopAll();
  }
}

async function run(opts: Options, dir: string, runId: string, procs: Processes): Promise<number> {
  const history: string[] = [];
  const step = (what: string) => {
    history.push(`devnet: ${what}`);
    console.log(`devnet: ${what}`);
  };

  // ---------------------------------------------------------------------------------------------- chain
  const compile = spawnSync(bin("hardhat"), ["compile", "--quiet"], { cwd: ROOT, encoding: "utf8" });
  if (compile.status !== 0) throw new DevnetError(`hardhat compile failed:\n${compile.stdout}${compile.stderr}`);
  const chainPort = await freePort();
  const rpc = `http://127.0.0.1:${chainPort}`;
  procs.start("chain", bin("hardhat"), ["node", "--hostname", "127.0.0.1", "--port", String(chainPort)]);
  const client = createPublicClient({ chain: hardhat, transport: http(rpc, { retryCount: 0 }) }) as PublicClient;
  await waitFor("the chain", async () => (await client.getChainId()) === CHAIN_ID, 60_000);
  // Blocks every second, so chain time (which closes epochs) moves without transactions.
  await client.request({ method: "evm_setIntervalMining" as never, params: [1000] as never });
  step(`chain at ${rpc}`);

  // ---------------------------------------------------------------------------------------------- deploy
  const deployer = devAccount(0);
  const oracleKey = devKey(1);
  const billerKey = devKey(2);
  const customers = [devAccount(3), devAccount(4), devAccount(5)];
  const referrer = devAccount(6);
  // Chain time, which closes epochs: blocks mined back to back during the setup move it ahead of the wall clock.
  const chainNow = async () => Number((await client.getBlock({ blockTag: "latest" })).timestamp);
  const now = await chainNow();
  // Epoch 0 starts once every stake exists and every process runs, so each stake is active through it.
  const genesis = now + 100;
  const parameters = {
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
        epochDuration: `${opts.epochSeconds}n`,
        genesis: `${genesis}n`,
        committee: [privateKeyToAccount(oracleKey).address],
        threshold: "1n",
      },
      PaymentVault: {
        adminDelay: "0n",
        params: {
          referrerShareBps: "1000n",
          rewardPoolShareBps: "2000n",
          withdrawalNotice: "60n",
          freeBuffer: `${TOKEN}n`,
        },
      },
    },
    roles: { PaymentVault: { BILLER_ROLE: [privateKeyToAccount(billerKey).address] } },
    rewards: { fund: `${1_000_000n * TOKEN}n` },
  };
  const parametersFile = join(dir, "parameters.json");
  writeFileSync(parametersFile, JSON.stringify(parameters, null, 2));
  const deploy = spawnSync(
    bin("hardhat"),
    ["deploy:protocol", "--network", "rpc", "--parameters", parametersFile, "--deployment-id", `devnet-${runId}`],
    { cwd: ROOT, env: { ...process.env, EDGE_RPC_URL: rpc, EDGE_PRIVATE_KEYS: devKey(0) }, encoding: "utf8" },
  );
  writeFileSync(join(dir, "deploy.log"), `${deploy.stdout}${deploy.stderr}`);
  if (deploy.status !== 0) throw new DevnetError(`deploy:protocol failed; see ${join(dir, "deploy.log")}`);
  // The Ignition journal only serves to resume an interrupted deployment: this chain dies with the run.
  rmSync(join(ROOT, "scripts", "deploy", "deployments", `devnet-${runId}`), { recursive: true, force: true });
  const bookFile = join(dir, "addresses.json");
  writeFileSync(bookFile, readFileSync(join(ROOT, "scripts", "deploy", "addresses", `${CHAIN_ID}.json`)));
  const book = readAddressBook(bookFile);
  const address = (name: "EdgeToken" | "StakeManager" | "RewardsManager" | "PaymentVault") =>
    book.contracts[name]!.address as Address;
  step(`contracts deployed (address book ${bookFile})`);

  // ---------------------------------------------------------------------------------------------- stakes
  const wallet = (account: ReturnType<typeof devAccount>) =>
    createWalletClient({ account, chain: hardhat, transport: http(rpc, { retryCount: 0 }) });
  const owner = wallet(deployer);
  const send = async (promise: Promise<Hex>) => {
    const receipt = await client.waitForTransactionReceipt({ hash: await promise, timeout: 30_000 });
    if (receipt.status !== "success") throw new DevnetError(`transaction ${receipt.transactionHash} reverted`);
    return receipt;
  };
  await send(
    owner.writeContract({
      address: address("EdgeToken"),
      abi: edgeTokenAbi,
      functionName: "approve",
      args: [address("StakeManager"), 2n ** 255n],
    }),
  );
  const devices = [
    { name: "stargate", role: "stargate", type: 2, amount: 250_000n * TOKEN },
    { name: "gateway-1", role: "gateway", type: 1, amount: 25_000n * TOKEN },
    { name: "gateway-2", role: "gateway", type: 1, amount: 25_000n * TOKEN },
    ...Array.from({ length: opts.hosts }, (_, i) => ({
      name: `host-${i + 1}`,
      role: "host",
      type: 0,
      amount: BigInt(100 + 50 * i) * TOKEN,
    })),
  ].map((d) => ({ ...d, key: deviceKey(d.name), address: privateKeyToAccount(deviceKey(d.name)).address }));
  const deadline = BigInt(now + 3600);
  for (const device of devices) {
    const signature = await privateKeyToAccount(device.key).signTypedData({
      domain: {
        name: "Edge StakeManager",
        version: "1",
        chainId: CHAIN_ID,
        verifyingContract: address("StakeManager"),
      },
      types: DEVICE_CONSENT_TYPES,
      primaryType: "DeviceConsent",
      message: { device: device.address, owner: deployer.address, nonce: 0n, deadline },
    });
    await send(
      owner.writeContract({
        address: address("StakeManager"),
        abi: stakeManagerAbi,
        functionName: "stakeAndAssign",
        args: [device.type, device.amount, { device: device.address, deadline, signature }],
      }),
    );
  }
  const stakeOf = new Map<string, bigint>();
  for (const [i, device] of devices.entries()) stakeOf.set(device.name, BigInt(i + 1));
  step(`${devices.length} stakes: 1 stargate, 2 gateways, ${opts.hosts} hosts`);

  // ---------------------------------------------------------------------------------------------- customers
  // Customer A (referred by R) and B deposit 500 tokens; C only 3, and runs out.
  const deposits = [500n * TOKEN, 500n * TOKEN, 3n * TOKEN];
  for (const [i, customer] of customers.entries()) {
    await send(
      owner.writeContract({
        address: address("EdgeToken"),
        abi: edgeTokenAbi,
        functionName: "transfer",
        args: [customer.address, deposits[i]],
      }),
    );
    const w = wallet(customer);
    await send(
      w.writeContract({
        address: address("EdgeToken"),
        abi: edgeTokenAbi,
        functionName: "approve",
        args: [address("PaymentVault"), deposits[i]],
      }),
    );
    await send(
      w.writeContract({
        address: address("PaymentVault"),
        abi: paymentVaultAbi,
        functionName: "deposit",
        args: [deposits[i]],
      }),
    );
  }
  await send(
    wallet(customers[0]).writeContract({
      address: address("PaymentVault"),
      abi: paymentVaultAbi,
      functionName: "setReferrer",
      args: [referrer.address],
    }),
  );
  step("customers A (referred), B and C (3 tokens only) deposited");

  // ---------------------------------------------------------------------------------------------- services
  const prices = join(dir, "prices.json");
  // 0.5 token a job and 0.2 token per 1,000 rounds; 1 token free per period.
  writeFileSync(
    prices,
    JSON.stringify({
      freeBuffer: TOKEN.toString(),
      prices: {
        compute: {
          jobs: { unitSize: "1", unitPrice: (TOKEN / 2n).toString() },
          rounds: { unitSize: "1000", unitPrice: (TOKEN / 5n).toString() },
        },
      },
    }),
  );
  const oraclePort = await freePort();
  const billingPort = await freePort();
  const oracleUrl = `http://127.0.0.1:${oraclePort}`;
  const billingUrl = `http://127.0.0.1:${billingPort}`;
  const common = ["--rpc", rpc, "--addresses", bookFile, "--confirmations", "0", "--poll-interval-ms", "250"];
  procs.start(
    "oracle",
    process.execPath,
    [
      ...tsNode,
      "offchain/oracle/cli.ts",
      "serve",
      ...common,
      ...["--port", String(oraclePort), "--db", join(dir, "oracle.db"), "--grace-seconds", "2", "--batch-size", "50"],
    ],
    { EDGE_ORACLE_KEYS: oracleKey },
  );
  // One billing period from now until the last epoch ends (when traffic stops): chain time runs ahead of the wall
  // clock by the setup's blocks, and periods go by the wall clock.
  const periodSeconds = genesis + opts.epochs * opts.epochSeconds - (await chainNow()) + 2;
  const periodStart = Date.now();
  procs.start(
    "billing",
    process.execPath,
    [
      ...tsNode,
      "offchain/billing/cli.ts",
      "serve",
      ...common,
      ...["--port", String(billingPort), "--db", join(dir, "billing.db"), "--prices", prices],
      ...["--period-seconds", String(periodSeconds), "--period-start", String(periodStart), "--grace-seconds", "3"],
    ],
    { EDGE_BILLING_BILLER_KEY: billerKey },
  );
  const nodes: Array<(typeof devices)[number] & { url: string }> = [];
  const gateways = devices.filter((d) => d.role === "gateway");
  for (const device of devices) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    nodes.push({ ...device, url });
  }
  const gatewayUrl = (i: number) => nodes.find((n) => n.name === gateways[i % gateways.length].name)!.url;
  for (const [i, node] of nodes.entries()) {
    const roleArgs =
      node.role === "gateway"
        ? ["--oracle", oracleUrl, "--billing", billingUrl, "--report-interval-ms", "2000", "--usage-flush-ms", "1000"]
        : node.role === "stargate"
          ? ["--oracle", oracleUrl, "--heartbeat-interval-ms", "2000"]
          : ["--gateway", gatewayUrl(i), "--register-interval-ms", "1000"];
    procs.start(
      node.name,
      process.execPath,
      [
        ...tsNode,
        "node/cli.ts",
        ...["--role", node.role, ...common, "--port", String(new URL(node.url).port)],
        ...["--data-dir", join(dir, node.name), ...roleArgs],
      ],
      { EDGE_NODE_DEVICE_KEY: node.key },
    );
  }
  // The Console: wallet users manage stakes and payments from a browser, through their own wallet.
  const consoleUrl = `http://127.0.0.1:${await freePort()}`;
  procs.start("console", process.execPath, [
    ...tsNode,
    "console/cli.ts",
    ...["--rpc", rpc, "--addresses", bookFile, "--port", new URL(consoleUrl).port],
  ]);
  await waitFor("the oracle", async () => (await getJson(`${oracleUrl}/health`)).ok, 60_000);
  await waitFor("billing", async () => (await getJson(`${billingUrl}/health`)).ok, 60_000);
  for (const node of nodes) {
    await waitFor(`${node.name} admitted`, async () => (await getJson(`${node.url}/status`)).admitted === true, 90_000);
  }
  await waitFor(
    "gateways routing to their hosts",
    async () => {
      let routable = 0;
      for (const g of nodes.filter((n) => n.role === "gateway"))
        routable += (await getJson(`${g.url}/status`)).gateway.hosts;
      return routable === opts.hosts;
    },
    60_000,
  );
  await waitFor("the console", async () => (await getJson(`${consoleUrl}/config.json`)).chainId === CHAIN_ID, 60_000);
  step(`oracle ${oracleUrl}, billing ${billingUrl}, ${nodes.length} nodes admitted and routing`);
  step(`console ${consoleUrl} (a browser wallet on chain ${CHAIN_ID} at ${rpc}; development accounts hold tokens)`);
  procs.check();

  // ---------------------------------------------------------------------------------------------- traffic
  const jobs = customers.map(() => ({ ok: 0, refused: 0, failed: 0 }));
  const viewCustomers: ViewCustomer[] = customers.map((account, i) => ({ name: "ABC"[i], account, jobs: jobs[i] }));
  const viewNodes: ViewNode[] = nodes.map((n) => ({
    name: n.name,
    role: n.role,
    url: n.url,
    address: n.address,
    stakeId: stakeOf.get(n.name)!,
  }));
  const scores = new EpochScores(oracleUrl);
  let traffic = true;
  const customerLoops = customers.map(async (customer, c) => {
    for (let k = 0; traffic; k++) {
      try {
        // Round robin over the gateways; one without an admitted host (503) sends the customer to the next.
        let result: Awaited<ReturnType<typeof submitJob>> | undefined;
        for (let attempt = 0; attempt < gateways.length && (!result || result.status === 503); attempt++) {
          const gateway = nodes.find((n) => n.name === gateways[(c + k + attempt) % gateways.length].name)!;
          result = await submitJob(gateway.url, customer, CHAIN_ID, gateway.address, {
            payload: `customer ${c} job ${k}`,
            rounds: 500,
          });
        }
        if (result!.status === 200) jobs[c].ok++;
        else if (result!.status === 402) jobs[c].refused++;
        else jobs[c].failed++;
      } catch {
        jobs[c].failed++;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  });

  const epochEnd = (e: number) => genesis + (e + 1) * opts.epochSeconds;
  const chainPast = (seconds: number) => async () => (await chainNow()) >= seconds;
  const epochMs = opts.epochSeconds * 1000;
  // The live view: redrawn in place on a terminal, appended otherwise (a log file, the end-to-end test).
  const tty = process.stdout.isTTY === true;
  let drawing = false;
  const printView = async () => {
    if (drawing) return;
    drawing = true;
    try {
      const frame = await liveView({
        client,
        rewards: address("RewardsManager"),
        billingUrl,
        scores,
        nodes: viewNodes,
        customers: viewCustomers,
      });
      if (tty) process.stdout.write("\x1b[2J\x1b[H" + history.join("\n") + "\n");
      const chainTime = await chainNow().catch(() => undefined);
      const epoch = chainTime === undefined ? "?" : Math.floor((chainTime - genesis) / opts.epochSeconds);
      console.log(`devnet live view: epoch ${epoch} running; last posted epoch ${frame.epoch ?? "none yet"}`);
      console.table(frame.nodes);
      console.table(frame.customers);
    } finally {
      drawing = false;
    }
  };
  const view = setInterval(() => void printView().catch(() => undefined), 3000);

  // Midway through the first epoch after genesis, host-1's owner asks to unstake it.
  const evicted = nodes.find((n) => n.name === "host-1")!;
  await waitFor("epoch 1", chainPast(epochEnd(0) + opts.epochSeconds / 2), 200_000 + 3 * epochMs);
  procs.check();
  await send(
    owner.writeContract({
      address: address("StakeManager"),
      abi: stakeManagerAbi,
      functionName: "requestUnstake",
      args: [stakeOf.get("host-1")!],
    }),
  );
  const unstakedAt = Date.now();
  await waitFor(
    "host-1 to evict itself",
    async () => (await getJson(`${evicted.url}/status`)).admitted === false,
    30_000,
  );
  const evictionMs = Date.now() - unstakedAt;
  const jobsAtEviction = (await getJson(`${evicted.url}/status`)).host.jobsExecuted as number;
  step(`host-1 unstaked: it evicted itself ${evictionMs} ms later, after ${jobsAtEviction} jobs`);

  // Let the epochs run out, then stop traffic and wait for the oracle and billing to finish.
  const last = opts.epochs - 1;
  await waitFor(`epoch ${last} to end`, chainPast(epochEnd(last)), (opts.epochs + 2) * epochMs + 60_000);
  traffic = false;
  await Promise.all(customerLoops);
  clearInterval(view);
  procs.check();
  const jobsAfter = (await getJson(`${evicted.url}/status`)).host.jobsExecuted as number;
  if (jobsAfter !== jobsAtEviction)
    throw new DevnetError(`host-1 ran ${jobsAfter - jobsAtEviction} jobs after evicting itself`);

  await waitFor(
    `epochs 0..${last} posted`,
    async () => {
      const { epochs } = await getJson(`${oracleUrl}/epochs`);
      return (
        epochs.filter((e: { epoch: number; status: string }) => e.epoch <= last && e.status === "posted").length ===
        opts.epochs
      );
    },
    120_000,
  );
  await waitFor(
    "billing period 0 settled",
    async () => (await getJson(`${billingUrl}/periods/0`)).status === "settled",
    periodSeconds * 1000 + 120_000,
  );
  procs.check();

  // ---------------------------------------------------------------------------------------------- summary
  const rewards = address("RewardsManager");
  const accrued = async (stakeId: bigint) =>
    client.readContract({ address: rewards, abi: rewardsManagerAbi, functionName: "accrued", args: [stakeId] });
  // Every stake's accrued yield, recomputed from the oracle's published scores and the chain's stake history.
  const yieldRows = await yieldCheck({
    client,
    rewards,
    staking: address("StakeManager"),
    scores,
    nodes: viewNodes,
    epochs: Array.from({ length: opts.epochs }, (_, e) => e),
  });
  for (const row of yieldRows) {
    if (row.accrued !== row.expected)
      throw new DevnetError(
        `${row.node} accrued ${row.accrued}, the formula gives ${row.expected} (${row.trace.join("; ")})`,
      );
    const node = nodes.find((n) => n.name === row.node)!;
    const ranJobs = node.role === "host" && ((await getJson(`${node.url}/status`)).host.jobsExecuted as number) > 0;
    if (ranJobs && !Object.values(row.scores).some((score) => score > 0))
      throw new DevnetError(`${row.node} ran jobs but got no score`);
  }
  const claimFor = nodes.find((n) => n.name === "host-2")!;
  const claimStake = stakeOf.get(claimFor.name)!;
  if ((await accrued(claimStake)) === 0n) throw new DevnetError("host-2 accrued no yield");
  const claim = await send(
    owner.writeContract({
      address: rewards,
      abi: rewardsManagerAbi,
      functionName: "claim",
      args: [claimStake, deployer.address],
    }),
  );
  // The oracle goes on posting epochs: compare with the state just before the claim's block, and the event.
  const [claimed] = parseEventLogs({ abi: rewardsManagerAbi, eventName: "YieldClaimed", logs: claim.logs });
  const claimable = claimed.args.amount;
  const balanceAt = (blockNumber: bigint) =>
    client.readContract({
      address: address("EdgeToken"),
      abi: edgeTokenAbi,
      functionName: "balanceOf",
      args: [deployer.address],
      blockNumber,
    });
  const received = (await balanceAt(claim.blockNumber)) - (await balanceAt(claim.blockNumber - 1n));
  const accruedBefore = await client.readContract({
    address: rewards,
    abi: rewardsManagerAbi,
    functionName: "accrued",
    args: [claimStake],
    blockNumber: claim.blockNumber - 1n,
  });
  const postedInClaimBlock = (
    await client.getContractEvents({
      address: rewards,
      abi: rewardsManagerAbi,
      eventName: "ScoresPosted",
      fromBlock: claim.blockNumber,
      toBlock: claim.blockNumber,
    })
  ).some((post) => post.transactionIndex < claim.transactionIndex);
  if (received !== claimable || (!postedInClaimBlock && claimable !== accruedBefore))
    throw new DevnetError(`claimed ${claimable} and received ${received}; ${accruedBefore} had accrued`);

  const bills = await client.getContractEvents({
    address: address("PaymentVault"),
    abi: paymentVaultAbi,
    eventName: "BillSettled",
    fromBlock: 0n,
  });
  const referral = await client.readContract({
    address: address("PaymentVault"),
    abi: paymentVaultAbi,
    functionName: "referralCredit",
    args: [referrer.address],
  });
  const period = await getJson(`${billingUrl}/periods/0`);

  // Each customer signs in to billing with their wallet: the bill it serves has the hash and charge on-chain.
  for (const [i, customer] of customers.entries()) {
    viewCustomers[i].session ??= await billingSession(billingUrl, customer);
    const served = (await getJson(`${billingUrl}/customers/${customer.address}/bills/0`, viewCustomers[i].session)) as {
      billHash: string;
      charged: string;
      bill: { total: string };
    };
    const onChain = bills.find((b) => b.args.customer === customer.address);
    if (
      !onChain ||
      served.billHash !== onChain.args.billHash ||
      served.charged !== onChain.args.charged!.toString() ||
      served.bill.total !== onChain.args.amount!.toString()
    ) {
      throw new DevnetError(`customer ${"ABC"[i]}'s bill from billing does not match the chain`);
    }
  }

  // Conservation: every holder the token ever had (from its Transfer events) sums to the fixed supply.
  const transfers = await client.getContractEvents({
    address: address("EdgeToken"),
    abi: edgeTokenAbi,
    eventName: "Transfer",
    fromBlock: 0n,
  });
  const holders = new Set<Address>(transfers.flatMap((t) => [t.args.from!, t.args.to!]));
  let held = 0n;
  for (const holder of holders) {
    held += await client.readContract({
      address: address("EdgeToken"),
      abi: edgeTokenAbi,
      functionName: "balanceOf",
      args: [holder],
    });
  }
  const supply = await client.readContract({
    address: address("EdgeToken"),
    abi: edgeTokenAbi,
    functionName: "totalSupply",
  });
  if (held !== supply) throw new DevnetError(`token balances sum to ${held}, not the supply ${supply}`);

  console.log("\ndevnet summary");
  console.table(
    yieldRows.map((row) => ({
      node: row.node,
      ...row.scores,
      "accrued before claim": (Number(row.accrued) / 1e18).toFixed(6),
      "formula (PROTOCOL.md)": (Number(row.expected) / 1e18).toFixed(6),
    })),
  );
  console.log("every stake's accrued yield equals the formula applied to its published scores, to the base unit");
  console.log(`yield claimed for host-2's stake: ${(Number(claimable) / 1e18).toFixed(6)} tokens`);
  console.table(
    bills.map((b) => ({
      customer: "ABC"[customers.findIndex((c) => c.address === b.args.customer)],
      billHash: b.args.billHash,
      amount: (Number(b.args.amount) / 1e18).toFixed(3),
      charged: (Number(b.args.charged) / 1e18).toFixed(3),
      shortfall: (Number(b.args.shortfall) / 1e18).toFixed(3),
    })),
  );
  console.log(`billing period 0: ${period.settled} bills settled, charged ${Number(period.charged) / 1e18} tokens`);
  console.log(`referral credit of customer A's referrer: ${(Number(referral) / 1e18).toFixed(3)} tokens`);
  console.log(`host-1 evicted itself ${evictionMs} ms after its unstake and ran no job after`);
  console.log(
    `customers' jobs (ok / refused / failed): ${jobs.map((j, i) => `${"ABC"[i]} ${j.ok}/${j.refused}/${j.failed}`).join(", ")}`,
  );
  console.log(`tokens conserved: ${holders.size} holders hold exactly the supply; billing's bills match the chain`);
  console.log(`logs: ${dir}`);
  if (bills.length < 3) throw new DevnetError(`${bills.length} bills settled, expected 3`);
  if (referral === 0n) throw new DevnetError("customer A's referrer got no credit");
  const c = bills.find((b) => b.args.customer === customers[2].address);
  if (!c || c.args.shortfall === 0n) throw new DevnetError("customer C did not run out of balance");

  if (opts.keepRunning) {
    console.log("\nthe network keeps running (Ctrl-C stops it):");
    console.log(`  chain   ${rpc}`);
    console.log(`  oracle  ${oracleUrl} (metrics ${oracleUrl}/metrics)`);
    console.log(`  billing ${billingUrl} (metrics ${billingUrl}/metrics)`);
    console.log(`  console ${consoleUrl}`);
    for (const n of nodes) console.log(`  ${n.name.padEnd(9)} ${n.url} (metrics ${n.url}/metrics)`);
    await new Promise(() => undefined);
  }
  return 0;
}

if (require.main === module) {
  runDevnet(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`devnet: ${error instanceof DevnetError ? error.message : (error.stack ?? error)}`);
      process.exit(error instanceof DevnetError ? 1 : 1);
    },
  );
}
