/**
 * The Pebble harness (scripts/lib/pebble.ts, issue 19 D66): Pebble starts with its own listener certificate, its
 * ACME directory answers over HTTPS trusting that certificate, the management listener hands out this run's root
 * CA (a fresh one at each start), and stop() ends the process. pebble-challtestsrv answers A queries with the
 * address it was given. Nothing is ordered here (test/scripts/certsPebble.test.ts orders through the network).
 */
import { Resolver } from "node:dns/promises";
import { X509Certificate } from "node:crypto";

import { expect } from "chai";

import {
  type ChallTestSrv,
  type Pebble,
  freeTcpPort,
  httpsGet,
  pebbleInstalled,
  startChallTestSrv,
  startPebble,
} from "../../scripts/lib/pebble";

describe("Pebble harness (scripts/lib/pebble.ts)", function () {
  this.timeout(60_000);
  let dns: ChallTestSrv;
  let pebble: Pebble;

  before(async function () {
    if (!pebbleInstalled()) {
      // CI installs pebble (.ci/run); a machine without it skips rather than failing on a missing tool.
      this.skip();
    }
    dns = await startChallTestSrv({ defaultIPv4: "127.0.0.5" });
    pebble = await startPebble({ httpPort: await freeTcpPort(), dnsServer: dns.dnsServer });
  });

  after(async function () {
    await pebble?.stop();
    await dns?.stop();
  });

  it("pebble-challtestsrv answers every name's A query with its default address", async function () {
    const resolver = new Resolver({ timeout: 1_000, tries: 2 });
    resolver.setServers([dns.dnsServer]);
    expect(await resolver.resolve4("shop.example.test")).to.deep.equal(["127.0.0.5"]);
    expect(await resolver.resolve4("another.name.test")).to.deep.equal(["127.0.0.5"]);
  });

  it("serves the ACME directory over HTTPS with its listener certificate (localhost and 127.0.0.1)", async function () {
    const listener = new X509Certificate(pebble.caPem);
    expect(listener.checkHost("localhost")).to.equal("localhost");
    expect(listener.checkIP("127.0.0.1")).to.equal("127.0.0.1");
    const { status, body } = await httpsGet(pebble.directory, pebble.caPem);
    expect(status).to.equal(200);
    const directory = JSON.parse(body) as Record<string, string>;
    for (const field of ["newAccount", "newNonce", "newOrder", "revokeCert"])
      expect(directory[field], field).to.match(/^https:\/\/127\.0\.0\.1:\d+\//);
    // Only Pebble's listener certificate is trusted for it: the system's CAs do not know it.
    const untrusted = await fetch(pebble.directory).then(
      () => "answered",
      () => "refused",
    );
    expect(untrusted).to.equal("refused");
  });

  it("hands out this run's root CA, and a fresh one at each start", async function () {
    const root = new X509Certificate(await pebble.root());
    expect(root.ca).to.equal(true);
    expect(root.verify(root.publicKey), "self-signed").to.equal(true);
    expect(root.subject).to.match(/Pebble Root CA/);
    expect(await pebble.root(), "the same within a run").to.equal(root.toString());
    const other = await startPebble({ httpPort: await freeTcpPort(), dnsServer: dns.dnsServer });
    try {
      expect(await other.root()).to.not.equal(root.toString());
    } finally {
      await other.stop();
    }
    const stopped = await httpsGet(other.directory, other.caPem, 1_000).then(
      () => "answered",
      () => "gone",
    );
    expect(stopped, "stop() ends the process").to.equal("gone");
  });
});
