/**
 * Certificates benchmark (issue 19, D66): issuing and renewing N (100) certificates against Pebble through the real
 * path, written to bench/certs.json (`npm run bench:certs`):
 *
 * - the chain in this process (Hardhat, the protocol deployed, two gateways staked: the benchmarked one and an
 *   observer whose signed queries watch the service);
 * - the certificate service (offchain/certs, its own process, as `npm run certs -- serve` runs it) trusting this
 *   run's Pebble root;
 * - a whole gateway role (scripts/lib/gatewayRole.ts, createGateway in this process) with a sites file of N
 *   hostnames, --certs, --tls-port, --acme-directory/--acme-ca (Pebble) and --cert-sync-ms 250: its certificate
 *   loop orders every hostname (4 at a time) with acme-client, writes challenges to the service and answers
 *   Pebble's validation on its front door, which is Pebble's httpPort;
 * - Pebble (scripts/lib/pebble.ts) resolving every name through pebble-challtestsrv, which answers 127.0.0.1.
 *
 * Figures: `issue.seconds.p50/p90/max`: per certificate, from the first poll seeing its lease (the order under
 * way) to the first seeing it issued (polls every 50 ms); `issue.all.seconds`: from the gateway's start to
 * the last issued. Renewal uses the real clock, no injected time: Pebble issues certificates valid
 * `VALIDITY_SECONDS`, so they fall due (renewAt, two thirds of the lifetime) together; the gateway is stopped once
 * all are issued, the run waits until every renewAt has passed, and the same gateway (key, data directory) starts
 * again: `renewal.all.seconds` is from that start until the service holds a new certificate (fingerprint) for
 * every name. With N = 100 the keys are `issue.all100.seconds` and `renewal.all100.seconds`.
 *
 *   npm run bench:certs                     # N = 100; writes bench/certs.json
 *   CERTS_BENCH_COUNT=5 npm run bench:certs # a quick trial; prints, writes nothing
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { type CertificateEntry, signCertRequest } from "../../offchain/common/protocol/certs";
import { type GatewayRole, startGatewayRole } from "../lib/gatewayRole";
import { Daemon, freePort, metricValue } from "../lib/netDaemon";
import { startChallTestSrv, startPebble } from "../lib/pebble";
import { startChain } from "../lib/rolloutNet";

const ROOT = join(__dirname, "..", "..");
const COUNT = Number(process.env.CERTS_BENCH_COUNT ?? 100);
const FULL = COUNT === 100;
/** Long enough that no certificate expires before its renewal; short enough that they fall due within minutes. */
const VALIDITY_SECONDS = Number(process.env.CERTS_BENCH_VALIDITY ?? (FULL ? 900 : 60));
const POLL_MS = 50;
const GATEWAY_KEY = `0x${"c1".repeat(32)}` as Hex;
const OBSERVER_KEY = `0x${"c2".repeat(32)}` as Hex;
/** CERTS_BENCH_DEBUG=1: the gateway's warnings on stderr (failed orders and why). */
const warn = (obj: unknown, msg?: string) => console.error(`gateway: ${msg ?? ""} ${JSON.stringify(obj)}`);
const debugLog = { info() {}, debug() {}, warn, error: warn, child: () => debugLog };
const log = process.env.CERTS_BENCH_DEBUG ? (debugLog as never) : undefined;
const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

interface Seen {
  leased?: number;
  issued?: number;
  fingerprint?: string;
  renewAt?: number;
  notAfter?: number;
}

/** Watches the service as the observer gateway: when each domain is first seen leased and first seen issued. */
class Watcher {
  private readonly account = privateKeyToAccount(OBSERVER_KEY);

  constructor(
    private readonly url: string,
    private readonly domains: string[],
  ) {}

