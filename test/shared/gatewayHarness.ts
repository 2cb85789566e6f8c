/**
 * A gateway's routing core without a chain: HostRegistry (admission from the test), the job queue and the
 * hosts' links on a real HTTP server on 127.0.0.1, and hosts that connect to it with real GatewayLinks (HTTP/2
 * over the upgraded socket), each answering jobs with the test's handler or a real host's HostJobs.
 */
import { type Server, createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import type { LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { HostRegistry, routeLinks } from "../../node/roles/gateway/hosts";
import { type HostLink, HostLinks } from "../../node/roles/gateway/links";
import { JobQueue } from "../../node/roles/gateway/queue";
import { GatewayLink, type JobHandler } from "../../node/roles/host/link";

export const CHAIN = 31337;
export const silentLog = { info() {}, warn() {}, error() {}, debug() {}, child: () => silentLog } as never;

export interface GatewayHarness {
  url: string;
  account: LocalAccount;
  hosts: HostRegistry;
  queue: JobQueue<HostLink>;
  links: HostLinks;
  server: Server;
  /** Devices the "chain" admits (all when undefined). */
  admitted: Set<string> | undefined;
  close(): Promise<void>;
}

export async function startGatewayHarness(
  options: {
    queueMax?: number;
    queueWaitMs?: number;
    pingMs?: number;
    settingsTimeoutMs?: number;
    key?: `0x${string}`;
  } = {},
): Promise<GatewayHarness> {
  const account = privateKeyToAccount(options.key ?? `0x${"51".repeat(32)}`);
  const harness = { admitted: undefined } as GatewayHarness;
  const hosts = new HostRegistry({
    signer: { account, chainId: CHAIN },
    log: silentLog,
    chainAdmits: (device) => harness.admitted === undefined || harness.admitted.has(device),
    stale: () => false,
    serving: () => true,
  });
  const queue = new JobQueue<HostLink>(
    { maxLength: options.queueMax ?? 1_000, maxWaitMs: options.queueWaitMs ?? 5_000 },
    (link) => hosts.usable(link),
    (except, eligible) => hosts.anyRoutable(except, eligible),
  );
  const links = new HostLinks(
    { log: silentLog },
    routeLinks(hosts, queue),
    options.pingMs ?? 1_000,
    options.settingsTimeoutMs,
  );
  const server = createServer((request, response) => {
    if (request.url === "/status") return response.end(JSON.stringify({ device: account.address }));
    response.statusCode = 404;
    response.end();
  });
  links.attach(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return Object.assign(harness, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    account,
    hosts,
    queue,
    links,
    server,
    async close() {
      hosts.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** A host device key for tests: `0x` and 32 times the byte `n`. */
export const hostAccount = (n: number) => privateKeyToAccount(`0x${n.toString(16).padStart(2, "0").repeat(32)}`);

/** Connects a host's link to the harness and waits until the gateway routes to it. */
export async function connectHost(
  gateway: GatewayHarness,
  account: LocalAccount,
  handler: JobHandler,
  capacity = 4,
): Promise<GatewayLink> {
  const link = new GatewayLink(
    { signer: { account, chainId: CHAIN }, log: silentLog },
    gateway.url,
    { capacity, publicUrl: () => "http://127.0.0.1:9", pingMs: 1_000, minBackoffMs: 20, maxBackoffMs: 200 },
    handler,
  );
  await link.want();
  await waitUntil(`host ${account.address} routable`, () =>
    gateway.hosts.routable().some(([host]) => host === account.address),
  );
  return link;
}

export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Asks the gateway for a host link with `registration` (base64url); its refusal (status and JSON body). */
export function upgradeRefusal(
  url: string,
  registration: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${url}/hosts/connect`, {
      headers: { connection: "upgrade", upgrade: "edge-jobs/1", "x-edge-registration": registration },
    });
    request.on("upgrade", (_res, socket) => {
      socket.destroy();
      reject(new Error("the gateway accepted the link"));
    });
    request.on("response", (response) => {
      let text = "";
      response.on("data", (chunk) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode!, body: JSON.parse(text) }));
    });
    request.on("error", reject);
    request.end();
  });
}
