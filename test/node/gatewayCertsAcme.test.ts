/**
 * The gateway's ACME orders (D65) against real Pebble (scripts/lib/pebble.ts; pebble-challtestsrv as its DNS,
 * naming 127.0.0.1 for every site but one, which it sends to 127.0.0.2 where nothing listens): the lease taken
 * first, the challenge written to the service and answered by the gateway's front door (Pebble's httpPort), the
 * certificate stored at the service and served over HTTPS, verifying against Pebble's root; a failed order
 * reported with its lease released and the domain's backoff respected. The service is the test double of
 * design19.md's API (test/shared/certServiceDouble.ts), not offchain/certs.
 */
import { expect } from "chai";
import { readdirSync, readFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  type ChallTestSrv,
  type Pebble,
  freeTcpPort,
  pebbleInstalled,
  startChallTestSrv,
  startPebble,
} from "../../scripts/lib/pebble";
import {
  type CertServiceDouble,
  createTestCa,
  startCertServiceDouble,
  storedCertificate,
} from "../shared/certServiceDouble";
import { AcmeOrderer } from "../../node/roles/gateway/acme";
import { CertServiceClient } from "../../node/roles/gateway/certClient";
import { waitUntil } from "../shared/gatewayHarness";
import { type GatewayRole, startGatewayRole } from "../shared/gatewayRole";
import { promtoolProblems } from "../shared/promtool";
import { handshake, httpGet, sitesFile } from "../shared/gatewayTls";
import { privateKeyToAccount } from "viem/accounts";

const KEY = `0x${"75".repeat(32)}` as const;
const OK = "ok.example.test";
const UNREACHABLE = "unreachable.example.test";
const RENEW = "renew.example.test";

