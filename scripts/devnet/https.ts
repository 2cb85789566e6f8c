/**
 * HTTPS on the devnet (issue 19, D67): the site is served over HTTPS at every gateway with a certificate ordered
 * from Pebble (Let's Encrypt's test ACME server, Debian's `pebble`) through the certificate service.
 *
 * - Pebble resolves names through the stargate's Edge DNS (`-dnsserver`) and validates HTTP-01 on the gateways'
 *   front-door port (`httpPort` = `--cdn-port`): Edge DNS names the serving gateways (127.0.0.11, .12), so the
 *   challenge lands at whichever gateway it names, which answers it from the service.
 * - The certificate service (`npm run certs`, its own process, `certs.log`) holds challenges, leases and
 *   certificates; it checks chains against Pebble's root (`--trust`), and backs a failing domain off from 5 s (a
 *   first order placed before Edge DNS names a gateway fails; the production default of 60 s would outlast a short
 *   run).
 * - Both gateways order (`--acme-directory`): the service's lease lets one order at a time, the other waits for the
 *   certificate; both fetch it sealed to their device key and serve it by SNI on `--tls-port`.
 *
 * Without pebble (not installed), the devnet runs without HTTPS and says so. `showHttps` waits until curl, trusting
 * only Pebble's root, gets the site over HTTPS from each gateway's address, and reads the service's
 * `edge_cert_days_to_expiry` for the site.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type PeerCertificate, connect } from "node:tls";
import { promisify } from "node:util";

import { PEBBLE, type Pebble, pebbleInstalled, startPebble } from "../lib/pebble";
import { DevnetError, type StepLog, waitFor } from "./common";
import { getJson } from "./observe";
import { type Processes, freePort, tsNode } from "./processes";

const run = promisify(execFile);

/** What the devnet's gateways get for HTTPS, or why there is none. */
export type Certificates =
  | { on: false; reason: string }
  | {
      on: true;
      /** The certificate service. */
      url: string;
      /** Every gateway's HTTPS front door port, on its own loopback address (as --cdn-port). */
      tlsPort: number;
      /** Pebble's ACME directory and the CA its own listener's certificate verifies to (--acme-ca). */
      directory: string;
      acmeCa: string;
      /** Pebble's root (PEM file): what issued chains verify to; the service's --trust and curl's --cacert. */
      rootFile: string;
    };

/** A failing domain's first backoff at the devnet's service (doubling up to an hour). */
const BACKOFF_SECONDS = 5;
/** How often each gateway syncs certificates and places due orders. */
const CERT_SYNC_MS = 1000;

/**
 * Starts Pebble (validating on `cdnPort`, resolving through the stargate's Edge DNS on `dnsPort`) and the
 * certificate service; both must run before the gateways, which take their URLs as flags. Without pebble: HTTPS off.
 */
export async function startCertificates(
  run: { dir: string; common: string[]; dnsPort: number; cdnPort: number; log: StepLog },
  procs: Processes,
): Promise<Certificates> {
  const { dir, log } = run;
  if (!pebbleInstalled()) {
    const reason = `pebble is not installed (no ${PEBBLE}; Debian: apt-get install pebble, see README's Prerequisites)`;
    log.step(`HTTPS off: ${reason}; the site is served over HTTP only`);
    return { on: false, reason };
  }
  const pebble: Pebble = await startPebble({ httpPort: run.cdnPort, dnsServer: `127.0.0.1:${run.dnsPort}` });
  // Pebble runs in its own process group with its log in a temporary directory: kept in the run directory at the end.
  procs.atStop(async () => {
    writeFileSync(join(dir, "pebble.log"), pebble.output());
    await pebble.stop();
  });
  const rootFile = join(dir, "pebble-root.pem");
  writeFileSync(rootFile, await pebble.root());
  const url = `http://127.0.0.1:${await freePort()}`;
  procs.start("certs", process.execPath, [
    ...tsNode,
    "offchain/certs/cli.ts",
    "serve",
    ...run.common,
    ...["--port", new URL(url).port, "--db", join(dir, "certs.db"), "--data-key-file", join(dir, "certs.key")],
    ...["--trust", rootFile, "--backoff-seconds", String(BACKOFF_SECONDS)],
  ]);
  log.step(`pebble ${pebble.directory} (validates HTTP-01 on port ${run.cdnPort} of the address Edge DNS names)`);
  return { on: true, url, tlsPort: await freePort(), directory: pebble.directory, acmeCa: pebble.caFile, rootFile };
}

/** The gateways' HTTPS flags: every gateway serves by SNI and orders (the service's lease makes one order win). */
export function gatewayCertArgs(certs: Certificates): string[] {
  if (!certs.on) return [];
  return [
    ...["--certs", certs.url, "--tls-port", String(certs.tlsPort), "--cert-sync-ms", String(CERT_SYNC_MS)],
    ...["--acme-directory", certs.directory, "--acme-ca", certs.acmeCa, "--acme-email", "ops@edge.test"],
  ];
}

export interface HttpsGateway {
  name: string;
  ip: string;
  /** https://<site>:<port>/ */
  url: string;
  /** curl's status and time to the site's first HTTPS answer from the devnet's start of the check. */
  status: number;
  seconds: number;
  /** ACME orders this gateway placed that ended issued, and challenge requests it answered (its metrics). */
  ordersIssued: number;
  challengesServed: number;
  /** The served leaf's SHA-256 fingerprint, issuer and end of validity. */
  fingerprint: string;
  issuer: string;
  validTo: string;
}

export type HttpsShown =
  | { on: false; reason: string }
  | {
      on: true;
      rootFile: string;
      gateways: HttpsGateway[];
      daysToExpiry: number;
      issued: number;
      /** HTTP responses curl got over HTTPS (all 200): the gateways count and bill them with the site's others. */
      requests: number;
    };

