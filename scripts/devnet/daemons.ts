/**
 * The off-chain processes: the oracle, billing (one period from now until the last epoch ends), an edge-node daemon
 * per device (hosts register with a gateway, gateways report to the oracle and billing, the stargate sends
 * heartbeats) and the Console; then waits until every node is admitted and the gateways route to every host.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { getJson } from "./observe";
import type { Chain } from "./chain";
import { type Accounts, CHAIN_ID, type StepLog, TOKEN, waitFor } from "./common";
import type { Options } from "./options";
import { type Processes, freePort, tsNode } from "./processes";
import type { Device } from "./stakes";

export type Node = Device & { url: string };

export interface Services {
  oracleUrl: string;
  billingUrl: string;
  consoleUrl: string;
  nodes: Node[];
  /** The length of billing period 0, which ends when the last epoch does. */
  periodSeconds: number;
}

export async function startServices(
  run: { dir: string; opts: Options },
  chain: Chain,
  devices: Device[],
  accounts: Accounts,
  procs: Processes,
  log: StepLog,
): Promise<Services> {
  const { dir, opts } = run;
  const prices = writePrices(dir);
  const oracleUrl = `http://127.0.0.1:${await freePort()}`;
  const billingUrl = `http://127.0.0.1:${await freePort()}`;
  const common = [
    "--rpc",
    chain.rpc,
    "--addresses",
    chain.bookFile,
    "--confirmations",
    "0",
    "--poll-interval-ms",
    "250",
  ];
  procs.start(
    "oracle",
    process.execPath,
    [
      ...tsNode,
      "offchain/oracle/cli.ts",
      "serve",
      ...common,
      ...["--port", port(oracleUrl), "--db", join(dir, "oracle.db"), "--grace-seconds", "2", "--batch-size", "50"],
    ],
    { EDGE_ORACLE_KEYS: accounts.oracleKey },
  );
  // One billing period from now until the last epoch ends (when traffic stops): chain time runs ahead of the wall
  // clock by the setup's blocks, and periods go by the wall clock.
  const periodSeconds = chain.genesis + opts.epochs * opts.epochSeconds - (await chain.now()) + 2;
  const periodStart = Date.now();
  procs.start(
    "billing",
    process.execPath,
    [
      ...tsNode,
      "offchain/billing/cli.ts",
      "serve",
      ...common,
      ...["--port", port(billingUrl), "--db", join(dir, "billing.db"), "--prices", prices],
      ...["--period-seconds", String(periodSeconds), "--period-start", String(periodStart), "--grace-seconds", "3"],
    ],
    { EDGE_BILLING_BILLER_KEY: accounts.billerKey },
  );
  const nodes = await startNodes(devices, { dir, common, oracleUrl, billingUrl }, procs);
  // The Console: wallet users manage stakes and payments from a browser, through their own wallet.
  const consoleUrl = `http://127.0.0.1:${await freePort()}`;
  procs.start("console", process.execPath, [
    ...tsNode,
    "console/cli.ts",
    ...["--rpc", chain.rpc, "--addresses", chain.bookFile, "--port", port(consoleUrl)],
  ]);
  await waitUntilReady({ oracleUrl, billingUrl, consoleUrl, nodes, hosts: opts.hosts });
  log.step(`oracle ${oracleUrl}, billing ${billingUrl}, ${nodes.length} nodes admitted and routing`);
  log.step(
    `console ${consoleUrl} (a browser wallet on chain ${CHAIN_ID} at ${chain.rpc}; development accounts hold tokens)`,
  );
  procs.check();
  return { oracleUrl, billingUrl, consoleUrl, nodes, periodSeconds };
}

const port = (url: string) => new URL(url).port;

/** The price list: 0.5 token a job and 0.2 token per 1,000 rounds; 1 token free per period. */
function writePrices(dir: string): string {
  const prices = join(dir, "prices.json");
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
  return prices;
}

/** An edge-node daemon per device, each on its own port; hosts register with the gateways in turn. */
async function startNodes(
  devices: Device[],
  context: { dir: string; common: string[]; oracleUrl: string; billingUrl: string },
  procs: Processes,
): Promise<Node[]> {
  const { dir, common, oracleUrl, billingUrl } = context;
  const nodes: Node[] = [];
  for (const device of devices) nodes.push({ ...device, url: `http://127.0.0.1:${await freePort()}` });
  const gateways = nodes.filter((n) => n.role === "gateway");
  for (const [i, node] of nodes.entries()) {
    const roleArgs =
      node.role === "gateway"
        ? ["--oracle", oracleUrl, "--billing", billingUrl, "--report-interval-ms", "2000", "--usage-flush-ms", "1000"]
        : node.role === "stargate"
          ? ["--oracle", oracleUrl, "--heartbeat-interval-ms", "2000"]
          : ["--gateway", gateways[i % gateways.length].url];
    procs.start(
      node.name,
      process.execPath,
      [
        ...tsNode,
        "node/cli.ts",
        ...["--role", node.role, ...common, "--port", port(node.url)],
        ...["--data-dir", join(dir, node.name), ...roleArgs],
      ],
      { EDGE_NODE_DEVICE_KEY: node.key },
    );
  }
  return nodes;
}

async function waitUntilReady(services: Omit<Services, "periodSeconds"> & { hosts: number }): Promise<void> {
  const { oracleUrl, billingUrl, consoleUrl, nodes } = services;
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
      return routable === services.hosts;
    },
    60_000,
  );
  await waitFor("the console", async () => (await getJson(`${consoleUrl}/config.json`)).chainId === CHAIN_ID, 60_000);
}
