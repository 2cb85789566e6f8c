/**
 * The gateway side of certificates (D65): challenges answered from the certificate service at the HTTP front door,
 * the HTTPS front door by SNI with certificates synced from the service, their reload, refused keys, metrics and
 * the options' checks. The service here is test/shared/certServiceDouble.ts, a test double of design19.md's API
 * (signatures checked, keys sealed to the requester), not the real offchain/certs service.
 */
import { expect } from "chai";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import { privateKeyToAccount } from "viem/accounts";

import { ConfigError, loadConfig } from "../../node/config";
import { CertServiceClient } from "../../node/roles/gateway/certClient";
import { createCertMetrics } from "../../node/roles/gateway/certMetrics";
import { CertSync } from "../../node/roles/gateway/certSync";
import { CertStore } from "../../node/roles/gateway/tls";
import { unseal } from "../../offchain/common/seal";
import {
  type CertServiceDouble,
  type TestCa,
  createTestCa,
  startCertServiceDouble,
  storedCertificate,
} from "../shared/certServiceDouble";
import { waitUntil } from "../shared/gatewayHarness";
import { fetchTls, handshake, httpGet, sitesFile } from "../shared/gatewayTls";
import { type GatewayRole, startGatewayRole } from "../shared/gatewayRole";
import { promtoolProblems } from "../shared/promtool";

const KEY = `0x${"71".repeat(32)}` as const;
const TOKEN = "tok_abcdefghijklmnopqrstuv0123";
const THUMB = "T".repeat(43);

const challengeGets = (service: CertServiceDouble) =>
  service.calls.filter((c) => c.method === "GET" && c.path.startsWith("/challenges/")).length;

