/**
 * What the devnet reads back from the running network: the live view (per node and per customer, redrawn every 3 s)
 * and the end-to-end yield check (every stake's accrued yield recomputed from the oracle's published scores and the
 * chain's stake history with the formula of PROTOCOL.md, independently of the contract).
 */
import type { Address, LocalAccount, PublicClient } from "viem";

import { rewardsManagerAbi, stakeManagerAbi } from "../../offchain/common/generated/abis";
import type { StakeType } from "../../offchain/common/stakeMap";
import { type YieldParams, epochReward } from "../../offchain/common/yield";

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<any> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

/** Signs `customer` in to billing (EIP-4361) and returns the bearer header its customer endpoints need. */
export async function billingSession(billingUrl: string, customer: LocalAccount): Promise<Record<string, string>> {
  const post = async (path: string, body: unknown) => {
    const response = await fetch(`${billingUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
    if (!response.ok) throw new Error(`billing ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as Record<string, string>;
  };
  const { message } = await post("/auth/nonce", { address: customer.address });
  const { token } = await post("/auth/login", { message, signature: await customer.signMessage({ message }) });
  return { authorization: `Bearer ${token}` };
}

/**
 * The oracle's published scores of closed epochs (final once closed, posted or not), by epoch and device
 * (lower-case); fetched once per epoch.
 */
export class EpochScores {
  private readonly byEpoch = new Map<number, Map<string, number>>();
  private readonly posted = new Set<number>();

  constructor(private readonly oracleUrl: string) {}

  /** Fetches the scores of epochs posted since the last call; returns the latest posted epoch, if any. */
  async refresh(): Promise<number | undefined> {
    const { epochs } = (await getJson(`${this.oracleUrl}/epochs`)) as {
      epochs: Array<{ epoch: number; status: string }>;
    };
    for (const { epoch, status } of epochs) {
      if (status === "posted") this.posted.add(epoch);
      if (this.byEpoch.has(epoch)) continue;
      const { scores } = (await getJson(`${this.oracleUrl}/epochs/${epoch}/scores`)) as {
        scores: Array<{ device: string; score: number }>;
      };
      this.byEpoch.set(epoch, new Map(scores.map((s) => [s.device.toLowerCase(), s.score])));
    }
    return this.latest();
  }

  latest(): number | undefined {
    return this.posted.size === 0 ? undefined : Math.max(...this.posted);
  }

  score(epoch: number, device: Address): number | undefined {
    return this.byEpoch.get(epoch)?.get(device.toLowerCase());
  }
}

const tokens = (amount: bigint, digits = 6) => (Number(amount) / 1e18).toFixed(digits);

export interface ViewNode {
  name: string;
  role: string;
  url: string;
  address: Address;
  stakeId: bigint;
}

export interface ViewCustomer {
  name: string;
  account: LocalAccount;
  jobs: { ok: number; refused: number; failed: number };
  session?: Record<string, string>;
}

/** One frame of the live view: per node role, admitted, jobs, last score and accrued yield; per customer usage and bills. */
export async function liveView(options: {
  client: PublicClient;
  rewards: Address;
  billingUrl: string;
  scores: EpochScores;
  nodes: ViewNode[];
  customers: ViewCustomer[];
}): Promise<{ nodes: Array<Record<string, unknown>>; customers: Array<Record<string, unknown>>; epoch?: number }> {
  const { client, rewards, billingUrl, scores } = options;
  const epoch = await scores.refresh().catch(() => scores.latest());
  const nodes = [];
  for (const node of options.nodes) {
    const row: Record<string, unknown> = { node: node.name, role: node.role, stake: Number(node.stakeId) };
    try {
      const s = await getJson(`${node.url}/status`);
      row.admitted = s.admitted;
      row.jobs = node.role === "host" ? s.host?.jobsExecuted : node.role === "gateway" ? s.gateway?.jobsDispatched : "";
    } catch {
      row.admitted = "?";
    }
    row[`score e${epoch ?? "-"}`] = epoch === undefined ? "" : (scores.score(epoch, node.address) ?? "");
    const accrued = await client
      .readContract({ address: rewards, abi: rewardsManagerAbi, functionName: "accrued", args: [node.stakeId] })
      .catch(() => undefined);
    row["accrued yield"] = accrued === undefined ? "?" : tokens(accrued);
    nodes.push(row);
  }
  const customers = [];
  for (const customer of options.customers) {
    const row: Record<string, unknown> = {
      customer: customer.name,
      "jobs ok/refused/failed": `${customer.jobs.ok}/${customer.jobs.refused}/${customer.jobs.failed}`,
    };
    try {
      customer.session ??= await billingSession(billingUrl, customer.account);
      const base = `${billingUrl}/customers/${customer.account.address}`;
      const usage = await getJson(`${base}/usage`, customer.session);
      row[`usage p${usage.period}`] = tokens(BigInt(usage.draft.total), 3);
      const { bills } = (await getJson(`${base}/bills`, customer.session)) as {
        bills: Array<{ period: number; total: string; status: string; charged: string | null }>;
      };
      const last = bills.at(-1);
      row["last bill"] = last ? `p${last.period} ${tokens(BigInt(last.total), 3)}` : "";
      row.charged = last?.charged ? tokens(BigInt(last.charged), 3) : last ? last.status : "";
    } catch {
      row["last bill"] = "?";
    }
    customers.push(row);
  }
  return { nodes, customers, epoch };
}

/**
 * Redraws the live view every 3 s (a frame is skipped while the previous one is still drawing): in place under the
 * steps so far on a terminal, appended otherwise (a log file, the end-to-end test). Returns the function that stops it.
 */
export function startLiveView(
  options: Parameters<typeof liveView>[0] & {
    history: readonly string[];
    chainNow: () => Promise<number>;
    genesis: number;
    epochSeconds: number;
  },
): () => void {
  const tty = process.stdout.isTTY === true;
  let drawing = false;
  const printView = async () => {
    if (drawing) return;
    drawing = true;
    try {
      const frame = await liveView(options);
      if (tty) process.stdout.write("\x1b[2J\x1b[H" + options.history.join("\n") + "\n");
      const chainTime = await options.chainNow().catch(() => undefined);
      const epoch = chainTime === undefined ? "?" : Math.floor((chainTime - options.genesis) / options.epochSeconds);
      console.log(`devnet live view: epoch ${epoch} running; last posted epoch ${frame.epoch ?? "none yet"}`);
      console.table(frame.nodes);
      console.table(frame.customers);
    } finally {
      drawing = false;
    }
  };
  const view = setInterval(() => void printView().catch(() => undefined), 3000);
  return () => clearInterval(view);
}

export interface YieldRow {
  node: string;
  scores: Record<string, number>;
  expected: bigint;
  accrued: bigint;
  trace: string[];
}

/**
 * For each stake: the sum over every epoch posted up to the latest block of the formula's reward for its published
 * score, with the stake's inputs (type, effective stake, active since, eligibility) read at the block its epoch was
 * posted in, next to what the contract had accrued at that latest block (the oracle goes on posting meanwhile).
 * Fails unless `epochs` are among them. Call it before anyone claims.
 */
export async function yieldCheck(options: {
  client: PublicClient;
  rewards: Address;
  staking: Address;
  scores: EpochScores;
  nodes: ViewNode[];
  /** Epochs that must be among those posted. */
  epochs: number[];
}): Promise<YieldRow[]> {
  const { client, rewards, staking, scores } = options;
  const epochDuration = await client.readContract({
    address: rewards,
    abi: rewardsManagerAbi,
    functionName: "epochDuration",
  });
  const at = await client.getBlockNumber();
  const posts = await client.getContractEvents({
    address: rewards,
    abi: rewardsManagerAbi,
    eventName: "ScoresPosted",
    fromBlock: 0n,
    toBlock: at,
  });
  const postedIn = new Map<number, bigint>();
  // The devnet's epochs fit one batch; with several, no stake changes between them here.
  for (const post of posts) postedIn.set(Number(post.args.epoch), post.blockNumber);
  for (const epoch of options.epochs) if (!postedIn.has(epoch)) throw new Error(`epoch ${epoch} was not posted`);
  await scores.refresh();
  const rows: YieldRow[] = options.nodes.map((n) => ({
    node: n.name,
    scores: {},
    expected: 0n,
    accrued: 0n,
    trace: [],
  }));
  for (const [epoch, blockNumber] of postedIn) {
    const [start, end] = await client.readContract({
      address: rewards,
      abi: rewardsManagerAbi,
      functionName: "epochWindow",
      args: [BigInt(epoch)],
      blockNumber,
    });
    const raw = await client.readContract({
      address: rewards,
      abi: rewardsManagerAbi,
      functionName: "yieldParams",
      blockNumber,
    });
    const params: YieldParams = {
      hostBaseAprBps: BigInt(raw.hostBaseAprBps),
      gatewayBaseAprBps: BigInt(raw.gatewayBaseAprBps),
      stargateBaseAprBps: BigInt(raw.stargateBaseAprBps),
      tenureStepBps: BigInt(raw.tenureStepBps),
      maxTenureBonusBps: BigInt(raw.maxTenureBonusBps),
    };
    for (const [i, node] of options.nodes.entries()) {
      const score = scores.score(epoch, node.address);
      if (score === undefined) continue;
      rows[i].scores[`epoch ${epoch}`] = score;
      const [eligible, stakeType, effectiveStake, activeSince] = await client.readContract({
        address: staking,
        abi: stakeManagerAbi,
        functionName: "yieldInputs",
        args: [node.stakeId, start, end],
        blockNumber,
      });
      rows[i].trace.push(
        `e${epoch}: score ${score}, eligible ${eligible}, stake ${effectiveStake}, since ${activeSince}, window ${start}-${end}`,
      );
      if (!eligible) continue;
      rows[i].expected += epochReward({
        stakeType: Number(stakeType) as StakeType,
        effectiveStake,
        activeSince,
        epochEnd: end,
        epochDuration,
        score: BigInt(score),
        params,
      });
    }
  }
  for (const [i, node] of options.nodes.entries()) {
    rows[i].accrued = await client.readContract({
      address: rewards,
      abi: rewardsManagerAbi,
      functionName: "accrued",
      args: [node.stakeId],
      blockNumber: at,
    });
  }
  return rows;
}
