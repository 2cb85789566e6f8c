/**
 * The whole network on one machine:  npm start [-- --hosts 6 --epochs 3 --epoch-seconds 12 --keep-running]
 *
 * A Hardhat JSON-RPC chain, the contracts deployed with the project's Ignition modules (deploy:protocol), stakes
 * for 1 stargate, 2 gateways and N hosts, their edge-node daemons, the oracle and billing, each its own process on
 * a loopback port, and 3 customers sending signed jobs (one with a referrer, one whose 3-token deposit runs out:
 * the gateways refuse it with 402 once its credit is used up, decision D43). Content delivery (issue 16): a site,
 * demo.edge.test, owned by customer A, with its own origin process; both gateways serve it at their front doors,
 * hosts link to them with their capacity (host-2 twice its peers'), and Newton loads the site through both front
 * doors for the whole of the epochs. Midway a host's stake is unstaked: the host evicts itself and its gateway
 * stops sending it jobs. After the epochs and one billing period it checks and prints what happened (scores,
 * yield accrued and claimed, bills settled with their hashes, the referral credit; Newton's status codes, latency
 * and TTFB per gateway, the fast host's score over its peers', the site owner's cdn lines against what the
 * gateways served) and exits 0; any broken step exits 1 with the reason. Every process logs to its own file in
 * the run directory printed at the start.
 *
 * The steps, in order: options.ts, chain.ts (chain and contracts), stakes.ts, customers.ts (deposits), daemons.ts
 * (oracle, the origin and the sites file from cdn.ts, nodes, Console, then the chain on to genesis and billing),
 * cdn.ts (Newton's load, load.ts), customers.ts (jobs) and observe.ts (the live view), timeline.ts (the unstake,
 * the end of the epochs), checks.ts and cdnChecks.ts, summary.ts; processes.ts runs the child processes. HTTPS
 * (issue 19, https.ts): Pebble and the certificate service start before the nodes, every gateway orders and serves
 * the site over HTTPS by SNI, checked with curl against Pebble's root while the epochs run; without pebble
 * installed the devnet runs over HTTP only and says why. Then spill.ts shows dynamic placement between the two
 * simulated regions: a DE client of fast.edge.test moved to the US gateway while the DE one is loaded, and back.
 * Last, storage.ts shows Edge Storage (issue 21): customer A puts a 1 MB object (k = 1 of n = 2, a devnet-scale
 * choice) through the gateway with the most hosts, gets it back and lists it; one host holding a fragment is
 * stopped and the gateway rebuilds the fragment on its third host; the object is read again, and billing's open
 * period carries A's storage requests and byte-hours. It needs a gateway with 3 hosts after host-1 left: at least
 * 6 hosts.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { startLoad } from "./cdn";
import { cdnOutcome, checkCdn } from "./cdnChecks";
import { startChain } from "./chain";
import { checkOutcome, checkPromises } from "./checks";
import { DevnetError, ROOT, StepLog, devnetAccounts } from "./common";
import { printControlPlane } from "./control";
import { depositCustomers, startTraffic } from "./customers";
import { startServices } from "./daemons";
import { EpochScores, type ViewCustomer, startLiveView } from "./observe";
import { type Options, parseOptions } from "./options";
import { Processes } from "./processes";
import { showSpill } from "./spill";
import { stakeDevices } from "./stakes";
import { showStorage } from "./storage";
import { printCdn, printEndpoints, printHttps, printSummary } from "./summary";
import { finishEpochs, unstakeMidway } from "./timeline";
import { type TracedPath, originLog, probe, startTracer, tracedPath } from "./trace";

export async function runDevnet(argv: string[]): Promise<number> {
  const opts = parseOptions(argv);
  const runId = new Date().toISOString().replace(/[:.]/g, "-");
  const dir = join(ROOT, ".devnet", runId);
  mkdirSync(dir, { recursive: true });
  console.log(`devnet: run directory ${dir} (every process logs there)`);
  const procs = new Processes(dir);
  // Pebble runs in its own process group: a SIGTERM too stops everything before exiting.
  const stop = (signal: NodeJS.Signals) =>
    void procs.stopAll().then(() => process.exit(signal === "SIGINT" ? 130 : 143));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    return await run(opts, dir, runId, procs);
  } finally {
    process.removeListener("SIGINT", stop);
    process.removeListener("SIGTERM", stop);
    if (!opts.keepRunning || procs.failure) await procs.stopAll();
  }
}

async function run(opts: Options, dir: string, runId: string, procs: Processes): Promise<number> {
  const log = new StepLog();
  const accounts = devnetAccounts();
  const chain = await startChain({ dir, runId, epochSeconds: opts.epochSeconds }, procs, accounts, log);
  const devices = await stakeDevices(chain, accounts.deployer, opts.hosts, log);
  await depositCustomers(chain, accounts, log);
  const tracer = await startTracer();
  const services = await startServices({ dir, opts, tracingEnv: tracer.env }, chain, devices, accounts, procs, log);
  const { nodes, billingUrl } = services;

  const load = await startLoad({ dir, opts }, chain, nodes, services.frontDoors, procs, log);
  const traffic = startTraffic(accounts.customers, nodes);
  const customers: ViewCustomer[] = accounts.customers.map((account, i) => ({
    name: "ABC"[i],
    account,
    jobs: traffic.jobs[i],
  }));
  const scores = new EpochScores(services.oracleUrl);
  const stopView = startLiveView({
    client: chain.client,
    rewards: chain.address("RewardsManager"),
    billingUrl,
    scores,
    nodes,
    customers,
    history: log.history,
    chainNow: chain.now,
    genesis: chain.genesis,
    epochSeconds: opts.epochSeconds,
  });

  const eviction = await unstakeMidway(chain, opts, accounts.deployer, nodes, procs, log);
  // Two traced requests under load: one the host takes to the origin, one it serves from its cache.
  const frontDoor = services.frontDoors["gateway-1"];
  const probes = [await probe(frontDoor, `/live/traced-${Date.now()}`), await probe(frontDoor, "/static/16k")];
  await finishEpochs(chain, opts, { eviction, ...services }, { stopTraffic: traffic.stop, stopView }, procs);

  const rows = await load.done;
  const https = await services.https;
  const traced: TracedPath[] = [
    await tracedPath(tracer, probes[0], originLog(dir)),
    await tracedPath(tracer, probes[1]),
  ];
  const outcome = await checkPromises(chain, accounts, { epochs: opts.epochs, nodes, customers, scores, billingUrl });
  const cdn = await cdnOutcome(
    { nodes, epochs: opts.epochs, billingUrl, customerA: customers[0], yieldRows: outcome.yieldRows },
    { plan: load.plan, rows, probes, httpsRequests: https.on ? https.requests : 0 },
  );
  printSummary(outcome, { customers: accounts.customers, jobs: traffic.jobs, evictionMs: eviction.ms, dir });
  printCdn(cdn, opts.hosts, { paths: traced, spans: tracer.receiver.spans }, nodes);
  printHttps(https);
  const stargate = nodes.find((n) => n.role === "stargate")!;
  const behind = await printControlPlane(stargate.url, nodes, 1);
  if (behind.length > 0) throw new DevnetError(`not on configuration version 1 at the end: ${behind.join(", ")}`);
  checkOutcome(outcome, accounts.customers, traffic.jobs);
  checkCdn(cdn, services.dns.billable);
  // Dynamic placement by region (issue 20): spill and return, once the epochs' load is over.
  const gatewayUrls = Object.fromEntries(nodes.filter((n) => n.role === "gateway").map((n) => [n.name, n.url]));
  await showSpill({ stargateUrl: stargate.url, frontDoors: services.frontDoors, gatewayUrls }, log);
  // Edge Storage (issue 21): store, read back, repair after a host stops, and the storage lines in the open period.
  await showStorage({ dir, nodes, billingUrl, customer: customers[0], procs }, log);

  if (opts.keepRunning) {
    printEndpoints(chain.rpc, services);
    await new Promise(() => undefined);
  }
  return 0;
}

if (require.main === module) {
  runDevnet(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      // A broken step prints its message; anything else is a bug and prints its stack.
      console.error(`devnet: ${error instanceof DevnetError ? error.message : (error.stack ?? error)}`);
      process.exit(1);
    },
  );
}