describe("gateway certificates (D65)", function () {
  this.timeout(60_000);
  let service: CertServiceDouble;
  let ca: TestCa;
  let dir: string;
  const roles: GatewayRole[] = [];
  const start = async (config: Parameters<typeof startGatewayRole>[0]) => {
    const role = await startGatewayRole({ key: KEY, ...config });
    roles.push(role);
    return role;
  };

  before(() => (ca = createTestCa()));
  after(() => ca.dispose());
  beforeEach(async () => {
    service = await startCertServiceDouble();
    dir = mkdtempSync(join(tmpdir(), "gateway-certs-"));
  });
  afterEach(async () => {
    await Promise.all(roles.splice(0).map((role) => role.close()));
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers a challenge written to the service for a site's Host, before the site lookup", async () => {
    const writer = new CertServiceClient(
      { account: privateKeyToAccount(`0x${"72".repeat(32)}`), chainId: 31337 },
      service.url,
    );
    await writer.putChallenge(TOKEN, "a.example.test", `${TOKEN}.${THUMB}`);
    const gateway = await start({ config: { certs: service.url, sites: sitesFile(dir, ["a.example.test"]) } });
    for (const host of ["a.example.test", "A.Example.Test"]) {
      const reply = await httpGet(gateway.frontDoor, `/.well-known/acme-challenge/${TOKEN}`, host);
      expect(reply, host).to.deep.equal({ status: 200, body: `${TOKEN}.${THUMB}` });
    }
    const path = `/.well-known/acme-challenge/${"x".repeat(30)}`;
    expect((await httpGet(gateway.frontDoor, path, "a.example.test")).status).to.equal(404);
    // Any other path still goes to the site lookup.
    expect((await httpGet(gateway.frontDoor, "/", "no-such-site.example")).body).to.contain("EDGE_NODE_UNKNOWN_SITE");
  });

  it("a malformed token is 404 with no fetch from the service; without --certs the path is 404", async () => {
    const gateway = await start({ config: { certs: service.url } });
    for (const token of ["short", "..%2F..%2Fetc", "a".repeat(129), "bad.token.with.dots.xxxxxxx", ""]) {
      const reply = await httpGet(gateway.frontDoor, `/.well-known/acme-challenge/${token}`, "a.example.test");
      expect(reply.status, token).to.equal(404);
    }
    expect(challengeGets(service)).to.equal(0);
    const plain = await start({ key: `0x${"73".repeat(32)}`, config: {} });
    expect((await httpGet(plain.frontDoor, `/.well-known/acme-challenge/${TOKEN}`, "a")).status).to.equal(404);
    expect(plain.status().tlsFrontDoor ?? null).to.equal(null);
  });

  it("one fetch answers many requests for a token; fetches beyond 32 in flight are 503", async () => {
    service.challenges.set(TOKEN, { domain: "a.example.test", keyAuthorization: `${TOKEN}.${THUMB}`, writer: "x" });
    const gateway = await start({ config: { certs: service.url, sites: sitesFile(dir, ["a.example.test"]) } });
    const many = await Promise.all(
      Array.from({ length: 50 }, () =>
        httpGet(gateway.frontDoor, `/.well-known/acme-challenge/${TOKEN}`, "a.example.test"),
      ),
    );
    expect(many.every((r) => r.status === 200)).to.equal(true);
    expect(challengeGets(service)).to.equal(1);
    // A flood of distinct (unknown) tokens while the service is slow: 32 fetches, the rest 503 at once.
    service.challengeDelayMs = 500;
    const tokens = Array.from({ length: 40 }, (_, i) => `flood${String(i).padStart(3, "0")}abcdefghijklmnopq`);
    const flood = await Promise.all(
      tokens.map((t) => httpGet(gateway.frontDoor, `/.well-known/acme-challenge/${t}`, "a.example.test")),
    );
    expect(flood.filter((r) => r.status === 404).length).to.equal(32);
    expect(flood.filter((r) => r.status === 503).length).to.equal(8);
    expect(challengeGets(service)).to.equal(1 + 32);
  });

  it("serves HTTPS by SNI with each site's certificate, refuses unknown names, and a renewed one on the next handshake", async () => {
    const a = ca.issue("a.example.test");
    const b = ca.issue("b.example.test");
    service.certificates.set("a.example.test", storedCertificate(a.chain, a.privateKey));
    service.certificates.set("b.example.test", storedCertificate(b.chain, b.privateKey));
    const sites = sitesFile(dir, ["a.example.test", "b.example.test", "c.example.test"]);
    const gateway = await start({ config: { certs: service.url, tlsPort: 0, sites, certSyncMs: 200, dataDir: dir } });
    const https = gateway.status().tlsFrontDoor as string;
    await waitUntil("2 certificates loaded", () => (gateway.status().certificates as { loaded: number }).loaded === 2);
    expect(await handshake(https, "a.example.test", ca.caPem)).to.equal(storedCertificate(a.chain, "").fingerprint);
    expect(await handshake(https, "B.Example.Test", ca.caPem)).to.equal(storedCertificate(b.chain, "").fingerprint);
    for (const name of ["c.example.test", "unknown.example", undefined])
      await handshake(https, name, ca.caPem).then(
        () => expect.fail(`handshake for ${name} accepted`),
        (error: Error) => expect(error.message).to.match(/alert|socket|ECONNRESET|disconnected/i),
      );
    // The same handler as the HTTP door: a challenge over HTTPS, and the site request's own answer.
    service.challenges.set(TOKEN, { domain: "a.example.test", keyAuthorization: `${TOKEN}.${THUMB}`, writer: "x" });
    const viaTls = await fetchTls(https, "a.example.test", `/.well-known/acme-challenge/${TOKEN}`, ca.caPem);
    expect(viaTls).to.deep.equal({ status: 200, body: `${TOKEN}.${THUMB}` });
    expect(JSON.parse((await fetchTls(https, "a.example.test", "/", ca.caPem)).body).code).to.match(/^EDGE_NODE_/);

    const renewed = ca.issue("a.example.test");
    const fingerprint = storedCertificate(renewed.chain, "").fingerprint;
    service.certificates.set("a.example.test", storedCertificate(renewed.chain, renewed.privateKey));
    await waitUntil(
      "renewed certificate served",
      async () => (await handshake(https, "a.example.test", ca.caPem)) === fingerprint,
    );
    // The sync named what it held, so unchanged certificates came back "current" (not re-sent).
    const text = await gateway.registry.metrics();
    // The one lint left is the unit of the name the issue asks for (days, like the service's edge_cert_days_to_expiry).
    const lint = promtoolProblems(text)
      .split("\n")
      .filter((line) => !line.startsWith("edge_gateway_cert_days_to_expiry use base unit"));
    expect(lint.join("\n")).to.equal("");
    expect(text).to.match(/edge_gateway_tls_certificates 2/);
    expect(text).to.match(/edge_gateway_cert_days_to_expiry\{domain="a.example.test"\} (1\.9\d*|2)\n/);
    expect(text).to.match(/edge_gateway_tls_handshakes_total\{outcome="unknown_name"\} [2-9]\n/);
    expect(text).to.match(/edge_gateway_tls_handshakes_total\{outcome="ok"\} ([3-9]|\d{2,})\n/);
    expect(text).to.match(/edge_gateway_acme_challenges_total\{outcome="served"\} 1/);
    // Keys are kept in memory only: nothing under the data directory holds one.
    for (const f of readdirSync(dir, { recursive: true }) as string[])
      if (statSync(join(dir, f)).isFile()) expect(readFileSync(join(dir, f), "utf8"), f).not.to.contain("PRIVATE KEY");
  });

  it("a sealed key that does not open (sealed to another device) is refused and logged without the key", async () => {
    const a = ca.issue("a.example.test");
    service.certificates.set("a.example.test", storedCertificate(a.chain, a.privateKey));
    const other = privateKeyToAccount(`0x${"74".repeat(32)}`);
    service.sealTo = Buffer.from(other.publicKey.slice(2), "hex");
    const lines: string[] = [];
    const log = {
      info: (o: object, m: string) => lines.push(JSON.stringify({ o, m })),
      warn: (o: object, m: string) => lines.push(JSON.stringify({ o, m })),
    } as never;
    const store = new CertStore();
    const registry = new Registry();
    const metrics = createCertMetrics(registry, { certificates: () => store.all() });
    const account = privateKeyToAccount(KEY);
    const sync = new CertSync({
      service: new CertServiceClient({ account, chainId: 31337 }, service.url),
      store,
      hostnames: () => ["a.example.test"],
      unseal: (sealed, context) => unseal(KEY, sealed, context),
      metrics,
      log,
    });
    await sync.sync();
    expect(store.size).to.equal(0);
    expect(sync.refused).to.equal(1);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.contain("a.example.test").and.to.contain("does not open");
    const sealed = service.calls.length; // the reply's sealed box is not in the log either
    expect(sealed).to.equal(1);
    expect(lines[0]).not.to.match(/PRIVATE KEY|ciphertext|ephemeral/);
    expect(await registry.metrics()).to.match(/edge_gateway_cert_load_failures_total 1/);
    // Sealed to this device again: it loads on the next pass.
    service.sealTo = undefined;
    await sync.sync();
    expect(store.size).to.equal(1);
    expect(lines.join("\n")).not.to.contain("PRIVATE KEY");
  });

  it("a certificate of a site no longer served is dropped at the next sync (its name refused from then on)", async () => {
    const a = ca.issue("a.example.test");
    service.certificates.set("a.example.test", storedCertificate(a.chain, a.privateKey));
    let hostnames = ["a.example.test"];
    const store = new CertStore();
    const metrics = createCertMetrics(new Registry(), { certificates: () => store.all() });
    const sync = new CertSync({
      service: new CertServiceClient({ account: privateKeyToAccount(KEY), chainId: 31337 }, service.url),
      ...{ store, hostnames: () => hostnames, metrics, log: { info() {}, warn() {} } as never },
      unseal: (sealed, context) => unseal(KEY, sealed, context),
    });
    await sync.sync();
    expect(store.get("a.example.test")).not.to.equal(undefined);
    hostnames = ["b.example.test"];
    await sync.sync();
    expect(store.size).to.equal(0);
  });

  it("options: --tls-port and --acme-directory need --certs; --certs is https unless on loopback", () => {
    const base = ["--role", "gateway", "--rpc", "http://127.0.0.1:8545", "--addresses", "book.json"];
    const env = { EDGE_NODE_DEVICE_KEY: KEY };
    const problems = (argv: string[]) => {
      try {
        loadConfig([...base, ...argv], env);
        return [];
      } catch (error) {
        if (error instanceof ConfigError) return error.problems;
        throw error;
      }
    };
    expect(problems(["--tls-port", "8443"]).join()).to.contain("--tls-port: the HTTPS front door needs --certs");
    expect(problems(["--acme-directory", "https://acme.test/dir"]).join()).to.contain("--acme-directory");
    expect(problems(["--certs", "http://certs.example.com"]).join()).to.contain("must be https");
    for (const ok of [
      "https://certs.example.com",
      "http://127.0.0.1:7700",
      "http://localhost:7700",
      "http://[::1]:7700",
    ])
      expect(problems(["--certs", ok, "--tls-port", "0"]), ok).to.deep.equal([]);
  });
});
