/**
 * Pebble (Debian's pebble 2.4, /usr/bin/pebble), Let's Encrypt's ACME test server, for the certificate tests and
 * bench:certs (issue 19, D66). `startPebble` makes its listener certificate with openssl (SAN localhost and
 * 127.0.0.1; the package ships none) in a temporary directory, writes its JSON configuration (ACME and management
 * listeners on free loopback ports, `httpPort` = the port it validates HTTP-01 on, on the address the DNS server
 * returns) and runs it with its resolver pointed at `dnsServer`, without its random validation sleeps, nonce
 * rejections or authorisation reuse. Pebble makes a fresh root CA at each start: `root()` fetches it from the
 * management listener (/roots/0) to verify issued chains.
 *
 * `startChallTestSrv` runs pebble-challtestsrv as a stand-in DNS server answering every A query with one address
 * (bench:certs, where 100 hostnames must resolve to the benchmarked gateway).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { Resolver } from "node:dns/promises";
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { freePort } from "./netDaemon";

export const PEBBLE = process.env.EDGE_PEBBLE ?? "/usr/bin/pebble";
export const CHALLTESTSRV = process.env.EDGE_PEBBLE_CHALLTESTSRV ?? "/usr/bin/pebble-challtestsrv";
export const pebbleInstalled = () => existsSync(PEBBLE);

export interface PebbleOptions {
  /** The port Pebble's validator fetches /.well-known/acme-challenge/<token> from (a gateway's front door). */
  httpPort: number;
  /** host:port of the DNS server Pebble resolves challenge names with (e.g. a stargate's Edge DNS). */
  dnsServer: string;
  /** Address the ACME and management listeners bind (default 127.0.0.1). */
  listenHost?: string;
  /** The port it validates tls-alpn-01 on (unused here: http-01 only; default a free port). */
  tlsPort?: number;
  /** Issued certificates' lifetime in seconds (Pebble's certificateValidityPeriod; default Pebble's own). */
  validitySeconds?: number;
  /** Extra environment (e.g. PEBBLE_CHAIN_LENGTH). */
  env?: Record<string, string>;
}

export interface Pebble {
  /** The ACME directory URL (https, Pebble's listener certificate). */
  directory: string;
  /** The PEM file of Pebble's listener certificate (self-signed): the CA ACME clients trust for `directory`. */
  caFile: string;
  caPem: string;
  /** The management listener's base URL (same listener certificate). */
  management: string;
  /** Pebble's root CA (PEM) for this run: issued chains verify against it. */
  root(): Promise<string>;
  /** Its output so far (written to `logFile` as it comes). */
  output(): string;
  logFile: string;
  stop(): Promise<void>;
}

/** A TCP port free on `host` now. */
export async function freeTcpPort(host = "127.0.0.1"): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** GET over HTTPS trusting `ca`: status and body. */
export function httpsGet(url: string, ca: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** A self-signed P-256 certificate for localhost and 127.0.0.1 (Pebble's listener), valid 2 days. */
function listenerCertificate(dir: string): { certificate: string; privateKey: string } {
  const certificate = join(dir, "listener.pem");
  const privateKey = join(dir, "listener.key");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", privateKey, "-out", certificate, "-days", "2", "-subj", "/CN=localhost"],
      ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  return { certificate, privateKey };
}

interface Proc {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns `command` in its own process group, its output kept and appended to `logFile`; stop kills the group. */
function spawnGroup(command: string, args: string[], env: Record<string, string>, logFile: string): Proc {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const log = createWriteStream(logFile, { flags: "a" });
  let output = "";
  const keep = (chunk: Buffer) => {
    log.write(chunk);
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  // Its own process group does not get the terminal's signals: if this process ends without stop(), end it too.
  const orphaned = () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // gone
      }
  };
  process.once("exit", orphaned);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      process.removeListener("exit", orphaned);
      resolve();
    }),
  );
  child.once("error", (error) => keep(Buffer.from(`spawn ${command}: ${error.message}\n`)));
  const stop = async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // gone
        }
      }, 5_000);
      await exited;
      clearTimeout(timer);
    }
    await new Promise((resolve) => log.end(resolve));
  };
  return { child, output: () => output, stop };
}

