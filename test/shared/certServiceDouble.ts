/**
 * A TEST DOUBLE of the certificate service's HTTP API (design19.md's table, D64), for the gateway's own tests
 * (test/node/gatewayCerts*.test.ts) while the real service (offchain/certs/) is built alongside. It is not a
 * replacement: no SQLite, no chain view (every device is admitted unless `refuse` names it), keys kept in the
 * clear in memory. What it does do faithfully is what the gateway depends on: the signed requests (the three
 * CERT_HEADERS checked with checkSignature over certRequestMessage, the 60 s window, a replay guard on the
 * digest), the routes' statuses and codes, one lease per domain, failures backing off (doubling), and query
 * replies whose keys are sealed with seal() to the public key recovered from the request's own signature.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type IncomingMessage, type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hex } from "viem";

import { recoverPublicKey } from "../../offchain/common/crypto";
import { checkSignature } from "../../offchain/common/protocol/eip712";
import {
  CERT_HEADERS,
  CERT_REQUEST_WINDOW_MS,
  type CertAction,
  type CertificateEntry,
  certRequestMessage,
  renewAt,
} from "../../offchain/common/protocol/certs";
import { seal } from "../../offchain/common/seal";

export interface StoredCertificate {
  chain: string;
  privateKey: string;
  fingerprint: string;
  notBefore: number;
  notAfter: number;
}

export interface CertServiceDouble {
  url: string;
  challenges: Map<string, { domain: string; keyAuthorization: string; writer: string }>;
  certificates: Map<string, StoredCertificate>;
  leases: Map<string, { holder: string; expiresAt: number }>;
  backoff: Map<string, { failures: number; until: number }>;
  /** Every request: method, path, signer (lower case) or null. */
  calls: { method: string; path: string; device: string | null; status: number }[];
  /** Failure reasons reported, by domain. */
  failures: { domain: string; reason: string }[];
  /** When set, query replies seal keys to this public key instead of the requester's (a wrong recipient). */
  sealTo?: Buffer;
  /** GET /challenges/:token waits this long first (the in-flight bound's test). */
  challengeDelayMs: number;
  close(): Promise<void>;
}

const fingerprintOf = (chain: string) =>
  new X509Certificate(chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0]).fingerprint256
    .replace(/:/g, "")
    .toLowerCase();

export function storedCertificate(chain: string, privateKey: string): StoredCertificate {
  const leaf = new X509Certificate(chain);
  return {
    chain,
    privateKey,
    fingerprint: fingerprintOf(chain),
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
  };
}

type State = Omit<CertServiceDouble, "url" | "close"> & {
  verify: (req: IncomingMessage, action: CertAction, subject: string, body: unknown) => Promise<Auth>;
  backoffSeconds: number;
};
type Reply = { status: number; body?: unknown; device?: string };
type Auth = { error: Reply; device?: undefined } | { error?: undefined; device: string; digest: Hex; signature: Hex };

const fail = (status: number, code: string, message: string, extra: object = {}): Reply => ({
  status,
  body: { statusCode: status, code, error: message, ...extra },
});

/** The service's checks of a signed request, in its order (shape, window, signature, replay); all admitted. */
function verifier(chainId: number) {
  const seen = new Set<string>();
  return async (req: IncomingMessage, action: CertAction, subject: string, body: unknown): Promise<Auth> => {
    const device = req.headers[CERT_HEADERS.device];
    const timestamp = req.headers[CERT_HEADERS.timestamp];
    const signature = req.headers[CERT_HEADERS.signature];
    if (typeof device !== "string" || typeof timestamp !== "string" || typeof signature !== "string")
      return { error: fail(401, "CERTS_UNAUTHORIZED", "missing signature headers") };
    if (Math.abs(Date.now() - Number(timestamp)) > CERT_REQUEST_WINDOW_MS)
      return { error: fail(401, "CERTS_SIGNATURE_EXPIRED", "timestamp outside the window") };
    const message = certRequestMessage(device, action, subject, body ?? null, Number(timestamp));
    const check = await checkSignature(chainId, "CertRequest", message, signature as Hex, device);
    if (!check.ok) return { error: fail(401, "CERTS_BAD_SIGNATURE", check.message) };
    if (seen.has(check.digest)) return { error: fail(409, "CERTS_REPLAYED", "replayed") };
    seen.add(check.digest);
    return { device: device.toLowerCase(), digest: check.digest, signature: signature as Hex };
  };
}