describe("gateway ACME orders against Pebble (D65)", function () {
  this.timeout(120_000);
  let dns: ChallTestSrv;
  let pebble: Pebble;
  let service: CertServiceDouble;
  let gateway: GatewayRole;
  let dir: string;
  let original: string;
  const certSyncMs = 300;

  before(async function () {
    if (!pebbleInstalled()) this.skip();
    dir = mkdtempSync(join(tmpdir(), "gateway-acme-"));
    dns = await startChallTestSrv();
    const answer = await fetch(`${dns.management}/add-a`, {
      method: "POST",
      body: JSON.stringify({ host: `${UNREACHABLE}.`, addresses: ["127.0.0.2"] }),
    });
    expect(answer.status).to.equal(200);
    const cdnPort = await freeTcpPort();
    pebble = await startPebble({ httpPort: cdnPort, dnsServer: dns.dnsServer });
    service = await startCertServiceDouble();
    // A certificate already past its renewal point (the service's dates say it began 10 days ago): it is loaded, then renewed.
    const ca = createTestCa();
    const old = ca.issue(RENEW);
    ca.dispose();
    const stored = storedCertificate(old.chain, old.privateKey);
    original = stored.fingerprint;
    service.certificates.set(RENEW, { ...stored, notBefore: stored.notBefore - 10 * 86_400_000 });
    gateway = await startGatewayRole({
      key: KEY,
      config: {
        ...{ certs: service.url, tlsPort: 0, cdnPort, dataDir: dir, certSyncMs },
        ...{ sites: sitesFile(dir, [OK, UNREACHABLE, RENEW]), acmeDirectory: pebble.directory, acmeCa: pebble.caFile },
        acmeEmail: "ops@example.test",
      },
    });
  });

  after(async () => {
    await gateway?.close();
    await service?.close();
    await pebble?.stop();
    await dns?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const callsFor = (domain: string) => service.calls.filter((c) => c.path.includes(`/${domain}`));

  it("orders a site's certificate under its lease, the challenge answered through the service, and serves it over HTTPS", async () => {
    await waitUntil(
      "certificate issued and loaded",
      () => service.certificates.has(OK) && gatewayLoaded() >= 2,
      60_000,
    );
    const calls = callsFor(OK).map(
      (c) => `${c.method} ${c.path.replace(/\/challenges\/.*/, "/challenges/T")} ${c.status}`,
    );
    expect(calls[0]).to.equal(`POST /orders/${OK}/lease 200`);
    expect(calls.at(-1)).to.equal(`PUT /certificates/${OK} 204`);
    const device = gateway.account.address.toLowerCase();
    const writes = service.calls.filter((c) => c.path.startsWith("/challenges/") && c.method !== "GET");
    expect(writes.filter((c) => c.method === "PUT" && c.status === 204).every((c) => c.device === device)).to.equal(
      true,
    );
    // Pebble fetched the challenge from the gateway's front door, which read it from the service.
    expect(
      service.calls.some((c) => c.method === "GET" && c.path.startsWith("/challenges/") && c.status === 200),
    ).to.equal(true);
    expect(service.leases.has(OK)).to.equal(false);
    expect([...service.challenges.values()].filter((c) => c.domain === OK)).to.deep.equal([]);

    const root = await pebble.root();
    const https = gateway.status().tlsFrontDoor as string;
    expect(await handshake(https, OK, root)).to.equal(service.certificates.get(OK)!.fingerprint);

    // The account key, and only it, is in the data directory, mode 0600; certificates' keys are not.
    const accountKey = join(dir, `${device}-acme-account.pem`);
    expect(statSync(accountKey).mode & 0o777).to.equal(0o600);
    for (const f of readdirSync(dir, { recursive: true }) as string[]) {
      const path = join(dir, f);
      if (path !== accountKey && statSync(path).isFile())
        expect(readFileSync(path, "utf8"), f).not.to.contain("PRIVATE KEY");
    }
  });

  it("a failed order (Pebble cannot reach the challenge) is reported, its lease released, and the backoff respected", async () => {
    await waitUntil("failure reported", () => service.failures.some((f) => f.domain === UNREACHABLE), 60_000);
    const failure = service.failures.find((f) => f.domain === UNREACHABLE)!;
    expect(failure.reason).to.match(/^ACME order failed: /);
    expect(failure.reason).not.to.contain("PRIVATE KEY");
    expect(service.leases.has(UNREACHABLE)).to.equal(false);
    const leaseTakes = () =>
      callsFor(UNREACHABLE).filter((c) => c.path.endsWith("/lease") && c.method === "POST").length;
    expect(leaseTakes()).to.equal(1);
    // Several syncs later the domain, backing off at the service, has not been ordered again.
    await new Promise((resolve) => setTimeout(resolve, certSyncMs * 5));
    expect(leaseTakes()).to.equal(1);
    expect(gatewayLoaded()).to.equal(2);

    const text = await gateway.registry.metrics();
    expect(text).to.match(/edge_gateway_acme_orders_total\{outcome="issued"\} 2\n/);
    expect(text).to.match(/edge_gateway_acme_orders_total\{outcome="failed"\} 1\n/);
    expect(text).to.match(/edge_gateway_acme_challenges_total\{outcome="served"\} [1-9]/);
    const lint = promtoolProblems(text)
      .split("\n")
      .filter((line) => !line.startsWith("edge_gateway_cert_days_to_expiry use base unit"));
    expect(lint.join("\n")).to.equal("");
  });

  it("a certificate past its renewal point is ordered again, and the renewed one replaces it at the next handshake", async () => {
    await waitUntil("renewed", () => service.certificates.get(RENEW)!.fingerprint !== original, 60_000);
    const renewed = service.certificates.get(RENEW)!.fingerprint;
    const https = gateway.status().tlsFrontDoor as string;
    expect(await handshake(https, RENEW, await pebble.root())).to.equal(renewed);
    // One order: its lease taken, and taken again just before the certificate was stored (R19-7).
    expect(callsFor(RENEW).filter((c) => c.path.endsWith("/lease") && c.method === "POST")).to.have.length(2);
  });

  it("orders placed at once by a new account, then by the same account after a restart, all issue (the account is registered once, before them)", async () => {
    const accountDir = mkdtempSync(join(dir, "account-"));
    const quiet = { info: () => undefined, warn: () => undefined };
    const orderer = () =>
      new AcmeOrderer(
        new CertServiceClient({ account: gateway.account, chainId: 31337 }, service.url),
        { directory: pebble.directory, caFile: pebble.caFile, dataDir: accountDir, device: gateway.account.address },
        quiet,
      );
    const rounds = [
      ["new", 4],
      ["restarted", 3],
    ] as const;
    const burst = rounds.flatMap(([round, count]) =>
      Array.from({ length: count }, (_, i) => `${round}-${i}.burst.example.test`),
    );
    // The gateway answers challenges only for its sites (R19-2): these join them (the file is re-read within 2 s).
    sitesFile(dir, [OK, UNREACHABLE, RENEW, ...burst]);
    await waitUntil(
      "the burst names are sites",
      async () =>
        (await httpGet(gateway.frontDoor, `/.well-known/acme-challenge/${"b".repeat(30)}`, burst[0])).body ===
        "no such challenge",
      10_000,
    );
    for (const [round, count] of rounds) {
      const domains = Array.from({ length: count }, (_, i) => `${round}-${i}.burst.example.test`);
      const first = orderer();
      const results = await Promise.all(domains.map((d) => first.order(d)));
      expect(
        results.map((r) => (r.outcome === "issued" ? r.outcome : r.reason)),
        round,
      ).to.deep.equal(domains.map(() => "issued"));
      for (const d of domains) expect(service.certificates.has(d), d).to.equal(true);
    }
  });

  it("R19-7: the lease is taken again just before the certificate is stored: an order outlasting its first lease stores it", async () => {
    await waitUntil("the first order stored", () => service.certificates.has(OK), 60_000);
    const account = privateKeyToAccount(`0x${"76".repeat(32)}`);
    const client = new CertServiceClient({ account, chainId: 31337 }, service.url);
    // The lease runs out while the CA validates (as a slow order's would): the double's lease expires then.
    const slow: ConstructorParameters<typeof AcmeOrderer>[0] = {
      takeLease: (d, ttl) => client.takeLease(d, ttl),
      deleteChallenge: (t) => client.deleteChallenge(t),
      orderFailed: (d, r) => client.orderFailed(d, r),
      putCertificate: (d, c, k) => client.putCertificate(d, c, k),
      putChallenge: async (t, d, k) => {
        await client.putChallenge(t, d, k);
        service.leases.get(d)!.expiresAt = Date.now() - 1;
      },
    };
    const quiet = { info: () => undefined, warn: () => undefined };
    const accountDir = mkdtempSync(join(dir, "slow-"));
    const orderer = new AcmeOrderer(
      slow,
      { directory: pebble.directory, caFile: pebble.caFile, dataDir: accountDir, device: account.address },
      quiet,
    );
    const result = await orderer.order(OK);
    expect(result.outcome === "issued" ? "issued" : result.reason).to.equal("issued");
    const mine = service.calls.filter((c) => c.device === account.address.toLowerCase() && c.path.includes(`/${OK}`));
    expect(mine.slice(-2).map((c) => `${c.method} ${c.path} ${c.status}`)).to.deep.equal([
      `POST /orders/${OK}/lease 200`,
      `PUT /certificates/${OK} 204`,
    ]);
  });

  const gatewayLoaded = () => (gateway.status().certificates as { loaded: number }).loaded;
});
