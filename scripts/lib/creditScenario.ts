/**
 * The overdraft scenario (decision D43), shared by the e2e test (test/node/gatewayCredit.test.ts) and
 * `npm run bench:credit`: a real billing service and 1 or 2 edge-node gateways (each with its own host) on the
 * in-process chain; one customer with a prepaid balance sends jobs to the gateways in turn, `concurrency` at a
 * time, until every gateway has refused it (402) for a while. Then it measures what was served after the
 * credit (balance + free buffer) was used up, in tokens and in seconds of service, and what billing recorded.
 */
import { join } from "node:path";
import { ethers } from "hardhat";
import type { Hex } from "viem";

import { submitJob } from "../../offchain/common/jobClient";
import type { BillingService } from "../../offchain/billing/service";
import { loadConfig } from "../../node/config";
import { EdgeNode } from "../../node/daemon";
import {
  CHAIN_ID,
  ONE,
  PRICES,
  type BillingProtocol,
  customerAccount,
  deployForBilling,
  gatewayKey,
  startBilling,
} from "./billingFixture";
import { MINIMUM, StakeType } from "./constants";
import { signConsent } from "./fixtures";

export const hostKey = (n: number) => ethers.zeroPadValue(ethers.toBeHex(0x4057000 + n), 32) as Hex;

/** One job of the scenario: 1,000 rounds; its price under PRICES (2 tokens a job, 0.3 per 1,000 rounds). */
export const JOB_ROUNDS = 1_000;
export const JOB_COST = 2n * ONE + (3n * ONE) / 10n;

export interface CreditNetwork {
  p: BillingProtocol;
  billing: { service: BillingService; url: string };
  gateways: Array<{ node: EdgeNode; url: string; device: Hex }>;
  nodes: EdgeNode[];
  close(): Promise<void>;
}

/** Deploys, deposits `deposit` for customerAccount(1), starts billing and `gateways` gateways with a host each. */
export async function startCreditNetwork(options: {
  dir: string;
  rpcUrl: string;
  gateways: number;
  deposit: bigint;
  gatewayFlags?: string[];
}): Promise<CreditNetwork> {
  const ids = Array.from({ length: options.gateways }, (_, i) => i + 1);
  const p = await deployForBilling({ dir: options.dir, gateways: ids, deposits: [0n, options.deposit] });
  const [deployer] = await ethers.getSigners();
  for (const n of ids) {
    const consent = await signConsent(p.staking, new ethers.Wallet(hostKey(n)), deployer.address);
    await p.staking.connect(deployer).stakeAndAssign(StakeType.Host, MINIMUM[StakeType.Host], consent);
  }
  const period = ["--period-seconds", "3600", "--period-start", String(Date.now() - 1_000)];
  const billing = await startBilling(options.rpcUrl, p, join(options.dir, "billing.db"), [
    ...period,
    "--grace-seconds",
    "5",
  ]);
  const nodes: EdgeNode[] = [];
  const start = async (role: string, key: Hex, flags: string[]) => {
    const config = loadConfig(
      [
        ...["--role", role, "--rpc", options.rpcUrl, "--addresses", p.book, "--port", "0", "--confirmations", "0"],
        ...["--poll-interval-ms", "50", "--link-ping-ms", "1000", "--data-dir", join(options.dir, "nodes")],
        ...["--log-level", "silent", ...flags],
      ],
      { EDGE_NODE_DEVICE_KEY: key },
    );
    const node = await EdgeNode.create(config);
    nodes.push(node);
    return { node, url: await node.start(), device: node.device as Hex };
  };
  const gateways = [];
  for (const n of ids) {
    const gateway = await start("gateway", gatewayKey(n), ["--billing", billing.url, ...(options.gatewayFlags ?? [])]);
    await start("host", hostKey(n), ["--gateway", gateway.url]);
    gateways.push(gateway);
  }
  for (const gateway of gateways) {
    await waitUntil("a routable host", async () => (await status(gateway.url)).gateway.hosts === 1, 30_000);
  }
  return {
    p,
    billing,
    gateways,
    nodes,
    close: async () => {
      await Promise.all(nodes.map((n) => n.close()));
      await billing.service.close().catch(() => undefined);
    },
  };
}