/**
 * Waits (up to `timeoutMs`) until each gateway serves `site` over HTTPS, verified against Pebble's root only
 * (`curl --cacert <root> --resolve <site>:<port>:<gateway's address>`); then reads the served certificate and the
 * service's `edge_cert_days_to_expiry{domain="<site>"}`.
 */
export async function showHttps(
  certs: Certificates,
  gateways: Array<{ name: string; ip: string; url: string }>,
  site: string,
  log: StepLog,
  timeoutMs = 120_000,
): Promise<HttpsShown> {
  if (!certs.on) return certs;
  const started = Date.now();
  const shown: HttpsGateway[] = [];
  let requests = 0;
  for (const g of gateways) {
    const url = `https://${site}:${certs.tlsPort}/`;
    // Until the gateway holds the certificate its handshake fails (curl: 0); until it has the owner's credit from
    // billing it answers 402 before any work. Neither is served (counted or billed); anything else is.
    const status = await waitFor(
      `${g.name} serving ${site} over HTTPS`,
      async () => {
        const answered = await curl(certs, site, g.ip, `${url}static/1k`);
        if (answered === 0 || answered === 402) return false;
        requests += 1;
        return answered;
      },
      Math.max(1_000, timeoutMs - (Date.now() - started)),
    );
    if (status !== 200) throw new DevnetError(`${g.name} answered ${url}static/1k with ${status} over HTTPS`);
    const leaf = await servedCertificate(certs, site, g.ip);
    const metrics = await (await fetch(`${g.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    shown.push({
      name: g.name,
      ip: g.ip,
      url,
      status,
      seconds: (Date.now() - started) / 1000,
      ordersIssued: metricValue(metrics, "edge_gateway_acme_orders_total", { outcome: "issued" }) ?? 0,
      challengesServed: metricValue(metrics, "edge_gateway_acme_challenges_total", { outcome: "served" }) ?? 0,
      fingerprint: leaf.fingerprint256,
      issuer: [leaf.issuer.CN ?? "?"].flat().join(", "),
      validTo: leaf.valid_to,
    });
  }
  const metrics = await waitFor(
    `the certificate service's edge_cert_days_to_expiry for ${site}`,
    async () => {
      const text = await (await fetch(`${certs.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
      return metricValue(text, "edge_cert_days_to_expiry", { domain: site }) !== undefined && text;
    },
    30_000,
  );
  const daysToExpiry = metricValue(metrics, "edge_cert_days_to_expiry", { domain: site })!;
  const issued = metricValue(metrics, "edge_cert_orders_total", { outcome: "issued" }) ?? 0;
  if (!(daysToExpiry > 0)) throw new DevnetError(`edge_cert_days_to_expiry for ${site} is ${daysToExpiry}`);
  if (new Set(shown.map((g) => g.fingerprint)).size !== 1)
    throw new DevnetError(`the gateways serve different certificates for ${site}: ${shown.map((g) => g.name)}`);
  for (const g of shown)
    log.step(
      `HTTPS: curl --cacert ${certs.rootFile} --resolve ${site}:${certs.tlsPort}:${g.ip} ${g.url}static/1k -> ` +
        `${g.status} (${g.name}, after ${g.seconds.toFixed(1)} s; issuer ${g.issuer}, valid to ${g.validTo})`,
    );
  log.step(
    `HTTPS: one certificate for ${site} at every gateway (sha256 ${shown[0].fingerprint.slice(0, 23)}…); ` +
      `the certificate service: edge_cert_days_to_expiry{domain="${site}"} ${daysToExpiry.toFixed(2)}, ` +
      `orders issued ${issued}; ordered by ${shown
        .filter((g) => g.ordersIssued > 0)
        .map((g) => g.name)
        .join(", ")}, ` +
      `challenge answered by ${shown.map((g) => `${g.name} ${g.challengesServed}`).join(", ")}`,
  );
  return { on: true, rootFile: certs.rootFile, gateways: shown, daysToExpiry, issued, requests };
}

/** `curl --cacert <Pebble's root> --resolve <site>:<port>:<ip> <url>`: the HTTP status, 0 if TLS or the request failed. */
async function curl(certs: Certificates & { on: true }, site: string, ip: string, url: string): Promise<number> {
  try {
    const { stdout } = await run(
      "curl",
      [
        ...["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--cacert", certs.rootFile],
        ...["--resolve", `${site}:${certs.tlsPort}:${ip}`, url],
      ],
      { timeout: 10_000 },
    );
    return Number(stdout.trim());
  } catch {
    return 0;
  }
}

/** The leaf certificate `ip`:tlsPort presents for `site` (SNI), verified against Pebble's root. */
function servedCertificate(certs: Certificates & { on: true }, site: string, ip: string): Promise<PeerCertificate> {
  const ca = readFileSync(certs.rootFile, "utf8");
  return new Promise((resolve, reject) => {
    const socket = connect({ host: ip, port: certs.tlsPort, servername: site, ca, timeout: 5_000 }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.once("error", reject);
    socket.once("timeout", () => socket.destroy(new DevnetError(`TLS to ${ip}:${certs.tlsPort} timed out`)));
  });
}

/** A sample's value in Prometheus text: the first line of `name` whose labels include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const match = /^[^{\s]+(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const have = new Map([...(match[1] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(match[2]);
  }
  return undefined;
}

/** Reads the service's /health: the devnet waits for it with the other services. */
export const certsHealthy = async (certs: Certificates) => !certs.on || (await getJson(`${certs.url}/health`)).ok;