  /** Polls until every domain has a certificate other than `old` (its fingerprint before), or `timeoutMs`. */
  async until(old: Map<string, string>, timeoutMs: number): Promise<Map<string, Seen>> {
    const current = new Map<string, Seen>(this.domains.map((d) => [d, {}]));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = Date.now();
      for (const entry of await this.query([...old.values()])) {
        const seen = current.get(entry.domain)!;
        if (entry.leasedUntil && entry.leasedUntil > at && seen.leased === undefined) seen.leased = at;
        if (entry.status === "issued" && entry.fingerprint !== old.get(entry.domain) && seen.issued === undefined)
          Object.assign(seen, {
            issued: at,
            fingerprint: entry.fingerprint,
            renewAt: entry.renewAt,
            notAfter: entry.notAfter,
          });
      }
      const done = [...current.values()].filter((s) => s.issued !== undefined).length;
      if (done === this.domains.length) return current;
      if (Date.now() > deadline)
        throw new Error(`${done} of ${this.domains.length} certificates after ${timeoutMs / 1000} s`);
      await sleep(Math.max(0, POLL_MS - (Date.now() - at)));
    }
  }

  /** One signed query; `have` (fingerprints already seen) come back "current", without their keys. */
  private async query(have: string[]): Promise<CertificateEntry[]> {
    const body = { domains: this.domains, have };
    const headers = await signCertRequest(this.account, 31337, "certificate.query", "", body);
    const response = await fetch(`${this.url}/certificates/query`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (response.status !== 200) throw new Error(`query: ${response.status} ${await response.text()}`);
    return ((await response.json()) as { certificates: CertificateEntry[] }).certificates;
  }
}

function figures(prefix: string, seen: Map<string, Seen>, start: number, results: Record<string, number>) {
  const durations = [...seen.values()]
    .map((s) => ((s.issued ?? 0) - (s.leased ?? s.issued ?? 0)) / 1000)
    .sort((a, b) => a - b);
  const all = (Math.max(...[...seen.values()].map((s) => s.issued!)) - start) / 1000;
  const n = FULL ? "100" : String(COUNT);
  results[`${prefix}.p50.seconds`] = round(quantile(durations, 0.5));
  results[`${prefix}.p90.seconds`] = round(quantile(durations, 0.9));
  results[`${prefix}.max.seconds`] = round(durations[durations.length - 1]);
  results[`${prefix}.all${n}.seconds`] = round(all);
  results[`${prefix}.perSecond`] = round(seen.size / all);
  results[`${prefix}.leaseUnseen`] = [...seen.values()].filter((s) => s.leased === undefined).length;
}

/** The gateway's orders by outcome (since its start) and the service's failed orders (since its start). */
async function orderCounts(prefix: string, gateway: GatewayRole, service: string, results: Record<string, number>) {
  const text = await gateway.registry.metrics();
  for (const outcome of ["issued", "failed", "skipped"])
    results[`${prefix}.gatewayOrders.${outcome}`] = metricValue(text, "edge_gateway_acme_orders_total", { outcome });
  const serviceText = await (await fetch(`${service}/metrics`)).text();
  results[`${prefix}.serviceFailuresSoFar`] = metricValue(serviceText, "edge_cert_orders_total", { outcome: "failed" });
}