/** Waits until `check` is true, failing early when the process exits; on failure the log is kept and named. */
async function waitFor(proc: Proc, what: string, logFile: string, check: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (proc.child.exitCode !== null || proc.child.signalCode !== null || Date.now() > deadline) {
      await proc.stop();
      throw new Error(`${what} (log kept at ${logFile}):\n${proc.output().trim().split("\n").slice(-20).join("\n")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  if (!pebbleInstalled()) throw new Error(`pebble is not installed at ${PEBBLE} (Debian: apt-get install pebble)`);
  const host = options.listenHost ?? "127.0.0.1";
  const dir = mkdtempSync(join(tmpdir(), "edge-pebble-"));
  const { certificate, privateKey } = listenerCertificate(dir);
  const [acmePort, managementPort] = [await freeTcpPort(host), await freeTcpPort(host)];
  const config = {
    pebble: {
      listenAddress: `${host}:${acmePort}`,
      managementListenAddress: `${host}:${managementPort}`,
      certificate,
      privateKey,
      httpPort: options.httpPort,
      tlsPort: options.tlsPort ?? (await freeTcpPort()),
      ocspResponderURL: "",
      externalAccountBindingRequired: false,
      ...(options.validitySeconds ? { certificateValidityPeriod: options.validitySeconds } : {}),
    },
  };
  const configFile = join(dir, "pebble.json");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const logFile = join(dir, "pebble.log");
  const env = { PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0", ...options.env };
  const proc = spawnGroup(PEBBLE, ["-config", configFile, "-dnsserver", options.dnsServer], env, logFile);
  const caPem = readFileSync(certificate, "utf8");
  // The listener's address as a URL: its certificate names 127.0.0.1 and localhost.
  const urlHost = host === "0.0.0.0" ? "127.0.0.1" : host;
  const directory = `https://${urlHost}:${acmePort}/dir`;
  const management = `https://${urlHost}:${managementPort}`;
  await waitFor(
    proc,
    `pebble did not answer ${directory}`,
    logFile,
    async () => (await httpsGet(directory, caPem, 1_000)).status === 200,
    20_000,
  );
  return {
    directory,
    caFile: certificate,
    caPem,
    management,
    async root() {
      const { status, body } = await httpsGet(`${management}/roots/0`, caPem);
      if (status !== 200 || !body.includes("BEGIN CERTIFICATE")) throw new Error(`pebble /roots/0: ${status}`);
      return body;
    },
    output: proc.output,
    logFile,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ChallTestSrv {
  /** host:port of its DNS server (UDP and TCP), for Pebble's -dnsserver. */
  dnsServer: string;
  /** Its management API (http), e.g. POST /set-default-ipv4. */
  management: string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * pebble-challtestsrv as a DNS stand-in only: every A query answered with `defaultIPv4`, no AAAA (so Pebble
 * validates over IPv4), its own challenge responders off.
 */
export async function startChallTestSrv({ defaultIPv4 = "127.0.0.1" } = {}): Promise<ChallTestSrv> {
  if (!existsSync(CHALLTESTSRV)) throw new Error(`pebble-challtestsrv is not installed at ${CHALLTESTSRV}`);
  const dir = mkdtempSync(join(tmpdir(), "edge-challtestsrv-"));
  const logFile = join(dir, "challtestsrv.log");
  const dnsPort = await freePort();
  const managementPort = await freeTcpPort();
  const args = ["-defaultIPv4", defaultIPv4, "-defaultIPv6", "", "-dns01", `127.0.0.1:${dnsPort}`];
  args.push("-http01", "", "-https01", "", "-tlsalpn01", "", "-management", `127.0.0.1:${managementPort}`);
  const proc = spawnGroup(CHALLTESTSRV, args, {}, logFile);
  const management = `http://127.0.0.1:${managementPort}`;
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  await waitFor(
    proc,
    "pebble-challtestsrv did not answer DNS",
    logFile,
    async () => (await resolver.resolve4("probe.challtestsrv.test")).includes(defaultIPv4),
    10_000,
  );
  return {
    dnsServer: `127.0.0.1:${dnsPort}`,
    management,
    output: proc.output,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
