/**
 * The gateway side of certificates after issue 19's review (D70): challenge requests answered only for the
 * gateway's sites and fetched from the service within a per-client budget, a loaded certificate never replaced by
 * one ending earlier, and the HTTPS front door's handshake timeout and connection bound. The service is
 * test/shared/certServiceDouble.ts.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { type Socket, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";

import { createCertMetrics } from "../../node/roles/gateway/certMetrics";
import { CertStore, HANDSHAKE_TIMEOUT_MS, MAX_TLS_CONNECTIONS, createTlsFrontDoor } from "../../node/roles/gateway/tls";
import { type CertServiceDouble, type TestCa, createTestCa, startCertServiceDouble } from "../shared/certServiceDouble";
import { httpGet, sitesFile } from "../shared/gatewayTls";
import { type GatewayRole, startGatewayRole } from "../shared/gatewayRole";

const KEY = `0x${"77".repeat(32)}` as const;
const SITE = "a.example.test";
const TOKEN = "tok_abcdefghijklmnopqrstuv0123";
const THUMB = "T".repeat(43);

const challengeGets = (service: CertServiceDouble) =>
  service.calls.filter((c) => c.method === "GET" && c.path.startsWith("/challenges/")).length;

describe("gateway certificates: review of issue 19 (D70)", function () {
  this.timeout(60_000);
  let service: CertServiceDouble;
  let ca: TestCa;
  let dir: string;
  let gateway: GatewayRole | undefined;

  before(() => (ca = createTestCa()));
  after(() => ca.dispose());
  beforeEach(async () => {
    service = await startCertServiceDouble();
    dir = mkdtempSync(join(tmpdir(), "gateway-certs-review-"));
  });
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("R19-2: a challenge request for a Host that is not one of the gateway's sites is 404 with no fetch from the service", async () => {
    service.challenges.set(TOKEN, { domain: SITE, keyAuthorization: `${TOKEN}.${THUMB}`, writer: "x" });
    gateway = await startGatewayRole({ key: KEY, config: { certs: service.url, sites: sitesFile(dir, [SITE]) } });
    for (const host of ["no-such-site.example", "127.0.0.1", "b.example.test"]) {
      const reply = await httpGet(gateway.frontDoor, `/.well-known/acme-challenge/${TOKEN}`, host);
      expect(reply, host).to.deep.equal({ status: 404, body: "not a site of this gateway" });
    }
    expect(challengeGets(service)).to.equal(0);
    expect(await httpGet(gateway.frontDoor, `/.well-known/acme-challenge/${TOKEN}`, SITE)).to.deep.equal({
      status: 200,
      body: `${TOKEN}.${THUMB}`,
    });
    expect(challengeGets(service)).to.equal(1);
  });

  it("R19-2: misses fetched from the service are limited per client address (429 with no fetch past 120); cached answers are still served", async () => {
    service.challenges.set(TOKEN, { domain: SITE, keyAuthorization: `${TOKEN}.${THUMB}`, writer: "x" });
    gateway = await startGatewayRole({ key: KEY, config: { certs: service.url, sites: sitesFile(dir, [SITE]) } });
    const front = gateway.frontDoor;
    expect((await httpGet(front, `/.well-known/acme-challenge/${TOKEN}`, SITE)).status).to.equal(200);
    const statuses: number[] = [];
    for (let i = 0; i < 140; i++) {
      const random = `miss${String(i).padStart(4, "0")}abcdefghijklmnopqrst`;
      statuses.push((await httpGet(front, `/.well-known/acme-challenge/${random}`, SITE)).status);
    }
    const misses = statuses.filter((s) => s === 404).length;
    const limited = statuses.filter((s) => s === 429).length;
    expect(misses + limited).to.equal(140);
    // 120 a minute as a burst, one spent on the hit above (a token or two may refill while the loop runs).
    expect(misses).to.be.within(119, 123);
    expect(challengeGets(service), "no fetch for a limited request").to.equal(1 + misses);
    expect(await httpGet(front, `/.well-known/acme-challenge/${TOKEN}`, SITE), "a cached hit").to.deep.equal({
      status: 200,
      body: `${TOKEN}.${THUMB}`,
    });
    expect(challengeGets(service)).to.equal(1 + misses);
  });

  it("R19-1: a loaded certificate is never replaced by one ending earlier (the one held stays); a later one replaces it", () => {
    const store = new CertStore();
    const long = ca.issue(SITE, 3);
    const short = ca.issue(SITE, 2);
    const longer = ca.issue(SITE, 4);
    const held = store.load(SITE, long.chain, long.privateKey);
    expect(() => store.load(SITE, short.chain, short.privateKey)).to.throw(/before the one held/);
    expect(store.get(SITE)!.fingerprint).to.equal(held.fingerprint);
    expect(store.load(SITE, long.chain, long.privateKey).fingerprint, "the same one again").to.equal(held.fingerprint);
    const replaced = store.load(SITE, longer.chain, longer.privateKey);
    expect(store.get(SITE)!.fingerprint).to.equal(replaced.fingerprint).and.not.equal(held.fingerprint);
  });

  it("R19-9: the HTTPS front door drops a stalled handshake (10 s by default) and holds at most its maximum of connections", async () => {
    expect([HANDSHAKE_TIMEOUT_MS, MAX_TLS_CONNECTIONS]).to.deep.equal([10_000, 10_000]);
    const metrics = createCertMetrics(new Registry(), { certificates: () => [] });
    const door = createTlsFrontDoor(
      new CertStore(),
      (_req, res) => res.end(),
      { port: 0, host: "127.0.0.1", handshakeTimeoutMs: 300, maxConnections: 2 },
      metrics,
    );
    const url = new URL(await door.start());
    const open = (): Promise<{ socket: Socket; closedAfter: Promise<number> }> =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        const socket = connect(Number(url.port), url.hostname, () =>
          resolve({ socket, closedAfter: new Promise((r) => socket.on("close", () => r(Date.now() - started))) }),
        );
        socket.on("error", () => undefined);
        socket.once("error", reject);
      });
    try {
      const [a, b] = [await open(), await open()];
      const c = await open();
      // The third is over the bound: closed at once, well before the handshake timeout.
      expect(await c.closedAfter).to.be.below(250);
      // The two stalled ones (no ClientHello) are dropped at the handshake timeout.
      for (const s of [a, b]) expect(await s.closedAfter).to.be.within(250, 5_000);
    } finally {
      await door.stop();
    }
  });
});
