/**
 * The certificate service's state across restarts (its SQLite file), its data key and the private keys at rest,
 * its start-up checks, and its metrics (promtool).
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

import { loadCertsConfig } from "../../../offchain/certs/config";
import { CertsService } from "../../../offchain/certs/service";
import { unseal } from "../../../offchain/common/seal";
import { promtoolProblems } from "../../shared/promtool";
import { spawnServe } from "../../shared/spawn";
import {
  type Clock,
  certsArgs,
  clock,
  codeOf,
  gatewayAccount,
  gatewayClient,
  gatewayKey,
  startCerts,
  trustFile,
  token,
  certsSuite,
} from "./helpers";

const SITE = "site.edge.test";

describe("certificate service: restarts, keys at rest, metrics", function () {
  this.timeout(120_000);
  const suite = certsSuite("edge-certs-state-");
  const { running } = suite;
  let runs = 0;

  async function certs(c: Clock, dir: string, extra: string[] = []) {
    mkdirSync(dir, { recursive: true });
    const p = await loadFixture(suite.network);
    const trusted = extra.includes("--trust") ? extra : ["--trust", trustFile(suite.tmp.dir, suite.ca), ...extra];
    const started = await startCerts(suite.rpc.url, p.book, dir, trusted, { now: c.now });
    running.push(started.service);
    return { ...started, p, api: gatewayClient(started.url, c) };
  }

  it("D64: a restart keeps certificates, leases, backoffs and challenges; the key is encrypted at rest (no PEM in the files) and the data key file is 0600", async function () {
    const c = clock();
    const dir = join(suite.tmp.dir, `run-${++runs}`);
    const first = await certs(c, dir, ["--backoff-seconds", "60"]);
    const cert = suite.ca.issue(SITE);
    await first.api.takeLease(1, SITE);
    expect((await first.api.putCertificate(1, SITE, cert.chain, cert.keyPem)).status).to.equal(200);
    await first.api.takeLease(1, "held.edge.test");
    await first.api.takeLease(2, "failing.edge.test");
    const failed = (await first.api.orderFailed(2, "failing.edge.test")).json;
    expect((await first.api.putChallenge(1, token(1), SITE)).status).to.equal(204);
    await first.service.close();
    running.splice(0);

    const keyBody = cert.keyPem.split("\n").slice(1, -2).join("");
    for (const file of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, file));
      expect(bytes.includes("PRIVATE KEY"), file).to.equal(false);
      expect(bytes.includes(keyBody.slice(0, 40)), file).to.equal(false);
    }
    expect(statSync(join(dir, "data.key")).mode & 0o777).to.equal(0o600);
    expect(statSync(join(dir, "data.key")).size).to.equal(32);

    const second = await certs(c, dir, ["--backoff-seconds", "60"]);
    const entry = (await second.api.query(2, [SITE])).json.certificates[0];
    expect(entry.status).to.equal("issued");
    expect(unseal(gatewayKey(2), entry.sealedKey, SITE).toString()).to.include("PRIVATE KEY");
    const held = await second.api.takeLease(2, "held.edge.test");
    expect(codeOf(held)).to.deep.equal([409, "CERTS_LEASE_HELD"]);
    expect(held.json.holder).to.equal(gatewayAccount(1).address.toLowerCase());
    const backoff = await second.api.takeLease(2, "failing.edge.test");
    expect([...codeOf(backoff), backoff.json.backoffUntil]).to.deep.equal([429, "CERTS_BACKOFF", failed.backoffUntil]);
    expect((await second.api.getChallenge(token(1))).status).to.equal(200);
  });

  it("D64: a start with another data key stops (the stored keys do not open with it); a data key file of the wrong size or readable by others stops the start", async function () {
    const c = clock();
    const dir = join(suite.tmp.dir, `run-${++runs}`);
    const first = await certs(c, dir);
    const cert = suite.ca.issue(SITE);
    await first.api.takeLease(1, SITE);
    await first.api.putCertificate(1, SITE, cert.chain, cert.keyPem);
    await first.service.close();
    running.splice(0);
    const p = await loadFixture(suite.network);
    const config = (extra: string[]) => loadCertsConfig(certsArgs(suite.rpc.url, p.book, dir, extra), {});
    const otherKey = join(dir, "other.key");
    writeFileSync(otherKey, Buffer.alloc(16), { mode: 0o600 });
    await expectStartError(config(["--data-key-file", otherKey]), /holds 16 bytes, not 32/);
    writeFileSync(otherKey, Buffer.alloc(32, 7), { mode: 0o600 });
    chmodSync(otherKey, 0o644);
    await expectStartError(config(["--data-key-file", otherKey]), /readable by others/);
    chmodSync(otherKey, 0o600);
    // A 32-byte key, but not the one the database was written with: the start stops (no 500s on every read).
    await expectStartError(config(["--data-key-file", otherKey]), /not the key this database's private keys/);
    const again = await certs(c, dir);
    expect((await again.api.query(1, [SITE])).json.certificates[0].status, "its own key still opens").to.equal(
      "issued",
    );
    const bad = join(dir, "bad-trust.pem");
    writeFileSync(bad, "not a certificate");
    await expectStartError(config(["--trust", bad]), /holds no PEM certificate/);
    await expectStartError(config(["--trust", join(dir, "missing.pem")]), /cannot read --trust/);
  });

  async function expectStartError(config: ReturnType<typeof loadCertsConfig>, message: RegExp) {
    const error = await CertsService.create(config).then(
      (service) => {
        running.push(service);
        return undefined;
      },
      (e: Error) => e,
    );
    expect(error?.message).to.match(message);
  }

  it("D64: metrics: orders by outcome, failures, days to expiry per certificate, challenges, leases, refusals by code; promtool finds nothing but the days unit the issue names", async function () {
    const c = clock();
    const { api, url, service } = await certs(c, join(suite.tmp.dir, `run-${++runs}`), ["--backoff-seconds", "1"]);
    const a = suite.ca.issue("a.edge.test", 7);
    const b = suite.ca.issue("b.edge.test", 3);
    for (const [domain, cert] of [
      ["a.edge.test", a],
      ["b.edge.test", b],
    ] as const) {
      await api.takeLease(1, domain);
      expect((await api.putCertificate(1, domain, cert.chain, cert.keyPem)).status).to.equal(200);
    }
    await api.takeLease(2, "c.edge.test");
    await api.orderFailed(2, "c.edge.test");
    await api.takeLease(2, "d.edge.test", 10);
    await api.takeLease(2, "e.edge.test", 600);
    await api.putChallenge(1, token(1), "a.edge.test");
    await api.takeLease(2, "f.edge.test");
    expect(codeOf(await api.takeLease(1, "f.edge.test"))).to.deep.equal([409, "CERTS_LEASE_HELD"]);
    await api.getChallenge("bad");
    c.t += 11_000;
    service.book.sweep();
    const text = await (await fetch(`${url}/metrics`)).text();
    // The one lint: the issue names the gauge in days ("edge_cert_days_to_expiry"), promtool prefers seconds.
    const problems = promtoolProblems(text)
      .split("\n")
      .filter((line) => line !== 'edge_cert_days_to_expiry use base unit "seconds" instead of "days"');
    expect(problems.join("\n")).to.equal("");
    const value = (line: string) =>
      Number(
        text
          .split("\n")
          .find((l) => l.startsWith(`${line} `))
          ?.split(" ")[1],
      );
    expect(value('edge_cert_orders_total{outcome="issued"}')).to.equal(2);
    expect(value('edge_cert_orders_total{outcome="failed"}')).to.equal(1);
    expect(value('edge_cert_orders_total{outcome="lease_expired"}')).to.equal(1);
    expect(value("edge_cert_failures_total")).to.equal(1);
    expect(value("edge_cert_challenges")).to.equal(1);
    expect(value("edge_cert_leases")).to.equal(2);
    expect(value('edge_cert_requests_refused_total{code="CERTS_LEASE_HELD"}')).to.equal(1);
    expect(value('edge_cert_requests_refused_total{code="CERTS_BAD_TOKEN"}')).to.equal(1);
    const days = (domain: string) => value(`edge_cert_days_to_expiry{domain="${domain}"}`);
    expect(days("a.edge.test")).to.be.closeTo(7, 0.01);
    expect(days("b.edge.test")).to.be.closeTo(3, 0.01);
  });

  it("D64: npm run certs -- serve runs the service as its own process until SIGTERM (exit 0); a bad configuration exits 2", async function () {
    const p = await loadFixture(suite.network);
    const dir = join(suite.tmp.dir, `run-${++runs}`);
    const args = certsArgs(suite.rpc.url, p.book, dir).map((a) => (a === "silent" ? "info" : a));
    const child = spawnServe("offchain/certs/cli.ts", args, {}, "certs started");
    try {
      const url = await child.url;
      expect((await fetch(`${url}/health`)).status).to.equal(200);
      const c = clock();
      expect((await gatewayClient(url, c).takeLease(1, SITE)).status, child.output()).to.equal(200);
    } finally {
      child.process.kill("SIGTERM");
    }
    expect(await child.exited).to.equal(0);
    expect(statSync(join(dir, "data.key")).mode & 0o777).to.equal(0o600);
    const cli = (...argv: string[]) =>
      spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "offchain/certs/cli.ts", ...argv], {
        encoding: "utf8",
        timeout: 60_000,
      });
    const bad = cli("serve", "--rpc", "nope", "--addresses", p.book, "--backoff-seconds", "0");
    expect([bad.status, bad.stderr]).to.satisfy(
      ([status, stderr]: [number, string]) => status === 2 && /--rpc/.test(stderr) && /--backoff-seconds/.test(stderr),
    );
    expect(cli("serve", "--help").stdout).to.include("--data-key-file");
    expect(cli("nonsense").status).to.equal(2);
  });
});
