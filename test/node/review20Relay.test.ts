/**
 * Review of issue 20, R20-4 (docs/decisions.md): a client reading a response slowly must not raise the p99 a
 * gateway reports to the stargates (x-edge-load, D71) nor its region's p99 in the queue (D69): both count to the
 * host's response head, not to the end of the relay.
 */
import { expect } from "chai";
import { request } from "node:http";
import type { Http2ServerResponse } from "node:http2";

import type { AppliedConfig } from "../../node/context";
import { GatewayLink } from "../../node/roles/host/link";
import { type NetworkConfig, type Region, emptyConfig } from "../../offchain/common/protocol";
import { CHAIN, hostAccount, silentLog, waitUntil } from "../shared/gatewayHarness";
import { type GatewayRole, startGatewayRole } from "../shared/gatewayRole";

const DE: Region = { country: "DE", region: "eu-central" };
const SITE = "slow-reader.example.test";
const BODY = Buffer.alloc(8 * 1024 * 1024, "x");
const READ_AFTER_MS = 3_000;

describe("review of issue 20: R20-4, a slow reader does not raise the reported p99", function () {
  this.timeout(60_000);
  let gateway: GatewayRole;
  let link: GatewayLink;

  before(async function () {
    gateway = await startGatewayRole({ key: `0x${"74".repeat(32)}`, config: { region: DE } });
    link = new GatewayLink(
      { signer: { account: hostAccount(0x41), chainId: CHAIN }, log: silentLog },
      gateway.url,
      { capacity: 2, region: DE, publicUrl: () => "http://127.0.0.1:9", pingMs: 1_000, minBackoffMs: 20, maxBackoffMs: 200 }, // prettier-ignore
      ((_request: unknown, response: Http2ServerResponse) => {
        response.setHeader("x-edge-cache", "miss");
        response.end(BODY);
      }) as never,
    );
    await link.want();
    await waitUntil("the host routable", () => gateway.status().hosts === 1);
    const site = { id: "slow", hostname: SITE, owner: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", origin: "http://127.0.0.1:9" }; // prettier-ignore
    const applied: AppliedConfig = { version: 1, seq: 0, hash: `0x${"00".repeat(32)}`, document: { ...emptyConfig(1), sites: [site] } as NetworkConfig }; // prettier-ignore
    gateway.role.applyConfig!(applied);
  });
  after(async function () {
    await link?.leave();
    await gateway?.close();
  });

  it("counts the request to the host's response head while the client takes seconds to read the body", async function () {
    const read = await new Promise<{ status: number; bytes: number; ms: number }>((resolve, reject) => {
      const began = Date.now();
      const req = request(`${gateway.frontDoor}/big`, { headers: { host: SITE } }, (res) => {
        res.pause(); // a slow reader: nothing read for READ_AFTER_MS, so the relay waits on flow control
        let bytes = 0;
        setTimeout(() => {
          res.on("data", (chunk: Buffer) => (bytes += chunk.length));
          res.on("end", () => resolve({ status: res.statusCode!, bytes, ms: Date.now() - began }));
          res.resume();
        }, READ_AFTER_MS);
      });
      req.on("error", reject);
      req.end();
    });
    expect(read.status).to.equal(200);
    expect(read.bytes).to.equal(BODY.length);
    expect(read.ms).to.be.at.least(READ_AFTER_MS);
    // Both p99s are the time to the head (milliseconds here), far under the client's READ_AFTER_MS.
    expect(gateway.work.latency.p99()).to.be.below(READ_AFTER_MS / 2);
    const regions = (gateway.status().placement as { regions: Record<string, { p99Ms: number }> }).regions;
    expect(regions["DE/eu-central"]?.p99Ms ?? 0).to.be.below(READ_AFTER_MS / 2);
  });
});