async function challengeRoute(
  double: State,
  req: IncomingMessage,
  method: string,
  token: string,
  body: unknown,
): Promise<Reply> {
  const verify = double.verify;
  if (method === "GET") {
    if (double.challengeDelayMs) await new Promise((r) => setTimeout(r, double.challengeDelayMs));
    const held = double.challenges.get(token);
    return held
      ? { status: 200, body: { token, keyAuthorization: held.keyAuthorization } }
      : fail(404, "CERTS_NOT_FOUND", "no such challenge");
  }
  const action = method === "PUT" ? "challenge.put" : "challenge.delete";
  const auth = await verify(req, action, token, body);
  if (auth.error) return auth.error;
  const held = double.challenges.get(token);
  if (held && held.writer !== auth.device) return { ...fail(409, "CERTS_CHALLENGE_HELD", "another writer") };
  if (method === "PUT") {
    const { domain, keyAuthorization } = body as { domain: string; keyAuthorization: string };
    double.challenges.set(token, { domain, keyAuthorization, writer: auth.device! });
    return { status: 204, device: auth.device };
  }
  double.challenges.delete(token);
  return { status: 204, device: auth.device };
}

async function orderRoute(
  double: State,
  req: IncomingMessage,
  method: string,
  parts: string[],
  body: unknown,
): Promise<Reply> {
  const { verify } = double;
  const now = Date.now();
  const options = { backoffSeconds: double.backoffSeconds };
  const domain = parts[1];
  const lease = double.leases.get(domain);
  const live = lease && lease.expiresAt > now ? lease : undefined;
  if (parts[2] === "lease" && method === "POST") {
    const auth = await verify(req, "lease.take", domain, body);
    if (auth.error) return auth.error;
    if (live && live.holder !== auth.device)
      return fail(409, "CERTS_LEASE_HELD", "held", { holder: live.holder, expiresAt: live.expiresAt });
    const back = double.backoff.get(domain);
    if (back && back.until > now) return fail(429, "CERTS_BACKOFF", "backing off", { until: back.until });
    const expiresAt = now + (body as { ttlSeconds: number }).ttlSeconds * 1000;
    double.leases.set(domain, { holder: auth.device!, expiresAt });
    return { status: 200, body: { domain, holder: auth.device, expiresAt }, device: auth.device };
  }
  const action = parts[2] === "lease" ? "lease.release" : "order.failed";
  const auth = await verify(req, action, domain, body);
  if (auth.error) return auth.error;
  if (!live || live.holder !== auth.device) return fail(409, "CERTS_NOT_HOLDER", "not the holder");
  double.leases.delete(domain);
  if (action === "order.failed") {
    const failures = (double.backoff.get(domain)?.failures ?? 0) + 1;
    const seconds = Math.min(3600, options.backoffSeconds * 2 ** (failures - 1));
    double.backoff.set(domain, { failures, until: now + seconds * 1000 });
    double.failures.push({ domain, reason: (body as { reason: string }).reason });
  }
  return { status: 204, device: auth.device };
}

async function queryRoute(double: State, req: IncomingMessage, body: unknown): Promise<Reply> {
  const { verify } = double;
  const now = Date.now();
  const auth = await verify(req, "certificate.query", "", body);
  if (auth.error) return auth.error;
  const recipient = double.sealTo ?? recoverPublicKey(auth.digest!, auth.signature!)!;
  const { domains, have = [] } = body as { domains: string[]; have?: string[] };
  const certificates = domains.map((domain): CertificateEntry => {
    const lease = double.leases.get(domain);
    const back = double.backoff.get(domain);
    const extra = {
      ...(lease && lease.expiresAt > now ? { leasedUntil: lease.expiresAt } : {}),
      ...(back && back.until > now ? { backoffUntil: back.until } : {}),
    };
    const cert = double.certificates.get(domain);
    if (!cert || cert.notAfter <= now) return { domain, status: "none", ...extra };
    const times = { fingerprint: cert.fingerprint, notBefore: cert.notBefore, notAfter: cert.notAfter };
    const renew = renewAt(cert.notBefore, cert.notAfter);
    if (have.includes(cert.fingerprint)) return { domain, status: "current", ...times, renewAt: renew, ...extra };
    const sealedKey = seal(recipient, Buffer.from(cert.privateKey), domain);
    return { domain, status: "issued", ...times, renewAt: renew, chain: cert.chain, sealedKey, ...extra };
  });
  return { status: 200, body: { certificates }, device: auth.device };
}

