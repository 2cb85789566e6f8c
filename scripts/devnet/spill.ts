/**
 * Dynamic placement on the devnet (issue 20, D71): the configuration's regions table places clients by address
 * (127.0.1.0/24 in DE/eu-central, 127.0.2.0/24 in US/us-east: `dig -b` picks the source), and the dynamic site
 * `fast.edge.test` is answered with the client's region's gateway (gateway-1 on 127.0.0.11 for DE, gateway-2 on
 * 127.0.0.12 for US). Then no-store requests to gateway-1's front door keep its queue over the site's `queueDepth`:
 * the stargate's probes read the queue from gateway-1's /ready (x-edge-load), and DE's clients are answered with
 * gateway-2 (spill) while US's are not moved. Once the load stops, DE's clients come back to gateway-1, no sooner
 * than `holdMs` after its queue fell below the return level (return).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { request } from "undici";

import type { NetworkConfig } from "../../offchain/common/protocol";
import { DevnetError, type StepLog, waitFor } from "./common";

const run = promisify(execFile);

export const DYNAMIC_SITE = { id: "fast", hostname: "fast.edge.test" };
/** Spill while more than 8 jobs wait at the region's gateways; back once under 4 for 3 s (p99 set out of reach). */
export const DYNAMIC_PLACEMENT = {
  mode: "dynamic" as const,
  queueDepth: 8,
  p99Ms: 600_000,
  returnBelow: 0.5,
  holdMs: 3_000,
};
/** Where clients are, by source address, and the latency between the two regions. */
export const DEVNET_CLIENT_REGIONS: NonNullable<NetworkConfig["regions"]> = {
  clients: [
    { range: "127.0.1.0/24", region: "DE/eu-central" },
    { range: "127.0.2.0/24", region: "US/us-east" },
  ],
  latency: [
    { from: "DE/eu-central", to: "US/us-east", ms: 90 },
    { from: "US/us-east", to: "DE/eu-central", ms: 90 },
  ],
};
const DE_CLIENT = "127.0.1.1";
const US_CLIENT = "127.0.2.1";
/** Requests kept in flight at gateway-1: several times its hosts' slots, so jobs queue. */
const CONCURRENCY = 48;

export interface SpillShown {
  before: { de: string[]; us: string[] };
  /** How long after the load started DE's clients were answered with gateway-2, and gateway-1's queue then. */
  spilledAfterMs: number;
  queueAtSpill: number;
  usDuringSpill: string[];
  /** How long after the load stopped DE's clients were answered with gateway-1 again. */
  returnedAfterMs: number;
}

/** `dig -b <source> @127.0.0.1 -p <port> <name> A +short`: the addresses, sorted. */
async function digFrom(source: string, port: number, name: string): Promise<string[]> {
  const args = ["-b", source, "@127.0.0.1", "-p", String(port), name, "A", "+short", "+tries=1", "+time=2"];
  const { stdout } = await run("dig", args, { timeout: 10_000 });
  return stdout
    .split("\n")
    .filter((line) => /^\d+\.\d+\.\d+\.\d+$/.test(line.trim()))
    .sort();
}

async function json(url: string): Promise<Record<string, unknown>> {
  const response = await request(url);
  return (await response.body.json()) as Record<string, unknown>;
}

/** Runs the spill and return on the devnet's stargate and gateways (needs dig). */
export async function showSpill(
  context: { stargateUrl: string; frontDoors: Record<string, string>; gatewayUrls: Record<string, string> },
  log: StepLog,
): Promise<SpillShown> {
  const status = await json(`${context.stargateUrl}/status`);
  const port = ((status.stargate as Record<string, unknown>).dns as { port: number }).port;
  const site = DYNAMIC_SITE.hostname;
  const [gw1, gw2] = ["gateway-1", "gateway-2"].map((g) => new URL(context.frontDoors[g]).hostname);
  const before = { de: await digFrom(DE_CLIENT, port, site), us: await digFrom(US_CLIENT, port, site) };
  if (before.de.join() !== gw1 || before.us.join() !== gw2)
    throw new DevnetError(`${site} before any load: DE's client got ${before.de}, US's ${before.us} (expected ${gw1}, ${gw2})`); // prettier-ignore

  let stop = false;
  let sent = 0;
  const worker = async () => {
    while (!stop) {
      sent += 1;
      const response = await request(`${context.frontDoors["gateway-1"]}/live/spill-${sent}`, {
        headers: { host: site },
        headersTimeout: 60_000,
      }).catch(() => undefined);
      await response?.body.dump();
    }
  };
  const loadStarted = Date.now();
  const workers = Array.from({ length: CONCURRENCY }, worker);
  let queueAtSpill = 0;
  let usDuringSpill: string[] = [];
  try {
    await waitFor(
      `DE's clients of ${site} answered with gateway-2 while gateway-1's queue is over ${DYNAMIC_PLACEMENT.queueDepth}`,
      async () => {
        if ((await digFrom(DE_CLIENT, port, site)).join() !== gw2) return undefined;
        queueAtSpill = ((await json(`${context.gatewayUrls["gateway-1"]}/status`)).load as { queueDepth: number }).queueDepth; // prettier-ignore
        usDuringSpill = await digFrom(US_CLIENT, port, site);
        return true;
      },
      60_000,
    );
  } finally {
    stop = true;
  }
  // The hold runs from when gateway-1's load falls, which starts here (no new request is sent); the last requests
  // in flight may finish well after it on a loaded machine, so the return is timed from here.
  const loadStopped = Date.now();
  const spilledAfterMs = loadStopped - loadStarted;
  await Promise.all(workers);
  if (usDuringSpill.join() !== gw2)
    throw new DevnetError(`US's clients were moved during DE's spill: ${usDuringSpill}`);
  await waitFor(`DE's clients of ${site} answered with gateway-1 again`, async () => {
    return (await digFrom(DE_CLIENT, port, site)).join() === gw1 || undefined;
  }, 60_000); // prettier-ignore
  const returnedAfterMs = Date.now() - loadStopped;
  if (returnedAfterMs < DYNAMIC_PLACEMENT.holdMs)
    throw new DevnetError(`${site} returned to DE ${returnedAfterMs} ms after the load stopped, before its hold (${DYNAMIC_PLACEMENT.holdMs} ms)`); // prettier-ignore
  log.step(
    `dynamic placement: ${site} answered DE's clients with gateway-1 (${gw1}) and US's with gateway-2 (${gw2}); ` +
      `${CONCURRENCY} requests in flight at gateway-1 spilled DE's clients to gateway-2 after ${spilledAfterMs} ms ` +
      `(gateway-1's queue ${queueAtSpill}; US's clients not moved), and they returned ${returnedAfterMs} ms after ` +
      `the load stopped (hold ${DYNAMIC_PLACEMENT.holdMs} ms)`,
  );
  return { before, spilledAfterMs, queueAtSpill, usDuringSpill, returnedAfterMs };
}
