/**
 * The certificate service (D64) over real HTTP on the in-process chain: challenges, leases, failures and backoff,
 * certificates and the gateways' query, as design19's table has them; the signed-request check and its abuse.
 */
import { expect } from "chai";
import { createPrivateKey } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

import { unseal } from "../../../offchain/common/seal";
import { createTestCa } from "../../shared/testCa";
import {
  type Clock,
  STARGATE,
  clock,
  codeOf,
  gatewayAccount,
  gatewayClient,
  gatewayKey,
  headersOf,
  send,
  startCerts,
  token,
  trustFile,
  certsSuite,
} from "./helpers";

const SITE = "site.edge.test";
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

describe("certificate service (offchain/certs)", function () {
  this.timeout(120_000);
  const suite = certsSuite("edge-certs-");
  const { running } = suite;
  let runs = 0;

  /** A service on a fresh directory (or `dir`) with the clock `c`. */
  async function certs(c: Clock, extra: string[] = [], dir = join(suite.tmp.dir, `run-${++runs}`)) {
    mkdirSync(dir, { recursive: true });
    const p = await loadFixture(suite.network);
    const trusted = extra.includes("--trust") ? extra : ["--trust", trustFile(suite.tmp.dir, suite.ca), ...extra];
    const started = await startCerts(suite.rpc.url, p.book, dir, trusted, { now: c.now });
    running.push(started.service);
    return { ...started, dir, api: gatewayClient(started.url, c) };
  }

  it("D64: a gateway writes a challenge, anyone reads it, only its writer deletes it; another's live token is 409; expired ones go", async function () {
    const c = clock();
    const { api, service, url } = await certs(c, ["--challenge-ttl-seconds", "60"]);
    const docs = (await (await fetch(`${url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(docs.paths).sort()).to.deep.equal([
      "/certificates/query",
      "/certificates/{domain}",
      "/challenges/{token}",
      "/orders/{domain}/failure",
      "/orders/{domain}/lease",
    ]);
    const t = token(1);
    expect((await api.putChallenge(1, t, SITE)).status).to.equal(204);
    expect(await api.getChallenge(t)).to.deep.equal({
      status: 200,
      json: { token: t, keyAuthorization: `${t}.${"t".repeat(43)}` },
    });
    expect((await api.putChallenge(1, t, SITE, `${t}.${"u".repeat(43)}`)).status, "the writer rewrites").to.equal(204);
    const held = await api.putChallenge(2, t, SITE);
    expect(codeOf(held)).to.deep.equal([409, "CERTS_CHALLENGE_HELD"]);
    expect(codeOf(await api.deleteChallenge(2, t))).to.deep.equal([403, "CERTS_NOT_WRITER"]);
    expect((await api.deleteChallenge(1, t)).status).to.equal(204);
    expect(codeOf(await api.getChallenge(t))).to.deep.equal([404, "CERTS_NOT_FOUND"]);
    expect((await api.deleteChallenge(1, t)).status, "deleting again: already gone").to.equal(204);
    // Another token's key authorization: refused.
    expect(codeOf(await api.putChallenge(1, token(2), SITE, `${t}.${"t".repeat(43)}`))).to.deep.equal([
      400,
      "CERTS_BAD_REQUEST",
    ]);
    expect((await api.putChallenge(1, t, SITE)).status).to.equal(204);
    c.t += 61_000;
    expect(codeOf(await api.getChallenge(t)), "past its TTL").to.deep.equal([404, "CERTS_NOT_FOUND"]);
    service.book.sweep();
    expect(service.store.challenge(t), "swept").to.equal(undefined);
    expect((await api.putChallenge(2, t, SITE)).status, "free again").to.equal(204);
  });

  it("D64: one lease per domain: another gateway gets 409 with holder and expiry, the holder extends and releases; an expired lease is swept as lease_expired", async function () {
    const c = clock();
    const { api, url } = await certs(c);
    const g1 = gatewayAccount(1).address.toLowerCase();
    const taken = await api.takeLease(1, SITE, 120);
    expect(taken).to.deep.equal({ status: 200, json: { domain: SITE, holder: g1, expiresAt: c.t + 120_000 } });
    const held = await api.takeLease(2, SITE);
    expect(codeOf(held)).to.deep.equal([409, "CERTS_LEASE_HELD"]);
    expect([held.json.holder, held.json.expiresAt]).to.deep.equal([g1, c.t + 120_000]);
    c.t += 10_000;
    expect((await api.takeLease(1, SITE, 600)).json.expiresAt, "extended").to.equal(c.t + 600_000);
    expect(codeOf(await api.releaseLease(2, SITE))).to.deep.equal([403, "CERTS_NOT_HOLDER"]);
    expect((await api.releaseLease(1, SITE)).status).to.equal(204);
    expect(codeOf(await api.releaseLease(1, SITE)), "nothing held").to.deep.equal([403, "CERTS_NOT_HOLDER"]);
    expect((await api.takeLease(2, SITE, 10)).status).to.equal(200);
    c.t += 11_000;
    expect((await api.takeLease(1, SITE)).json.holder, "the expired lease is free").to.equal(g1);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).to.include('edge_cert_orders_total{outcome="lease_expired"} 1');
  });

  it("D64: a failed order ends the lease and backs the domain off, doubling to the cap (429 CERTS_BACKOFF until it passes); only the holder reports it", async function () {
    const c = clock();
    const { api } = await certs(c, ["--backoff-seconds", "60", "--max-backoff-seconds", "200"]);
    expect(codeOf(await api.orderFailed(1, SITE)), "no lease").to.deep.equal([403, "CERTS_NOT_HOLDER"]);
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) {
      expect((await api.takeLease(1, SITE)).status).to.equal(200);
      expect(codeOf(await api.orderFailed(2, SITE)), "not the holder").to.deep.equal([403, "CERTS_NOT_HOLDER"]);
      const failed = await api.orderFailed(1, SITE);
      expect(failed.status).to.equal(200);
      expect(failed.json.failures).to.equal(i + 1);
      waits.push(failed.json.backoffUntil - c.t);
      const refused = await api.takeLease(2, SITE);
      expect(codeOf(refused)).to.deep.equal([429, "CERTS_BACKOFF"]);
      expect(refused.json.backoffUntil).to.equal(failed.json.backoffUntil);
      const q = await api.query(2, [SITE]);
      expect(q.json.certificates[0]).to.deep.equal({
        domain: SITE,
        status: "none",
        backoffUntil: failed.json.backoffUntil,
      });
      c.t = failed.json.backoffUntil - 1;
      expect(codeOf(await api.takeLease(1, SITE))).to.deep.equal([429, "CERTS_BACKOFF"]);
      c.t += 1;
    }
    expect(waits).to.deep.equal([60_000, 120_000, 200_000]);
    // A stored certificate resets the backoff: the next failure waits the first step again.
    expect((await api.takeLease(1, SITE)).status).to.equal(200);
    const cert = suite.ca.issue(SITE);
    const stored = await api.putCertificate(1, SITE, cert.chain, cert.keyPem);
    expect(stored.status).to.equal(200);
    c.t = stored.json.renewAt; // due for renewal: a lease is granted again (R19-3)
    expect((await api.takeLease(1, SITE)).status).to.equal(200);
    const failed = await api.orderFailed(1, SITE);
    expect([failed.json.failures, failed.json.backoffUntil - c.t]).to.deep.equal([1, 60_000]);
  });

  it("D64: the holder's certificate is checked and stored, its lease released; the query answers issued (key sealed to the asker), current, or none", async function () {
    const c = clock();
    const { api } = await certs(c);
    const cert = suite.ca.issue([SITE, `www.${SITE}`]);
    expect(codeOf(await api.putCertificate(1, SITE, cert.chain, cert.keyPem)), "no lease").to.deep.equal([
      403,
      "CERTS_NOT_HOLDER",
    ]);
    await api.takeLease(1, SITE);
    expect(codeOf(await api.putCertificate(2, SITE, cert.chain, cert.keyPem)), "not the holder").to.deep.equal([
      403,
      "CERTS_NOT_HOLDER",
    ]);
    const stored = await api.putCertificate(1, SITE, cert.chain, cert.keyPem);
    expect(stored.status, JSON.stringify(stored.json)).to.equal(200);
    const { fingerprint, notBefore, notAfter, renewAt } = stored.json;
    expect(fingerprint).to.match(/^[0-9a-f]{64}$/);
    expect(renewAt).to.equal(notBefore + Math.floor(((notAfter - notBefore) * 2) / 3));
    // The lease was released; a new one is refused while the certificate is far from renewal (R19-3).
    expect(codeOf(await api.takeLease(2, SITE)), "released, not due").to.deep.equal([409, "CERTS_NOT_DUE"]);

    const reply = await api.query(2, [SITE, "other.edge.test"]);
    expect(reply.status).to.equal(200);
    const [issued, none] = reply.json.certificates;
    expect(none).to.deep.equal({ domain: "other.edge.test", status: "none" });
    expect(issued).to.include({ domain: SITE, status: "issued", fingerprint, notBefore, notAfter, renewAt });
    expect(issued).not.to.have.property("leasedUntil");
    expect(issued.chain).to.include(cert.leaf.trim());
    const opened = unseal(gatewayKey(2), issued.sealedKey, SITE).toString();
    expect(createPrivateKey(opened).export({ format: "jwk" })).to.deep.equal(
      createPrivateKey(cert.keyPem).export({ format: "jwk" }),
    );
    expect(() => unseal(gatewayKey(1), issued.sealedKey, SITE), "another gateway's key").to.throw();
    expect(() => unseal(gatewayKey(2), issued.sealedKey, "other.edge.test"), "another domain").to.throw();
    const mine = (await api.query(1, [SITE])).json.certificates[0];
    expect(unseal(gatewayKey(1), mine.sealedKey, SITE).toString()).to.equal(opened);
    expect((await api.query(2, [SITE], [fingerprint])).json.certificates).to.deep.equal([
      { domain: SITE, status: "current", fingerprint, notBefore, notAfter, renewAt },
    ]);
    expect(JSON.stringify(reply.json)).not.to.include("PRIVATE KEY");
    // Past its end of validity the certificate answers "none".
    c.t = notAfter;
    expect((await api.query(2, [SITE])).json.certificates).to.deep.equal([{ domain: SITE, status: "none" }]);
  });

  it("D64: a certificate for another domain, a key not matching, a chain not verifying to --trust, a broken or expired chain: 422, nothing stored, the lease kept", async function () {
    const c = clock();
    const trust = join(suite.tmp.dir, "trust.pem");
    require("node:fs").writeFileSync(trust, suite.ca.rootPem);
    const { api } = await certs(c, ["--trust", trust]);
    const other = createTestCa("Other");
    try {
      const good = suite.ca.issue(SITE, 1);
      const cases: Array<[string, string, string, string]> = [
        ["another domain", suite.ca.issue("other.edge.test").chain, good.keyPem, "CERTS_WRONG_DOMAIN"],
        ["a key not matching", good.chain, suite.ca.issue(SITE).keyPem, "CERTS_KEY_MISMATCH"],
        ["not a key", good.chain, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "CERTS_BAD_KEY"],
        ["another CA", other.issue(SITE).chain, "", "CERTS_UNTRUSTED"],
        ["a broken chain", good.leaf + other.intermediatePem, good.keyPem, "CERTS_BAD_CHAIN"],
        ["no certificate", "hello", good.keyPem, "CERTS_BAD_CHAIN"],
      ];
      const otherCert = other.issue(SITE);
      cases[3][2] = otherCert.keyPem;
      cases[3][1] = otherCert.chain;
      await api.takeLease(1, SITE);
      for (const [what, chain, key, code] of cases) {
        const reply = await api.putCertificate(1, SITE, chain, key);
        expect(codeOf(reply), what).to.deep.equal([422, code]);
        expect(reply.json.error, what).not.to.include("PRIVATE KEY");
      }
      c.t += 2 * 86_400_000; // the leaf (1 day) has expired
      await api.takeLease(1, SITE);
      expect(codeOf(await api.putCertificate(1, SITE, good.chain, good.keyPem))).to.deep.equal([
        422,
        "CERTS_NOT_VALID_NOW",
      ]);
      expect((await api.query(1, [SITE])).json.certificates[0].status).to.equal("none");
      expect(codeOf(await api.takeLease(2, SITE)), "the lease is still held").to.deep.equal([409, "CERTS_LEASE_HELD"]);
    } finally {
      other.close();
    }
  });

  it("D64: signed requests: replays (same headers; v 0/1, upper-case hex, high-s) 409, out-of-window 401, wrong signer 401, unstaked, unbonding or stargate devices 403; a refused forgery does not block the real request", async function () {
    const c = clock();
    const { url, api } = await certs(c);
    const body = { ttlSeconds: 60 };
    const path = `/orders/${SITE}/lease`;
    const h = await headersOf(1, "lease.take", SITE, body, c.t);
    expect((await send(url, "POST", path, h, body)).status).to.equal(200);
    const sig = h["x-edge-signature"];
    const v = parseInt(sig.slice(130), 16);
    const s = BigInt(`0x${sig.slice(66, 130)}`);
    const highS = `${sig.slice(0, 66)}${(N - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}`;
    const variants = {
      same: sig,
      v01: `${sig.slice(0, 130)}${(v - 27).toString(16).padStart(2, "0")}`,
      upper: `0x${sig.slice(2).toUpperCase()}`,
      highS,
    };
    for (const [what, signature] of Object.entries(variants)) {
      const reply = await send(url, "POST", path, { ...h, "x-edge-signature": signature }, body);
      expect(codeOf(reply), what).to.deep.equal([409, "CERTS_REPLAYED"]);
    }
    const expect401 = async (headers: Record<string, string>, code: string, what: string) =>
      expect(codeOf(await send(url, "POST", path, headers, body)), what).to.deep.equal([401, code]);
    await expect401(await headersOf(1, "lease.take", SITE, body, c.t - 61_000), "CERTS_REQUEST_EXPIRED", "old");
    await expect401(await headersOf(1, "lease.take", SITE, body, c.t + 61_000), "CERTS_REQUEST_EXPIRED", "future");
    await expect401({}, "CERTS_BAD_HEADERS", "no headers");
    await expect401({ ...h, "x-edge-timestamp": "soon" }, "CERTS_BAD_HEADERS", "bad timestamp");
    // Gateway 2's signature claiming to be gateway 1, then gateway 1's own request at that time: it passes.
    const at = c.t + 1;
    const forged = {
      ...(await headersOf(2, "lease.take", SITE, body, at)),
      "x-edge-device": gatewayAccount(1).address,
    };
    await expect401(forged, "CERTS_BAD_SIGNATURE", "wrong signer");
    // A non-canonical signature sent first is refused (and not remembered); the canonical one then passes.
    const fresh = await headersOf(1, "lease.take", SITE, body, at);
    const f = fresh["x-edge-signature"];
    const freshV01 = `${f.slice(0, 130)}${(parseInt(f.slice(130), 16) - 27).toString(16).padStart(2, "0")}`;
    await expect401({ ...fresh, "x-edge-signature": freshV01 }, "CERTS_BAD_SIGNATURE", "v 0/1 first");
    expect((await send(url, "POST", path, await headersOf(1, "lease.take", SITE, body, at), body)).status).to.equal(
      200,
    );
    // The same new request sent 5 times at once: one is taken, the others are replays.
    const burst = await headersOf(1, "lease.take", SITE, body, c.t + 4);
    const statuses = await Promise.all([...Array(5)].map(() => send(url, "POST", path, burst, body)));
    expect(statuses.map((r) => r.status).sort()).to.deep.equal([200, 409, 409, 409, 409]);
    // A signature over another body, action or subject.
    const other = await headersOf(1, "lease.take", SITE, { ttlSeconds: 61 }, c.t + 2);
    await expect401(other, "CERTS_BAD_SIGNATURE", "another body");
    const released = await headersOf(1, "lease.release", SITE, null, c.t + 3);
    await expect401(released, "CERTS_BAD_SIGNATURE", "another action");
    const refused = async (n: number, code: string) =>
      expect(codeOf(await api.takeLease(n, "other.edge.test")), `device ${n}`).to.deep.equal([403, code]);
    await refused(9, "CERTS_SENDER_NOT_STAKED");
    await refused(STARGATE, "CERTS_SENDER_NOT_STAKED");
    await refused(3, "CERTS_SENDER_NOT_ADMITTED");
    expect(codeOf(await api.putChallenge(3, token(1), SITE))).to.deep.equal([403, "CERTS_SENDER_NOT_ADMITTED"]);
    expect(codeOf(await api.query(9, [SITE]))).to.deep.equal([403, "CERTS_SENDER_NOT_STAKED"]);
  });

  it("D64: malformed tokens and domains, bodies off their schema, oversized bodies: 4xx with a CERTS_* code, never a 5xx", async function () {
    const c = clock();
    const { url, api } = await certs(c);
    const signedRaw = async (method: string, path: string, action: any, subject: string, body: unknown) =>
      send(url, method, path, await headersOf(1, action, subject, body, c.t++), body);
    expect(codeOf(await api.getChallenge("short"))).to.deep.equal([400, "CERTS_BAD_TOKEN"]);
    expect(codeOf(await api.getChallenge(`${"a".repeat(30)}%2F..`))).to.deep.equal([400, "CERTS_BAD_TOKEN"]);
    expect(codeOf(await api.putChallenge(1, "bad token!!!!!!!!!!!!!!!!!!!", SITE))).to.deep.equal([
      400,
      "CERTS_BAD_TOKEN",
    ]);
    for (const domain of ["UPPER.edge.test", "nodot", "-a.edge.test", "a..b", `${"a".repeat(64)}.test`]) {
      expect(codeOf(await api.takeLease(1, domain)), domain).to.deep.equal([400, "CERTS_BAD_DOMAIN"]);
    }
    const bad: Array<[string, string, any, string, unknown]> = [
      ["POST", `/orders/${SITE}/lease`, "lease.take", SITE, { ttlSeconds: 5 }],
      ["POST", `/orders/${SITE}/lease`, "lease.take", SITE, { ttlSeconds: "60" }],
      ["POST", `/orders/${SITE}/lease`, "lease.take", SITE, { ttlSeconds: 60, extra: 1 }],
      ["PUT", `/challenges/${token(1)}`, "challenge.put", token(1), { domain: SITE, keyAuthorization: "x" }],
      ["POST", "/certificates/query", "certificate.query", "", { domains: [] }],
      ["POST", "/certificates/query", "certificate.query", "", { domains: ["Bad Domain"] }],
      ["POST", `/orders/${SITE}/failure`, "order.failed", SITE, { reason: "" }],
    ];
    for (const [method, path, action, subject, body] of bad) {
      const reply = await signedRaw(method, path, action, subject, body);
      expect(codeOf(reply), `${path} ${JSON.stringify(body)}`).to.deep.equal([400, "CERTS_BAD_REQUEST"]);
    }
    const huge = { chain: "A".repeat(100_000), privateKey: "B" };
    const tooLarge = await signedRaw("PUT", `/certificates/${SITE}`, "certificate.put", SITE, huge);
    expect(codeOf(tooLarge)).to.deep.equal([413, "CERTS_TOO_LARGE"]);
    const longReason = await signedRaw("POST", `/orders/${SITE}/failure`, "order.failed", SITE, {
      reason: "x".repeat(5000),
    });
    expect(codeOf(longReason)).to.deep.equal([413, "CERTS_TOO_LARGE"]);
    const notJson = await send(
      url,
      "POST",
      `/orders/${SITE}/lease`,
      await headersOf(1, "lease.take", SITE, null, c.t),
      undefined,
      "{nope",
    );
    expect(notJson.status).to.equal(400);
    expect(notJson.json.code).to.equal("CERTS_BAD_REQUEST");
  });

  it("D64: per-gateway limits: live challenges and leases past them 429 CERTS_LIMIT (others unaffected); open challenge reads 429 per address", async function () {
    const c = clock();
    const limits = ["--max-challenges-per-gateway", "3", "--max-leases-per-gateway", "2", "--max-challenges", "5"];
    const { api } = await certs(c, [...limits, "--challenge-reads-per-minute", "4"]);
    for (let i = 0; i < 3; i++) expect((await api.putChallenge(1, token(i), SITE)).status).to.equal(204);
    expect(codeOf(await api.putChallenge(1, token(3), SITE))).to.deep.equal([429, "CERTS_LIMIT"]);
    expect((await api.putChallenge(1, token(0), SITE)).status, "rewriting its own is not a new one").to.equal(204);
    expect((await api.putChallenge(2, token(10), SITE)).status).to.equal(204);
    expect((await api.putChallenge(2, token(11), SITE)).status).to.equal(204);
    expect(codeOf(await api.putChallenge(2, token(12), SITE)), "the global limit").to.deep.equal([429, "CERTS_LIMIT"]);
    expect((await api.deleteChallenge(1, token(0))).status).to.equal(204);
    expect((await api.putChallenge(2, token(12), SITE)).status, "room again").to.equal(204);
    expect((await api.takeLease(1, "a.edge.test")).status).to.equal(200);
    expect((await api.takeLease(1, "b.edge.test")).status).to.equal(200);
    expect(codeOf(await api.takeLease(1, "c.edge.test"))).to.deep.equal([429, "CERTS_LIMIT"]);
    expect((await api.takeLease(1, "a.edge.test")).status, "extending is not a new lease").to.equal(200);
    expect((await api.takeLease(2, "c.edge.test")).status).to.equal(200);
    // Open reads: 4 a minute per address (3 already spent above? no: only GETs count).
    for (let i = 0; i < 4; i++) expect((await api.getChallenge(token(1))).status).to.equal(200);
    const limited = await api.getChallenge(token(1));
    expect(codeOf(limited)).to.deep.equal([429, "CERTS_RATE_LIMITED"]);
    c.t += 15_000;
    expect((await api.getChallenge(token(1))).status, "a token back after 15 s").to.equal(200);
  });
});
