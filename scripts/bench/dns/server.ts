/**
 * bench:dns's server process (D60): the stargate's DNS server (node/roles/stargate/dns.ts createDns) serving the
 * fixture's zone and site names on 127.0.0.1:<DNS_BENCH_PORT>, alone in its process so the benchmark can pin it to
 * one core (`taskset -c 1`). The per-client limits (query buckets and response rate limiting) are lifted: dnsperf
 * is one client sending the whole load, and Knot runs without RRL (its default).
 * Prints {"msg":"dns bench server listening","port":N} when it answers.
 */
import { Registry } from "prom-client";

import type { StargateConfig, StargateContext } from "../../../node/context";
import { createDns } from "../../../node/roles/stargate/dns";
import { benchCatalogue, benchConfig, SITE_TTL } from "./fixture";

const silent = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, fatal() {}, child: () => silent };

async function main(): Promise<void> {
  const port = Number(process.env.DNS_BENCH_PORT);
  const config = benchConfig();
  const catalogue = benchCatalogue();
  let billed = 0n;
  const ctx = {
    log: silent,
    metrics: { registry: new Registry() },
    signer: { account: { address: "0x00000000000000000000000000000000000000d5" }, chainId: 31337 },
  } as unknown as StargateContext;
  const dns = createDns(
    ctx,
    { listenHost: "127.0.0.1", dnsPort: port, dnsSiteTtl: SITE_TTL, dnsNameserver: "ns.edge.test" } as StargateConfig,
    { config: () => config, catalogue: () => catalogue, bill: (_owner, n) => void (billed += n) },
    { limits: { perIpPerSecond: 1e9, perIpBurst: 1e9, rrlPerSecond: 1e9, rrlBurst: 1e9, billedPerZonePerSecond: 1e9 } },
  );
  if (!dns) throw new Error("no DNS server without a port");
  await dns.start();
  console.log(JSON.stringify({ msg: "dns bench server listening", port }));
  process.on("SIGTERM", () => {
    console.log(JSON.stringify({ msg: "dns bench server stopping", billed: String(billed), ...dns.status() }));
    void dns.stop().then(() => process.exit(0));
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
