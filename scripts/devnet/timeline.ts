/**
 * What happens once the customers' jobs flow: midway through epoch 1 host-1's stake is unstaked and the host must
 * evict itself (it finishes the jobs in flight, then closes its link); after the last epoch the jobs stop, host-1
 * must have run none since it closed its link, and every epoch must be posted and billing period 0 settled.
 */
import { stakeManagerAbi } from "../../offchain/common/generated/abis";
import type { Chain } from "./chain";
import { type DevAccount, DevnetError, type StepLog, waitFor } from "./common";
import type { Node } from "./daemons";
import { getJson } from "./observe";
import type { Options } from "./options";
import type { Processes } from "./processes";

const epochEnd = (chain: Chain, opts: Options, epoch: number) => chain.genesis + (epoch + 1) * opts.epochSeconds;
const chainPast = (chain: Chain, seconds: number) => async () => (await chain.now()) >= seconds;
const jobsExecuted = async (host: Node) => (await getJson(`${host.url}/status`)).host.jobsExecuted as number;

export interface Eviction {
  host: Node;
  /** From the unstake's receipt to the host reporting itself not admitted. */
  ms: number;
  jobsAtEviction: number;
}

/** Midway through the first epoch after genesis, host-1's owner asks to unstake it; it evicts itself. */
export async function unstakeMidway(
  chain: Chain,
  opts: Options,
  owner: DevAccount,
  nodes: Node[],
  procs: Processes,
  log: StepLog,
): Promise<Eviction> {
  const host = nodes.find((n) => n.name === "host-1")!;
  await waitFor(
    "epoch 1",
    chainPast(chain, epochEnd(chain, opts, 0) + opts.epochSeconds / 2),
    200_000 + 3 * opts.epochSeconds * 1000,
  );
  procs.check();
  await chain.send(
    chain.wallet(owner).writeContract({
      address: chain.address("StakeManager"),
      abi: stakeManagerAbi,
      functionName: "requestUnstake",
      args: [host.stakeId],
    }),
  );
  const unstakedAt = Date.now();
  await waitFor("host-1 to evict itself", async () => (await getJson(`${host.url}/status`)).admitted === false, 30_000);
  const ms = Date.now() - unstakedAt;
  // The jobs it had in flight end (an origin fetch takes 300 ms), then it closes its link: no job after.
  await waitFor(
    "host-1 to close its link",
    async () => (await getJson(`${host.url}/status`)).host.registered === false,
    30_000,
  );
  const jobsAtEviction = await jobsExecuted(host);
  log.step(`host-1 unstaked: it evicted itself ${ms} ms later and closed its link after ${jobsAtEviction} jobs`);
  return { host, ms, jobsAtEviction };
}

/**
 * Lets the epochs run out, then stops the jobs (`stopTraffic`) and the live view (`stopView`), checks the evicted
 * host ran no job since, and waits for the oracle and billing to finish.
 */
export async function finishEpochs(
  chain: Chain,
  opts: Options,
  run: { eviction: Eviction; oracleUrl: string; billingUrl: string; periodSeconds: number },
  stop: { stopTraffic: () => Promise<void>; stopView: () => void },
  procs: Processes,
): Promise<void> {
  const last = opts.epochs - 1;
  const epochMs = opts.epochSeconds * 1000;
  await waitFor(
    `epoch ${last} to end`,
    chainPast(chain, epochEnd(chain, opts, last)),
    (opts.epochs + 2) * epochMs + 60_000,
  );
  await stop.stopTraffic();
  stop.stopView();
  procs.check();
  const { host, jobsAtEviction } = run.eviction;
  const jobsAfter = await jobsExecuted(host);
  if (jobsAfter !== jobsAtEviction)
    throw new DevnetError(`host-1 ran ${jobsAfter - jobsAtEviction} jobs after evicting itself`);

  await waitFor(
    `epochs 0..${last} posted`,
    async () => {
      const { epochs } = await getJson(`${run.oracleUrl}/epochs`);
      return (
        epochs.filter((e: { epoch: number; status: string }) => e.epoch <= last && e.status === "posted").length ===
        opts.epochs
      );
    },
    120_000,
  );
  await waitFor(
    "billing period 0 settled",
    async () => (await getJson(`${run.billingUrl}/periods/0`)).status === "settled",
    run.periodSeconds * 1000 + 120_000,
  );
  procs.check();
}
