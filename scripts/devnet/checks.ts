/**
 * The promises the devnet checks at the end, each failing the run with a DevnetError that names it: every stake's
 * accrued yield equals the formula applied to its published scores, to the base unit, and a host that ran jobs got
 * a score; host-2's claim pays exactly what had accrued; the bill billing serves each signed-in customer has the
 * chain's hash and charge; the token's holders sum to its supply; and, after the summary, 3 bills settled, A's
 * referrer credited, and C refused (402, credit used up) once its 3-token deposit was used, A and B never.
 */
import { type Address, parseEventLogs } from "viem";

import { edgeTokenAbi, paymentVaultAbi, rewardsManagerAbi } from "../../offchain/common/generated/abis";
import type { Chain } from "./chain";
import { type Accounts, type DevAccount, DevnetError } from "./common";
import type { JobCounts } from "./customers";
import type { Node } from "./daemons";
import { type EpochScores, type ViewCustomer, type YieldRow, billingSession, getJson, yieldCheck } from "./observe";

export interface Outcome {
  yieldRows: YieldRow[];
  /** The yield claimed for host-2's stake. */
  claimable: bigint;
  bills: Awaited<ReturnType<typeof settledBills>>;
  referral: bigint;
  /** Billing's summary of period 0. */
  period: { settled: number; charged: string };
  /** How many addresses ever held the token. */
  holders: number;
}

const settledBills = (chain: Chain) =>
  chain.client.getContractEvents({
    address: chain.address("PaymentVault"),
    abi: paymentVaultAbi,
    eventName: "BillSettled",
    fromBlock: 0n,
  });

export async function checkPromises(
  chain: Chain,
  accounts: Accounts,
  network: { epochs: number; nodes: Node[]; customers: ViewCustomer[]; scores: EpochScores; billingUrl: string },
): Promise<Outcome> {
  const yieldRows = await checkYields(chain, network.nodes, network.scores, network.epochs);
  const claimable = await checkClaim(
    chain,
    accounts.deployer,
    network.nodes.find((n) => n.name === "host-2")!,
  );
  const bills = await settledBills(chain);
  const referral = await chain.client.readContract({
    address: chain.address("PaymentVault"),
    abi: paymentVaultAbi,
    functionName: "referralCredit",
    args: [accounts.referrer.address],
  });
  const period = await getJson(`${network.billingUrl}/periods/0`);
  await checkServedBills(network.billingUrl, network.customers, bills);
  const holders = await checkConservation(chain);
  return { yieldRows, claimable, bills, referral, period, holders };
}

/** Every stake's accrued yield, recomputed from the oracle's published scores and the chain's stake history. */
async function checkYields(chain: Chain, nodes: Node[], scores: EpochScores, epochs: number): Promise<YieldRow[]> {
  const yieldRows = await yieldCheck({
    client: chain.client,
    rewards: chain.address("RewardsManager"),
    staking: chain.address("StakeManager"),
    scores,
    nodes,
    epochs: Array.from({ length: epochs }, (_, e) => e),
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
  return yieldRows;
}

/** Claims host-2's yield to its owner: the owner receives exactly what had accrued; returns the amount. */
async function checkClaim(chain: Chain, owner: DevAccount, claimFor: Node): Promise<bigint> {
  const { client } = chain;
  const rewards = chain.address("RewardsManager");
  const claimStake = claimFor.stakeId;
  const accrued = await client.readContract({
    address: rewards,
    abi: rewardsManagerAbi,
    functionName: "accrued",
    args: [claimStake],
  });
  if (accrued === 0n) throw new DevnetError("host-2 accrued no yield");
  const claim = await chain.send(
    chain.wallet(owner).writeContract({
      address: rewards,
      abi: rewardsManagerAbi,
      functionName: "claim",
      args: [claimStake, owner.address],
    }),
  );
  // The oracle goes on posting epochs: compare with the state just before the claim's block, and the event.
  const [claimed] = parseEventLogs({ abi: rewardsManagerAbi, eventName: "YieldClaimed", logs: claim.logs });
  const claimable = claimed.args.amount;
  const balanceAt = (blockNumber: bigint) =>
    client.readContract({
      address: chain.address("EdgeToken"),
      abi: edgeTokenAbi,
      functionName: "balanceOf",
      args: [owner.address],
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
  return claimable;
}

/** Each customer signs in to billing with their wallet: the bill it serves has the hash and charge on-chain. */
async function checkServedBills(billingUrl: string, customers: ViewCustomer[], bills: Outcome["bills"]) {
  for (const customer of customers) {
    customer.session ??= await billingSession(billingUrl, customer.account);
    const served = (await getJson(`${billingUrl}/customers/${customer.account.address}/bills/0`, customer.session)) as {
      billHash: string;
      charged: string;
      bill: { total: string };
    };
    const onChain = bills.find((b) => b.args.customer === customer.account.address);
    if (
      !onChain ||
      served.billHash !== onChain.args.billHash ||
      served.charged !== onChain.args.charged!.toString() ||
      served.bill.total !== onChain.args.amount!.toString()
    ) {
      throw new DevnetError(`customer ${customer.name}'s bill from billing does not match the chain`);
    }
  }
}

/** Conservation: every holder the token ever had (from its Transfer events) sums to the fixed supply. */
async function checkConservation(chain: Chain): Promise<number> {
  const token = chain.address("EdgeToken");
  const transfers = await chain.client.getContractEvents({
    address: token,
    abi: edgeTokenAbi,
    eventName: "Transfer",
    fromBlock: 0n,
  });
  const holders = new Set<Address>(transfers.flatMap((t) => [t.args.from!, t.args.to!]));
  let held = 0n;
  for (const holder of holders) {
    held += await chain.client.readContract({
      address: token,
      abi: edgeTokenAbi,
      functionName: "balanceOf",
      args: [holder],
    });
  }
  const supply = await chain.client.readContract({ address: token, abi: edgeTokenAbi, functionName: "totalSupply" });
  if (held !== supply) throw new DevnetError(`token balances sum to ${held}, not the supply ${supply}`);
  return holders.size;
}

/**
 * What the summary shows must also be so: 3 bills settled, A's referrer credited; C refused for used-up credit
 * (402) and its bill within its deposit and at most 10 jobs of overdraft (D43); A and B,
 * funded, never refused for credit.
 */
export function checkOutcome(outcome: Outcome, customers: Accounts["customers"], jobs: JobCounts[]): void {
  const { bills, referral } = outcome;
  if (bills.length < 3) throw new DevnetError(`${bills.length} bills settled, expected 3`);
  if (referral === 0n) throw new DevnetError("customer A's referrer got no credit");
  const c = bills.find((b) => b.args.customer === customers[2].address);
  if (!c) throw new DevnetError("customer C has no settled bill");
  if (jobs[2].creditExhausted === 0)
    throw new DevnetError("customer C was never refused (402) although its 3-token deposit ran out");
  if (c.args.amount! > C_BILL_BOUND)
    throw new DevnetError(`customer C was billed ${c.args.amount} beyond its deposit and 10 jobs of overdraft`);
  if (jobs[0].creditExhausted + jobs[1].creditExhausted > 0)
    throw new DevnetError("customer A or B was refused for credit although funded");
}

/**
 * C's deposit (3 tokens) plus 10 jobs of 0.6 token: two gateways each learn the other's usage at their next 2 s
 * refresh, and C sends about 3 jobs a second to each (without the bound C was served the whole run, ~150 tokens).
 */
const C_BILL_BOUND = 3n * 10n ** 18n + 6n * 10n ** 18n;
