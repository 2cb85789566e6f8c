/**
 * The certificate service's tests: a deployed protocol on the in-process chain (billing's fixture) with gateways
 * 1 and 2 admitted, gateway 3 unbonding (staked, not admitted) and device 4 an admitted stargate; the service
 * in-process over real HTTP with an injected clock; requests signed as gateway N with signCertRequest.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ethers } from "hardhat";
import { mine } from "@nomicfoundation/hardhat-network-helpers";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { loadCertsConfig } from "../../../offchain/certs/config";
import { type CertsDeps, CertsService } from "../../../offchain/certs/service";
import { type CertAction, signCertRequest } from "../../../offchain/common/protocol/certs";
import { signConsent } from "../../shared/fixtures";
import { type RpcServer, startRpcServer } from "../../shared/rpc";
import { type TestCa, createTestCa } from "../../shared/testCa";
import { MINIMUM, StakeType } from "../../shared/constants";
import { type BillingProtocol, CHAIN_ID, deployForBilling, gatewayAccount, gatewayKey } from "../billing/helpers";

export { CHAIN_ID, gatewayAccount, gatewayKey };
export const STARGATE = 4;

/** Gateways 1 and 2 admitted, 3 unbonding, device 4 (gatewayKey(4)) an admitted stargate. */
export async function deployForCerts(dir: string): Promise<BillingProtocol> {
  const p = await deployForBilling({ dir, gateways: [1, 2, 3] });
  await p.staking.requestUnstake(await p.staking.stakeCount());
  const [deployer] = await ethers.getSigners();
  const consent = await signConsent(p.staking, new ethers.Wallet(gatewayKey(STARGATE)), deployer.address);
  await p.staking.connect(deployer).stakeAndAssign(StakeType.Stargate, MINIMUM[StakeType.Stargate], consent);
  await mine(1);
  return p;
}

export interface Clock {
  t: number;
  now: () => number;
}

export const clock = (start = Date.now()): Clock => {
  const c = { t: start, now: () => c.t };
  return c;
};

/** Test flags: ephemeral port, no confirmations, fast polling, silent logs, files in `dir`. */
export function certsArgs(rpc: string, book: string, dir: string, extra: string[] = []): string[] {
  return [
    ...["--rpc", rpc, "--addresses", book, "--port", "0", "--db", join(dir, "certs.db")],
    ...["--data-key-file", join(dir, "data.key"), "--confirmations", "0", "--poll-interval-ms", "50"],
    ...["--log-level", "silent", ...extra],
  ];
}

export async function startCerts(
  rpc: string,
  book: string,
  dir: string,
  extra: string[] = [],
  deps: CertsDeps = {},
): Promise<{ service: CertsService; url: string }> {
  const service = await CertsService.create(loadCertsConfig(certsArgs(rpc, book, dir, extra), {}), deps);
  const url = await service.start();
  return { service, url };
}

/** The test CA's root as a PEM file in `dir` (the service's --trust: chains must verify to a trusted root, R19-1). */
export function trustFile(dir: string, ca: { rootPem: string }): string {
  const file = join(dir, `trust-${createHash("sha256").update(ca.rootPem).digest("hex").slice(0, 12)}.pem`);
  writeFileSync(file, ca.rootPem);
  return file;
}

export const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
};

export interface Reply {
  status: number;
  json: any;
}

/** One HTTP request; `body` undefined sends none. */
export async function send(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
  raw?: string,
): Promise<Reply> {
  const payload = raw ?? (body === undefined ? undefined : JSON.stringify(body));
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { ...headers, ...(payload === undefined ? {} : { "content-type": "application/json" }) },
    body: payload,
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

/** The three signing headers of gateway `n` (or any key) for `action` on `subject` with `body`, at `at`. */
export function headersOf(
  n: number | Hex,
  action: CertAction,
  subject: string,
  body: unknown,
  at: number,
): Promise<Record<string, string>> {
  const account = privateKeyToAccount(typeof n === "number" ? gatewayKey(n) : n);
  return signCertRequest(account, CHAIN_ID, action, subject, body ?? null, at);
}

/** A client of the service signing as gateway `n` with the clock's time. */
export function gatewayClient(url: string, c: Clock) {
  // Each request signed at its own millisecond, up to 30 s before now: two identical requests are one replayed.
  let last = 0;
  const stamp = () => (last = Math.max(c.t - 30_000, last + 1));
  const signed = async (n: number, method: string, path: string, action: CertAction, subject: string, body?: unknown) =>
    send(url, method, path, await headersOf(n, action, subject, body, stamp()), body);
  return {
    signed,
    putChallenge: (n: number, token: string, domain: string, keyAuthorization = `${token}.${"t".repeat(43)}`) =>
      signed(n, "PUT", `/challenges/${token}`, "challenge.put", token, { domain, keyAuthorization }),
    deleteChallenge: (n: number, token: string) =>
      signed(n, "DELETE", `/challenges/${token}`, "challenge.delete", token),
    getChallenge: (token: string) => send(url, "GET", `/challenges/${token}`, {}),
    takeLease: (n: number, domain: string, ttlSeconds = 300) =>
      signed(n, "POST", `/orders/${domain}/lease`, "lease.take", domain, { ttlSeconds }),
    releaseLease: (n: number, domain: string) =>
      signed(n, "DELETE", `/orders/${domain}/lease`, "lease.release", domain),
    orderFailed: (n: number, domain: string, reason = "the ACME server refused") =>
      signed(n, "POST", `/orders/${domain}/failure`, "order.failed", domain, { reason }),
    putCertificate: (n: number, domain: string, chain: string, privateKey: string) =>
      signed(n, "PUT", `/certificates/${domain}`, "certificate.put", domain, { chain, privateKey }),
    query: (n: number, domains: string[], have?: string[]) =>
      signed(n, "POST", "/certificates/query", "certificate.query", "", have ? { domains, have } : { domains }),
  };
}

/** An ACME-shaped token (base64url, 43 characters) numbered `i`. */
export const token = (i: number) => `tok${String(i).padStart(8, "0")}${"A".repeat(32)}`;

export const codeOf = (r: Reply) => [r.status, r.json?.code];

/** What a certificate service test file shares: the chain's RPC, a temporary folder, a test CA, the services to close. */
export interface CertsSuite {
  rpc: RpcServer;
  tmp: ReturnType<typeof tempDir>;
  ca: TestCa;
  /** Services started by a test: closed after it. */
  running: CertsService[];
  /** The deployment (for loadFixture: one function, so one snapshot). */
  network(): Promise<BillingProtocol>;
}

/** Registers the suite's hooks (call inside `describe`); the fields are set once `before` ran. */
export function certsSuite(prefix: string): CertsSuite {
  const suite = {
    running: [] as CertsService[],
    network: () => deployForCerts(suite.tmp.dir),
  } as CertsSuite;
  before(async function () {
    suite.tmp = tempDir(prefix);
    suite.rpc = await startRpcServer();
    suite.ca = createTestCa();
  });
  after(async function () {
    suite.ca.close();
    await suite.rpc.close();
    suite.tmp.remove();
  });
  afterEach(async function () {
    for (const service of suite.running.splice(0)) await service.close();
  });
  return suite;
}