async function putCertificateRoute(double: State, req: IncomingMessage, domain: string, body: unknown): Promise<Reply> {
  const { verify } = double;
  const auth = await verify(req, "certificate.put", domain, body);
  if (auth.error) return auth.error;
  const lease = double.leases.get(domain);
  if (!lease || lease.holder !== auth.device) return fail(409, "CERTS_NOT_HOLDER", "not the holder");
  const { chain, privateKey } = body as { chain: string; privateKey: string };
  const leaf = new X509Certificate(chain);
  if (leaf.checkHost(domain) === undefined || !leaf.checkPrivateKey(createPrivateKey(privateKey)))
    return fail(400, "CERTS_CHAIN_INVALID", "the chain does not name the domain or match the key");
  double.certificates.set(domain, storedCertificate(chain, privateKey));
  double.leases.delete(domain);
  double.backoff.delete(domain);
  return { status: 204, device: auth.device };
}

async function route(double: State, req: IncomingMessage, body: unknown): Promise<Reply> {
  const parts = new URL(req.url ?? "/", "http://x").pathname.split("/").filter(Boolean);
  const method = req.method ?? "GET";
  if (parts[0] === "challenges" && parts.length === 2) return challengeRoute(double, req, method, parts[1], body);
  if (parts[0] === "orders" && parts.length === 3) return orderRoute(double, req, method, parts, body);
  if (parts[0] === "certificates" && parts[1] === "query" && method === "POST") return queryRoute(double, req, body);
  if (parts[0] === "certificates" && parts.length === 2 && method === "PUT")
    return putCertificateRoute(double, req, parts[1], body);
  return fail(404, "CERTS_NOT_FOUND", "no such route");
}

export async function startCertServiceDouble(
  options: { chainId?: number; backoffSeconds?: number } = {},
): Promise<CertServiceDouble> {
  const double: State = {
    challenges: new Map(),
    certificates: new Map(),
    leases: new Map(),
    backoff: new Map(),
    calls: [],
    failures: [],
    challengeDelayMs: 0,
    verify: verifier(options.chainId ?? 31337),
    backoffSeconds: options.backoffSeconds ?? 60,
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString();
      const body = text ? JSON.parse(text) : undefined;
      route(double, req, body).then(
        (reply) => {
          double.calls.push({
            method: req.method ?? "",
            path: req.url ?? "",
            device: reply.device ?? null,
            status: reply.status,
          });
          const json = reply.body === undefined ? "" : JSON.stringify(reply.body);
          res.writeHead(reply.status, json ? { "content-type": "application/json" } : {});
          res.end(json);
        },
        (error: Error) => {
          res.writeHead(500);
          res.end(JSON.stringify({ statusCode: 500, code: "DOUBLE_FAILED", error: error.message }));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ...double,
    get sealTo() {
      return double.sealTo;
    },
    set sealTo(key) {
      double.sealTo = key;
    },
    get challengeDelayMs() {
      return double.challengeDelayMs;
    },
    set challengeDelayMs(ms) {
      double.challengeDelayMs = ms;
    },
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A test CA (openssl) that issues P-256 leaf certificates for a domain: chain = leaf then CA. */
export interface TestCa {
  caPem: string;
  issue(domain: string, days?: number): { chain: string; privateKey: string };
  dispose(): void;
}

export function createTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "gateway-certs-ca-"));
  const openssl = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3", "-subj", "/CN=gateway test CA"]);
  let serial = 1;
  return {
    caPem: readFileSync(join(dir, "ca.pem"), "utf8"),
    issue(domain, days = 2) {
      const n = serial++;
      writeFileSync(join(dir, `ext${n}`), `subjectAltName=DNS:${domain}\n`);
      openssl(["req", "-new", ...ec, "-keyout", `l${n}.key`, "-out", `l${n}.csr`, "-subj", `/CN=${domain}`]);
      openssl([
        ...["x509", "-req", "-in", `l${n}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", String(n)],
        ...["-days", String(days), "-out", `l${n}.pem`, "-extfile", `ext${n}`],
      ]);
      const leaf = readFileSync(join(dir, `l${n}.pem`), "utf8");
      return {
        chain: leaf + readFileSync(join(dir, "ca.pem"), "utf8"),
        privateKey: readFileSync(join(dir, `l${n}.key`), "utf8"),
      };
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
