/**
 * A CDN benchmark host, in its own process: the real job handler (HostJobs), cache (HostCache with the daemon's
 * default tiers, 64 MiB of memory and 1 GiB of disk in a temporary directory) and origin fetcher, linked to the
 * gateway at `--gateway` by the real GatewayLink with `--capacity` jobs at once (the device key is 32 times the
 * byte `--key`). For the gateway hop's baseline the same handler also serves a plain local HTTP/2 (h2c) server
 * of its own, `direct`, which takes the job requests the gateway would send (x-edge-* headers) without a gateway.
 *
 *   node -r ts-node/register/transpile-only scripts/bench/cdn/host.ts --gateway http://127.0.0.1:N --capacity 16
 *
 * Prints {"device": address, "direct": url} on its first line once the gateway routes to it. Exits on SIGTERM.
 */
import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Counter } from "prom-client";
import { privateKeyToAccount } from "viem/accounts";

import { HostCache } from "../../../node/roles/host/cache";
import { HostJobs } from "../../../node/roles/host/jobs";
import { GatewayLink } from "../../../node/roles/host/link";
import { createOriginFetcher } from "../../../node/roles/host/origin";
import { WorkTracker } from "../../../node/workTracker";
import { initTracing } from "../../../offchain/common/tracing";
import { BENCH_CHAIN, benchLog, listen } from "./common";

const MB = 1024 * 1024;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      gateway: { type: "string" },
      capacity: { type: "string", default: "16" },
      key: { type: "string", default: "31" },
    },
  });
  if (!values.gateway) throw new Error("--gateway is required");
  const byte = Number(values.key).toString(16).padStart(2, "0");
  const account = privateKeyToAccount(`0x${byte.repeat(32)}`);
  const signer = { account, chainId: BENCH_CHAIN };
  // As the daemon without an OTLP endpoint: trace context carried, no spans exported.
  const tracing = initTracing({ serviceName: "edge-host", env: {} });
  const dir = mkdtempSync(join(tmpdir(), "edge-cdn-bench-host-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  const origin = createOriginFetcher({ allowPrivateOrigins: true });
  const cache = new HostCache({ origin, dir, memoryBytes: 64 * MB, diskBytes: 1024 * MB, log: benchLog });
  let link: GatewayLink | undefined;
  const jobs = new HostJobs(
    {
      signer,
      log: benchLog,
      work: new WorkTracker(),
      tracing,
      serving: () => true,
      metrics: { jobs: new Counter({ name: "jobs", help: "jobs", labelNames: ["outcome"] as const, registers: [] }) },
    },
    { cache, memoryBytes: 64 * MB, tallies: null, gateway: () => link?.gatewayDevice ?? null, maxJobRounds: 1_000 },
  );
  link = new GatewayLink(
    { signer, log: benchLog },
    values.gateway,
    { capacity: Number(values.capacity), publicUrl: () => "http://127.0.0.1:9" },
    (request, response) => jobs.handle(request, response),
  );
  const direct = http2.createServer((request, response) => jobs.handle(request, response));
  const directUrl = await listen(direct);
  await link.want();
  if (!link.connected) throw new Error(`could not link to the gateway: ${link.status().lastError}`);
  console.log(JSON.stringify({ device: account.address, direct: directUrl }));
}

process.on("SIGTERM", () => process.exit(0));
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
