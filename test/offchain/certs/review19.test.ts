/**
 * The certificate service after issue 19's review (D70): chains verify to a trusted root always (Node's public
 * roots and --trust), a stored certificate is never replaced by one ending no later, a lease is granted only for a
 * domain that needs an order and one holder's hold is capped, and unusual keys and algorithms are 4xx, never 5xx.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

import { type Clock, clock, codeOf, gatewayAccount, gatewayClient, startCerts, trustFile, certsSuite } from "./helpers";

const SITE = "site.edge.test";

describe("certificate service: review of issue 19 (D70)", function () {
  this.timeout(120_000);
  const suite = certsSuite("edge-certs-review-");
  const { running } = suite;
  let runs = 0;

  async function certs(c: Clock, extra: string[] = []) {
    const dir = join(suite.tmp.dir, `run-${++runs}`);
    mkdirSync(dir, { recursive: true });
    const p = await loadFixture(suite.network);
    const started = await startCerts(suite.rpc.url, p.book, dir, extra, { now: c.now });
    running.push(started.service);
    return { ...started, dir, api: gatewayClient(started.url, c) };
  }

  /** A self-signed certificate for `SITE` with an openssl key of `algorithm` (and its options). */
  function selfSigned(name: string, algorithm: string[]): { pem: string; key: string } {
    const dir = join(suite.tmp.dir, `self-${name}`);
    mkdirSync(dir, { recursive: true });
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    execFileSync("openssl", ["genpkey", ...algorithm, "-out", key], { stdio: "pipe" });
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-key",
        key,
        "-out",
        cert,
        "-days",
        "7",
        "-subj",
        `/CN=${SITE}`,
        "-addext",
        `subjectAltName=DNS:${SITE}`,
      ],
      { stdio: "pipe" },
    );
    return { pem: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
  }

  it("R19-1: without --trust a chain to an unknown root or a lone self-signed leaf is 422 CERTS_UNTRUSTED; nothing stored", async function () {
    const c = clock();
    const { api } = await certs(c);
    const self = selfSigned("ec", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    const chained = suite.ca.issue(SITE);
    await api.takeLease(1, SITE);
    for (const [what, chain, key] of [
      ["a self-signed leaf", self.pem, self.key],
      ["a chain to an unknown root", chained.chain, chained.keyPem],
      ["the chain with its unknown root", chained.chain + suite.ca.rootPem, chained.keyPem],
    ]) {
      const reply = await api.putCertificate(1, SITE, chain, key);
      expect(codeOf(reply), what).to.deep.equal([422, "CERTS_UNTRUSTED"]);
    }
    expect((await api.query(2, [SITE])).json.certificates[0].status).to.equal("none");
  });

  it("R19-1: a certificate ending no later than the stored one is 409 CERTS_NOT_NEWER (the same one again is a no-op); a later one replaces it", async function () {
    const c = clock();
    const { api } = await certs(c, ["--trust", trustFile(suite.tmp.dir, suite.ca)]);
    const stored = suite.ca.issue(SITE, 7);
    await api.takeLease(1, SITE);
    const first = await api.putCertificate(1, SITE, stored.chain, stored.keyPem);
    expect(first.status).to.equal(200);
    c.t = first.json.renewAt; // due: another gateway may order
    expect((await api.takeLease(2, SITE)).status).to.equal(200);
    const shorter = suite.ca.issue(SITE, 6);
    const refused = await api.putCertificate(2, SITE, shorter.chain, shorter.keyPem);
    expect(codeOf(refused)).to.deep.equal([409, "CERTS_NOT_NEWER"]);
    expect(refused.json.storedNotAfter).to.equal(first.json.notAfter);
    expect(refused.json.notAfter).to.be.below(first.json.notAfter);
    expect((await api.query(1, [SITE])).json.certificates[0].fingerprint).to.equal(first.json.fingerprint);
    const again = await api.putCertificate(2, SITE, stored.chain, stored.keyPem);
    expect([again.status, again.json.fingerprint], "the same certificate: idempotent").to.deep.equal([
      200,
      first.json.fingerprint,
    ]);
    expect((await api.takeLease(2, SITE)).status).to.equal(200);
    const later = suite.ca.issue(SITE, 9);
    const replaced = await api.putCertificate(2, SITE, later.chain, later.keyPem);
    expect(replaced.status).to.equal(200);
    expect(replaced.json.notAfter).to.be.above(first.json.notAfter);
  });

  it("R19-3: a lease is refused (409 CERTS_NOT_DUE with renewAt) while the stored certificate is before its renewal point; granted at it", async function () {
    const c = clock();
    const { api } = await certs(c, ["--trust", trustFile(suite.tmp.dir, suite.ca)]);
    const cert = suite.ca.issue(SITE, 3);
    await api.takeLease(1, SITE);
    const stored = (await api.putCertificate(1, SITE, cert.chain, cert.keyPem)).json;
    for (const n of [1, 2]) {
      const refused = await api.takeLease(n, SITE);
      expect(codeOf(refused)).to.deep.equal([409, "CERTS_NOT_DUE"]);
      expect([refused.json.fingerprint, refused.json.renewAt]).to.deep.equal([stored.fingerprint, stored.renewAt]);
    }
    c.t = stored.renewAt - 1;
    expect(codeOf(await api.takeLease(2, SITE))).to.deep.equal([409, "CERTS_NOT_DUE"]);
    c.t = stored.renewAt;
    expect((await api.takeLease(2, SITE)).status).to.equal(200);
  });

  it("R19-3: one holder's re-takes extend its lease at most 1,800 s from its first take; then 409 CERTS_LEASE_CAPPED until it lapses", async function () {
    const c = clock();
    const { api } = await certs(c);
    const t0 = c.t;
    expect((await api.takeLease(1, SITE, 600)).json.expiresAt).to.equal(t0 + 600_000);
    c.t = t0 + 500_000;
    expect((await api.takeLease(1, SITE, 600)).json.expiresAt).to.equal(t0 + 1_100_000);
    c.t = t0 + 1_000_000;
    expect((await api.takeLease(1, SITE, 600)).json.expiresAt).to.equal(t0 + 1_600_000);
    c.t = t0 + 1_500_000;
    expect((await api.takeLease(1, SITE, 600)).json.expiresAt, "clipped at the cap").to.equal(t0 + 1_800_000);
    c.t = t0 + 1_700_000;
    const capped = await api.takeLease(1, SITE, 600);
    expect(codeOf(capped)).to.deep.equal([409, "CERTS_LEASE_CAPPED"]);
    const { holder, takenAt, until } = capped.json;
    expect([holder.toLowerCase(), takenAt, until]).to.deep.equal([
      gatewayAccount(1).address.toLowerCase(),
      t0,
      t0 + 1_800_000,
    ]);
    expect(codeOf(await api.takeLease(2, SITE)), "still held").to.deep.equal([409, "CERTS_LEASE_HELD"]);
    c.t = t0 + 1_800_000; // lapsed: anyone may take it, from a new first take
    expect((await api.takeLease(2, SITE, 600)).json.expiresAt).to.equal(c.t + 600_000);
  });

  it("R19-3: --max-lease-hold-seconds sets the cap", async function () {
    const c = clock();
    const { api } = await certs(c, ["--max-lease-hold-seconds", "120"]);
    const t0 = c.t;
    expect((await api.takeLease(1, SITE, 600)).json.expiresAt).to.equal(t0 + 120_000);
    c.t += 1_000;
    expect(codeOf(await api.takeLease(1, SITE, 600))).to.deep.equal([409, "CERTS_LEASE_CAPPED"]);
  });

  it("R19-10: Ed25519, RSA-PSS, X25519 and SM2 keys and certificates are stored or refused with a 4xx CERTS_* code, never a 5xx", async function () {
    const c = clock();
    const kinds = {
      ed25519: selfSigned("ed25519", ["-algorithm", "ED25519"]),
      pss: selfSigned("pss", ["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"]),
      ed448: selfSigned("ed448", ["-algorithm", "ED448"]),
    };
    const roots = join(suite.tmp.dir, "odd-roots.pem");
    writeFileSync(
      roots,
      Object.values(kinds)
        .map((k) => k.pem)
        .join(""),
    );
    const { api } = await certs(c, ["--trust", roots]);
    const x25519 = join(suite.tmp.dir, "x25519.pem");
    execFileSync("openssl", ["genpkey", "-algorithm", "X25519", "-out", x25519], { stdio: "pipe" });
    const sm2 = join(suite.tmp.dir, "sm2.pem");
    execFileSync("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", sm2], {
      stdio: "pipe",
    });
    const cases: Array<[string, string, string]> = [
      ["ed25519 with an RSA-PSS key", kinds.ed25519.pem, kinds.pss.key],
      ["RSA-PSS with an X25519 key", kinds.pss.pem, readFileSync(x25519, "utf8")],
      ["ed448 with an SM2 key", kinds.ed448.pem, readFileSync(sm2, "utf8")],
      ["RSA-PSS signed 'by' ed25519", kinds.pss.pem + kinds.ed25519.pem, kinds.pss.key],
    ];
    for (const [what, chain, key] of cases) {
      await api.takeLease(1, SITE);
      const reply = await api.putCertificate(1, SITE, chain, key);
      expect(reply.status, `${what}: ${JSON.stringify(reply.json)}`).to.equal(422);
      expect(reply.json.code, what).to.match(/^CERTS_(BAD_CHAIN|BAD_KEY|KEY_MISMATCH)$/);
    }
    // The unusual but valid ones are stored (each newer than the last, or refused as not newer: 409, not 5xx).
    for (const [what, kind] of Object.entries(kinds)) {
      await api.takeLease(1, SITE);
      const reply = await api.putCertificate(1, SITE, kind.pem, kind.key);
      expect(reply.status, `${what}: ${JSON.stringify(reply.json)}`).to.be.oneOf([200, 409]);
      if (reply.status === 200) c.t = Math.max(c.t, reply.json.renewAt);
    }
    expect((await api.query(1, [SITE])).json.certificates[0].status).to.equal("issued");
  });
});