async function main(): Promise<void> {
  // Pebble and pebble-challtestsrv run in their own process groups: an interrupted run still ends them (on exit).
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
  const results: Record<string, number> = {
    "machine.cores": cpus().length,
    "machine.load1.start": round(loadavg()[0], 2),
    count: COUNT,
    validitySeconds: VALIDITY_SECONDS,
  };
  console.log(`${COUNT} certificates, validity ${VALIDITY_SECONDS} s, load ${loadavg()[0].toFixed(2)}`);
  const dir = mkdtempSync(join(tmpdir(), "edge-certs-bench-"));
  const closers: Array<() => Promise<unknown> | unknown> = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    const chain = await startChain(dir, [
      { role: "gateway", key: GATEWAY_KEY },
      { role: "gateway", key: OBSERVER_KEY },
    ]);
    closers.push(() => chain.rpcServer.close());
    const dns = await startChallTestSrv({ defaultIPv4: "127.0.0.1" });
    closers.push(() => dns.stop());
    const [httpPort, tlsPort] = [await freePort(), await freePort()];
    const pebble = await startPebble({ httpPort, dnsServer: dns.dnsServer, validitySeconds: VALIDITY_SECONDS });
    closers.push(() => pebble.stop());
    const rootFile = join(dir, "pebble-root.pem");
    writeFileSync(rootFile, await pebble.root());

    mkdirSync(join(dir, "certs"));
    const certsUrl = `http://127.0.0.1:${await freePort()}`;
    const args = ["serve", "--rpc", chain.rpc, "--addresses", chain.bookFile, "--confirmations", "0"];
    args.push("--poll-interval-ms", "250", "--port", new URL(certsUrl).port, "--trust", rootFile);
    args.push("--db", join(dir, "certs", "certs.db"), "--data-key-file", join(dir, "certs", "data.key"));
    args.push("--log-level", "warn", "--challenge-reads-per-minute", "100000");
    const node = { name: "certs", url: certsUrl, starts: 0 };
    const service = new Daemon(node, args, {}, join(dir, "certs.log"), "offchain/certs/cli.ts", "/health");
    service.start();
    closers.push(() => service.stop());
    await service.ready();

    const domains = Array.from({ length: COUNT }, (_, i) => `site-${i}.certs-bench.test`);
    const owner = privateKeyToAccount(OBSERVER_KEY).address;
    const sitesFile = join(dir, "sites.json");
    const sites = domains.map((hostname, i) => ({ id: `s${i}`, hostname, owner, origin: "http://127.0.0.1:9" }));
    writeFileSync(sitesFile, JSON.stringify({ sites }));
    const gatewayDir = join(dir, "gateway");
    mkdirSync(gatewayDir);
    const config = {
      dataDir: gatewayDir,
      sites: sitesFile,
      cdnPort: httpPort,
      tlsPort,
      certs: certsUrl,
      acmeDirectory: pebble.directory,
      acmeCa: pebble.caFile,
      certSyncMs: 250,
    };
    const watcher = new Watcher(certsUrl, domains);
    const none = new Map<string, string>();
    let gateway: GatewayRole | undefined;
    closers.push(() => gateway?.close());

    // Issue: every name from nothing.
    let start = Date.now();
    gateway = await startGatewayRole({ key: GATEWAY_KEY, config, log });
    const issued = await watcher.until(none, 20 * 60_000).catch((error: Error) => {
      throw new Error(`${error.message}\nservice:\n${service.output()}\npebble:\n${pebble.output().slice(-3000)}`);
    });
    figures("issue", issued, start, results);
    await orderCounts("issue", gateway, service.node.url, results);
    if (process.env.CERTS_BENCH_DEBUG) console.log(`pebble:\n${pebble.output()}\nservice:\n${service.output()}`);
    await gateway.close();
    gateway = undefined;
    console.log(`issued ${COUNT} in ${results[`issue.all${FULL ? 100 : COUNT}.seconds`]} s; waiting until all are due`);

    // Renewal: once every certificate's renewAt has passed (none expired), the same gateway starts again.
    const due = Math.max(...[...issued.values()].map((s) => s.renewAt!));
    const firstExpiry = Math.min(...[...issued.values()].map((s) => s.notAfter!));
    await sleep(Math.max(0, due - Date.now()) + 1_000);
    results["renewal.secondsBeforeFirstExpiry"] = round((firstExpiry - Date.now()) / 1000, 1);
    const old = new Map([...issued].map(([domain, s]) => [domain, s.fingerprint!]));
    start = Date.now();
    gateway = await startGatewayRole({ key: GATEWAY_KEY, config, log });
    const renewed = await watcher.until(old, 20 * 60_000);
    figures("renewal", renewed, start, results);
    await orderCounts("renewal", gateway, service.node.url, results);
    // Renewed only after its own certificate had expired (0 when the validity leaves the renewal time enough).
    results["renewal.afterExpiry"] = [...renewed].filter(([d, s]) => s.issued! > issued.get(d)!.notAfter!).length;
    results["machine.load1.end"] = round(loadavg()[0], 2);
  } finally {
    for (const closer of closers.reverse()) await closer();
  }
  const sorted = Object.fromEntries(Object.entries(results).sort(([a], [b]) => a.localeCompare(b)));
  console.table(sorted);
  if (!FULL) return console.log("(a trial with fewer than 100 certificates: bench/certs.json not written)");
  writeFileSync(join(ROOT, "bench", "certs.json"), JSON.stringify(sorted, null, 2) + "\n");
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
