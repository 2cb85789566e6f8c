/**
 * The off-chain processes: the oracle, billing (one period from now until the last epoch ends), the demo site's
 * origin, an edge-node daemon per device (hosts link to a gateway with their capacity, gateways report to the
 * oracle and billing and open a front door for the site, the stargate sends heartbeats) and the Console; waits
 * until every node is admitted, the gateways route to every host and their front doors are open; then moves the
 * chain on to just before genesis and starts billing.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { SITE, capacityOf, gatewayOf, startOrigin, writeSites } from "./cdn";
import type { Chain } from "./chain";
import { TEAM_USER, publishInitialConfig, showBlocklist, waitForVersion, writeUsers } from "./control";
import { type DnsShown, demoZone, showDns } from "./dns";
import {
  type Certificates,
  type HttpsShown,
  certsHealthy,
  gatewayCertArgs,
  showHttps,
  startCertificates,
} from "./https";
import { type Accounts, CHAIN_ID, type StepLog, TOKEN, waitFor } from "./common";
import type { Options } from "./options";
import { type Processes, freePort, tsNode } from "./processes";
import { getJson } from "./observe";
import type { Device } from "./stakes";

export type Node = Device & { url: string };

export interface Services {
  oracleUrl: string;
  billingUrl: string;
  consoleUrl: string;
  nodes: Node[];
  /** The demo site's origin. */
  originUrl: string;
  /** Each gateway's front door for sites, by gateway name. */
  frontDoors: Record<string, string>;
  /** The length of billing period 0, which ends when the last epoch does. */
  periodSeconds: number;
  /** Milliseconds from the Network API call to a blocklist rule refused at each front door, by gateway name. */
  blocked: Record<string, number>;
  /** What dig showed of Edge DNS (dns.ts). */
  dns: DnsShown;
  /** Pebble and the certificate service, or why HTTPS is off (https.ts). */
  certs: Certificates;
  /** Resolves once every gateway served the site over HTTPS (checked while the devnet runs on). */
  https: Promise<HttpsShown>;
}

/**
 * Edge Storage's repair at the gateways (storage.ts): a host unlinked for 2 s has lost its fragments, and a round
 * runs every 500 ms (the defaults, 60 s and 5 s, are a network's). The grace leaves the storage step time to see the
 * loss in the gateway's list before the repair.
 */
export const STORAGE_REPAIR = { graceMs: 2_000, roundMs: 500 };

/** Two simulated regions (D68): gateways alternate between them by address (127.0.0.11, .12, ...). */
export const DEVNET_REGIONS = ["DE/eu-central", "US/us-east"];

export async function startServices(
  run: { dir: string; opts: Options; tracingEnv: Record<string, string> },
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
  const originUrl = await startOrigin(procs);
  const sites = writeSites(dir, accounts.customers[0], originUrl);
  const users = await writeUsers(dir);
  const grpcPort = await freePort();
  const dnsPort = await freePort();
  const cdnPort = await freePort();
  // HTTPS (issue 19): Pebble validates on the front doors' port at the address Edge DNS names.
  const certs = await startCertificates({ dir, common, dnsPort, cdnPort, log }, procs);
  const nodes = await startNodes(
    devices,
    {
      dir,
      common,
      oracleUrl,
      billingUrl,
      users: users.file,
      grpcPort,
      dnsPort,
      cdnPort,
      certArgs: gatewayCertArgs(certs),
      configKey: accounts.configKey,
      env: run.tracingEnv,
    },
    procs,
  );
  // Configuration version 1 (the demo site), anchored and uploaded as config:publish does; gateways and hosts get
  // it over the stargate's stream, and gateways open their front doors with it.
  const stargate = nodes.find((n) => n.role === "stargate")!;
  const zone = demoZone(accounts.customers[0].address);
  const configHash = await publishInitialConfig(chain, accounts, stargate.url, sites, [zone]);
  log.step(`configuration version 1 (${configHash.slice(0, 10)}…) anchored in ConfigRegistry and on the stargate`);
  // The Console: wallet users manage stakes and payments from a browser, through their own wallet; its map of
  // regions reads the stargate's public catalogue.
  const consoleUrl = `http://127.0.0.1:${await freePort()}`;
  procs.start("console", process.execPath, [
    ...tsNode,
    "console/cli.ts",
    ...["--rpc", chain.rpc, "--addresses", chain.bookFile, "--port", port(consoleUrl)],
    ...["--stargate-url", stargate.url],
  ]);
  const frontDoors = await waitUntilReady({ oracleUrl, consoleUrl, nodes, hosts: opts.hosts });
  await waitFor("the certificate service", () => certsHealthy(certs), 60_000);
  const served = nodes.filter((n) => n.role !== "stargate").map((n) => n.address);
  await waitForVersion(stargate.url, served, 1);
  log.step(`every gateway and host acknowledged configuration version 1 over the stargate's gRPC stream`);
  // Billable use starts here (the blocklist's probes, Edge DNS's zone queries): billing's first period does too.
  const usageFrom = Date.now();
  const blocked = await showBlocklist(stargate.url, users.password, SITE.hostname, frontDoors, log);
  const gateways = nodes
    .filter((n) => n.role === "gateway")
    .map((g) => ({ name: g.name, address: g.address, ip: new URL(g.url).hostname, url: g.url }));
  const dns = await showDns(
    { dnsPort, stargateUrl: stargate.url, password: users.password, site: SITE.hostname, log },
    gateways,
  );
  // Everything runs: on to just before genesis, leaving time for billing and the traffic to start.
  await chain.advanceTo(chain.genesis - LEAD_SECONDS);
  const periodSeconds = await startBilling(
    { dir, opts, common, billingUrl, prices, usageFrom },
    chain,
    accounts,
    procs,
  );
  // The gateways ordered the site's certificate once they had the site; the HTTPS check needs billing (the site
  // owner's credit) and runs on while the devnet does (awaited at the end).
  const https = showHttps(certs, gateways, SITE.hostname, log);
  https.catch(() => undefined);
  log.step(`oracle ${oracleUrl}, billing ${billingUrl}, ${nodes.length} nodes admitted and routing`);
  log.step(
    `site demo.edge.test (customer A's; origin ${originUrl}) at the front doors ` +
      Object.entries(frontDoors)
        .map(([name, url]) => `${name} ${url}`)
        .join(", "),
  );
  log.step(
    `console ${consoleUrl} (a browser wallet on chain ${CHAIN_ID} at ${chain.rpc}; development accounts hold tokens; ` +
      `the map of regions, no wallet needed, also at ${consoleUrl}/api/regions)`,
  );
  procs.check();
  log.step(`Network API ${stargate.url}/api: user "${TEAM_USER}", password ${users.password} (this run's only)`);
  return { oracleUrl, billingUrl, consoleUrl, nodes, periodSeconds, originUrl, frontDoors, blocked, dns, certs, https };
}