export async function status(url: string): Promise<Record<string, any>> {
  return (await (await fetch(`${url}/status`)).json()) as Record<string, any>;
}

export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface JobOutcome {
  /** When the answer came (ms). */
  at: number;
  status: number;
  code?: string;
  error?: string;
}

/** The customer's jobs, `concurrency` at a time over the gateways in turn, until all refused it for `tailMs`. */
export async function driveCustomer(
  net: CreditNetwork,
  options: { concurrency: number; pauseMs: number; tailMs: number; maxMs: number },
): Promise<JobOutcome[]> {
  const customer = customerAccount(1);
  const outcomes: JobOutcome[] = [];
  const refusedSince = new Map<number, number>();
  const deadline = Date.now() + options.maxMs;
  let k = 0;
  const done = () =>
    Date.now() > deadline ||
    (refusedSince.size === net.gateways.length &&
      [...refusedSince.values()].every((since) => Date.now() - since > options.tailMs));
  const worker = async () => {
    while (!done()) {
      const g = k++ % net.gateways.length;
      const gateway = net.gateways[g];
      const { status: code, body } = await submitJob(gateway.url, customer, CHAIN_ID, gateway.device, {
        payload: `job ${k}`,
        rounds: JOB_ROUNDS,
      });
      outcomes.push({ at: Date.now(), status: code, code: body.code, error: body.error });
      if (code === 402) {
        if (!refusedSince.has(g)) refusedSince.set(g, Date.now());
      } else refusedSince.delete(g);
      await new Promise((r) => setTimeout(r, options.pauseMs));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return outcomes;
}

export interface Overdraft {
  credit: bigint;
  served: number;
  refused: number;
  /** Jobs served after the served total passed the credit, their price beyond it, and for how long. */
  overdraftJobs: number;
  overdraftTokens: number;
  overdraftSeconds: number;
  /** Jobs and rounds billing recorded for the customer once every gateway's outbox was empty. */
  billedJobs: bigint;
  billedRounds: bigint;
}

/** Measures the overdraft of a run and waits for every served job to reach billing. */
export async function measureOverdraft(net: CreditNetwork, outcomes: JobOutcome[]): Promise<Overdraft> {
  const credit = ((await net.p.vault.balanceOf(customerAccount(1).address)) as bigint) + BigInt(PRICES.freeBuffer);
  const served = outcomes.filter((o) => o.status === 200).sort((a, b) => a.at - b.at);
  // The credit is used up when the last job it covered was answered; service after that is the overdraft.
  let total = 0n;
  let usedUpAt = served[0]?.at ?? 0;
  let overdraftJobs = 0;
  let lastServed = usedUpAt;
  for (const job of served) {
    total += JOB_COST;
    if (total <= credit) usedUpAt = job.at;
    else {
      overdraftJobs += 1;
      lastServed = job.at;
    }
  }
  for (const gateway of net.gateways) {
    // Everything served is queued within --usage-flush-ms and delivered: meter and outbox empty.
    await waitUntil(
      "the gateway's usage delivered",
      async () => {
        const s = await status(gateway.url);
        return s.outboxPending === 0 && s.gateway.pendingUsage === 0;
      },
      30_000,
    );
  }
  const customer = customerAccount(1).address.toLowerCase();
  const billed = (metric: string) =>
    net.billing.service.store
      .usageTotals(0)
      .filter((t) => t.customer === customer && t.metric === metric)
      .reduce((sum, t) => sum + t.quantity, 0n);
  const over = total > credit ? total - credit : 0n;
  return {
    credit,
    served: served.length,
    refused: outcomes.filter((o) => o.status === 402).length,
    overdraftJobs,
    overdraftTokens: Number(over) / Number(ONE),
    overdraftSeconds: overdraftJobs === 0 ? 0 : (lastServed - usedUpAt) / 1000,
    billedJobs: billed("jobs"),
    billedRounds: billed("rounds"),
  };
}
