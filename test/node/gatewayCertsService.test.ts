/**
 * The gateway's certificate client and sync (D65) against the real certificate service (offchain/certs, D64) on the
 * in-process chain (test/offchain/certs/helpers.ts: gateways 1 and 2 admitted, 3 unbonding): the API as the
 * gateway calls it, a challenge written by gateway 1 answered by gateway 2's front door, and gateway 2 serving over
 * HTTPS the certificate gateway 1 stored, its key sealed to gateway 2's device key.
 */
import { expect } from "chai";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";

import { CertServiceClient } from "../../node/roles/gateway/certClient";
import { EdgeError } from "../../offchain/common/errors";
import {
  CHAIN_ID,
  deployForCerts,
  gatewayAccount,
  gatewayKey,
  startCerts,
  tempDir,
  trustFile,
} from "../offchain/certs/helpers";
import { waitUntil } from "../shared/gatewayHarness";
import { type GatewayRole, startGatewayRole } from "../shared/gatewayRole";
import { handshake, httpGet, sitesFile } from "../shared/gatewayTls";
import { type RpcServer, startRpcServer } from "../shared/rpc";
import { type TestCa, createTestCa } from "../shared/testCa";

const DOMAIN = "www.example.test";
const TOKEN = "svc_abcdefghijklmnopqrstuv0123";
const THUMB = "Q".repeat(43);

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.fail("accepted"),
    (error: unknown) => {
      expect(error).to.be.instanceOf(EdgeError);
      return error as EdgeError;
    },
  );

describe("the gateway against the real certificate service (D64, D65)", function () {
  this.timeout(120_000);
  let rpc: RpcServer;
  let tmp: ReturnType<typeof tempDir>;
  let ca: TestCa;
  const closing: (() => Promise<void>)[] = [];
  async function network() {
    return deployForCerts(tmp.dir);
  }

  before(async () => {
    tmp = tempDir("gateway-certs-service-");
    rpc = await startRpcServer();
    ca = createTestCa();
  });
  after(async () => {
    for (const close of closing.reverse()) await close();
    ca.close();
    await rpc.close();
    tmp.remove();
  });

  it("a challenge written by gateway 1 is answered by gateway 2, which serves gateway 1's certificate over HTTPS", async () => {
    const p = await loadFixture(network);
    const dir = join(tmp.dir, "service");
    mkdirSync(dir, { recursive: true });
    const { service, url } = await startCerts(rpc.url, p.book, dir, ["--trust", trustFile(dir, ca)]);
    closing.push(() => service.close());
    const one = new CertServiceClient({ account: gatewayAccount(1), chainId: CHAIN_ID }, url);
    const two = new CertServiceClient({ account: gatewayAccount(2), chainId: CHAIN_ID }, url);
    const three = new CertServiceClient({ account: gatewayAccount(3), chainId: CHAIN_ID }, url);

    const lease = await one.takeLease(DOMAIN, 60);
    expect(lease.holder.toLowerCase()).to.equal(gatewayAccount(1).address.toLowerCase());
    const held = await refusal(two.takeLease(DOMAIN, 60));
    expect([held.status, held.code]).to.deep.equal([409, "CERTS_LEASE_HELD"]);
    expect((await refusal(three.query([DOMAIN], []))).status).to.equal(403); // not admitted

    await one.putChallenge(TOKEN, DOMAIN, `${TOKEN}.${THUMB}`);
    const gateway: GatewayRole = await startGatewayRole({
      key: gatewayKey(2),
      config: { certs: url, tlsPort: 0, sites: sitesFile(dir, [DOMAIN]), certSyncMs: 200 },
    });
    closing.push(() => gateway.close());
    expect(await httpGet(gateway.frontDoor, `/.well-known/acme-challenge/${TOKEN}`, DOMAIN)).to.deep.equal({
      status: 200,
      body: `${TOKEN}.${THUMB}`,
    });
    await one.deleteChallenge(TOKEN);
    expect(await two.getChallenge(TOKEN)).to.equal(undefined);

    const issued = ca.issue(DOMAIN);
    await one.putCertificate(DOMAIN, issued.chain, issued.keyPem);
    const loaded = () => (gateway.status().certificates as { loaded: number }).loaded;
    await waitUntil("gateway 2 loads the certificate", () => loaded() === 1, 10_000);
    const [entry] = (await two.query([DOMAIN], [])).certificates;
    expect(entry.status).to.equal("issued");
    expect(await handshake(gateway.status().tlsFrontDoor as string, DOMAIN, ca.rootPem)).to.equal(entry.fingerprint);
    expect((await two.query([DOMAIN], [entry.fingerprint!])).certificates[0].status).to.equal("current");
  });
});