const port = (url: string) => new URL(url).port;

/**
 * Billing, with one period from the first billable use until the last epoch ends (when traffic stops): chain time
 * runs ahead of the wall clock by the setup's blocks and the move forward, and periods go by the wall clock.
 * Billing starts only now, so that its period ends with the epochs; the usage batches queued before wait in the
 * senders' outboxes, and their times fall in period 0 (a batch timed before the first period is refused and
 * dropped: the stargate's batch of A's zone queries was, when the chain's move forward took a while, D67).
 * Returns the period's length.
 */
async function startBilling(
  run: { dir: string; opts: Options; common: string[]; billingUrl: string; prices: string; usageFrom: number },
  chain: Chain,
  accounts: Accounts,
  procs: Processes,
): Promise<number> {
  const { opts, billingUrl } = run;
  const sinceUsage = Math.ceil((Date.now() - run.usageFrom) / 1000);
  const periodSeconds = chain.genesis + opts.epochs * opts.epochSeconds - (await chain.now()) + 2 + sinceUsage;
  const periodStart = Date.now() - sinceUsage * 1000;
  procs.start(
    "billing",
    process.execPath,
    [
      ...tsNode,
      "offchain/billing/cli.ts",
      "serve",
      ...run.common,
      ...["--port", port(billingUrl), "--db", join(run.dir, "billing.db"), "--prices", run.prices],
      ...["--period-seconds", String(periodSeconds), "--period-start", String(periodStart), "--grace-seconds", "3"],
    ],
    { EDGE_BILLING_BILLER_KEY: accounts.billerKey },
  );
  await waitFor("billing", async () => (await getJson(`${billingUrl}/health`)).ok, 60_000);
  return periodSeconds;
}
/** Chain seconds left before genesis once every process runs: billing's and Newton's start fit in them. */
const LEAD_SECONDS = 12;

/**
 * The price list: 0.5 token a job and 0.2 token per 1,000 rounds; for sites 0.1 token per 1,000 requests and 1 token
 * per 10^9 bytes sent; for Edge Storage 0.1 token per 1,000 requests and 0.01 token per 10^9 byte-hours (a GB-hour);
 * 1 token free per period. Billing refuses a batch with usage it has no price for.
 */
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
        cdn: {
          requests: { unitSize: "1000", unitPrice: (TOKEN / 10n).toString() },
          egressBytes: { unitSize: "1000000000", unitPrice: TOKEN.toString() },
        },
        dns: { queries: { unitSize: "1000000", unitPrice: ((TOKEN * 4n) / 10n).toString() } },
        storage: {
          requests: { unitSize: "1000", unitPrice: (TOKEN / 10n).toString() },
          byteHours: { unitSize: "1000000000", unitPrice: (TOKEN / 100n).toString() },
        },
      },
    }),
  );
  return prices;
}

/** An edge-node daemon per device, each on its own port; hosts link to the gateways in turn (cdn.ts). */
async function startNodes(
  devices: Device[],
  context: {
    dir: string;
    common: string[];
    oracleUrl: string;
    billingUrl: string;
    /** The stargate's configuration key (EDGE_NODE_CONFIG_KEY). */
    configKey: string;
    /** The stargate's Network API users file. */
    users: string;
    /** The stargate's configuration stream (gRPC) port, which gateways and hosts subscribe to. */
    grpcPort: number;
    /** The stargate's Edge DNS port (UDP and TCP). */
    dnsPort: number;
    /** Every gateway's front door port, each on its own loopback address (127.0.0.11, .12, ...): DNS names the address. */
    cdnPort: number;
    /** Gateways' HTTPS flags (https.ts): none when HTTPS is off. */
    certArgs: string[];
    /** Gateways' and hosts' tracing (trace.ts). */
    env: Record<string, string>;
  },
  procs: Processes,
): Promise<Node[]> {
  const { dir, common, oracleUrl, billingUrl, users, grpcPort, dnsPort, cdnPort } = context;
  const stargates = ["--stargates", `127.0.0.1:${grpcPort}`];
  const nodes: Node[] = [];
  const regions = new Map<string, string>();
  let gateways = 0;
  for (const device of devices) {
    // Gateways on addresses of their own, so that an A record reaches one; the rest on 127.0.0.1.
    if (device.role === "gateway") regions.set(device.name, DEVNET_REGIONS[gateways % DEVNET_REGIONS.length]);
    const ip = device.role === "gateway" ? `127.0.0.${11 + gateways++}` : "127.0.0.1";
    nodes.push({ ...device, url: `http://${ip}:${await freePort()}` });
  }
  const url = (name: string) => nodes.find((n) => n.name === name)!.url;
  // A host is in its gateway's region; the stargate in the first.
  const regionOf = (node: Node) =>
    node.role === "gateway"
      ? regions.get(node.name)!
      : node.role === "host"
        ? regions.get(gatewayOf(nodes, node.name))!
        : DEVNET_REGIONS[0];
  for (const node of nodes) {
    const roleArgs =
      node.role === "gateway"
        ? [
            ...["--oracle", oracleUrl, "--billing", billingUrl, "--report-interval-ms", "2000"],
            ...["--usage-flush-ms", "1000", "--cdn-port", String(cdnPort), ...stargates],
            ...["--listen-host", new URL(node.url).hostname, ...context.certArgs],
            ...["--storage-repair-grace-ms", String(STORAGE_REPAIR.graceMs)],
            ...["--storage-repair-ms", String(STORAGE_REPAIR.roundMs)],
          ]
        : node.role === "stargate"
          ? [
              ...["--oracle", oracleUrl, "--heartbeat-interval-ms", "2000", "--grpc-port", String(grpcPort)],
              ...["--users", users, "--anchor-interval-ms", "5000", "--health-interval-ms", "2000"],
              ...["--dns-port", String(dnsPort), "--billing", billingUrl, "--usage-flush-ms", "1000"],
            ]
          : [
              ...stargates,
              "--gateway",
              url(gatewayOf(nodes, node.name)),
              "--capacity",
              String(capacityOf(node.name)),
              "--allow-private-origins",
              "true",
            ];
    procs.start(
      node.name,
      process.execPath,
      [
        ...tsNode,
        "node/cli.ts",
        ...["--role", node.role, ...common, "--port", port(node.url)],
        ...["--data-dir", join(dir, node.name), "--region", regionOf(node), ...roleArgs],
      ],
      {
        EDGE_NODE_DEVICE_KEY: node.key,
        ...(node.role === "stargate" ? { EDGE_NODE_CONFIG_KEY: context.configKey } : context.env),
      },
    );
  }
  return nodes;
}

/** Waits for every service but billing; returns each gateway's front door, by name. */
async function waitUntilReady(
  services: Pick<Services, "oracleUrl" | "consoleUrl" | "nodes"> & { hosts: number },
): Promise<Record<string, string>> {
  const { oracleUrl, consoleUrl, nodes } = services;
  await waitFor("the oracle", async () => (await getJson(`${oracleUrl}/health`)).ok, 60_000);
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
  const frontDoors: Record<string, string> = {};
  for (const g of nodes.filter((n) => n.role === "gateway"))
    frontDoors[g.name] = await waitFor(
      `${g.name}'s front door`,
      async () => (await getJson(`${g.url}/status`)).gateway.frontDoor as string | undefined,
      30_000,
    );
  return frontDoors;
}
