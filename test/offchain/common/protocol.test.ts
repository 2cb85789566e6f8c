import { expect } from "chai";
import { Value } from "typebox/value";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import {
  ClientJobBodySchema,
  HeartbeatBodySchema,
  HostRegistrationBodySchema,
  JobReportBodySchema,
  UsageBatchBodySchema,
  signHeartbeat,
  signHostRegistration,
  signJobReport,
  signJobRequest,
  signUsageBatch,
  verifyHeartbeat,
  verifyHostRegistration,
  verifyJobReport,
  verifyJobRequest,
  verifyUsageBatch,
  checkJobRequest,
  signatureProblem,
} from "../../../offchain/common/protocol";
import { twins } from "../../shared/signatures";

const CHAIN = 31337;
const alice = privateKeyToAccount(`0x${"11".repeat(32)}`);
const mallory = privateKeyToAccount(`0x${"22".repeat(32)}`);
const gateway = privateKeyToAccount(`0x${"33".repeat(32)}`).address;
const host = privateKeyToAccount(`0x${"44".repeat(32)}`).address;
const forged = `0x${"ab".repeat(65)}` as Hex;

/** A decimal string plus one. */
const bump = (value: string) => (BigInt(value) + 1n).toString();

describe("offchain/common/protocol: one signer and verifier per message", function () {
  it("job reports: signed by the gateway they name, over the entries; any change or another signer fails", async function () {
    const body = await signJobReport(alice, CHAIN, 7n, 2n, [{ host, jobs: 12n }]);
    expect(Value.Check(JobReportBodySchema, body)).to.equal(true);
    expect((await verifyJobReport(CHAIN, body)).signed).to.equal(true);
    expect((await verifyJobReport(CHAIN + 1, body)).signed).to.equal(false);
    for (const field of ["epoch", "sequence"] as const)
      expect((await verifyJobReport(CHAIN, { ...body, [field]: bump(body[field]) })).signed).to.equal(false);
    expect((await verifyJobReport(CHAIN, { ...body, entries: [{ host, jobs: "13" }] })).signed).to.equal(false);
    expect((await verifyJobReport(CHAIN, { ...body, gateway: mallory.address })).signed).to.equal(false);
    expect((await verifyJobReport(CHAIN, { ...body, signature: forged })).signed).to.equal(false);
    const tooMany = { ...body, entries: [{ host, jobs: (1n << 256n).toString() }] };
    await expect(verifyJobReport(CHAIN, tooMany)).to.be.rejectedWith(RangeError);
  });

  it("heartbeats and usage batches: signed by the stargate or gateway they name", async function () {
    const beat = await signHeartbeat(alice, CHAIN, 3n, 1_000n);
    expect(Value.Check(HeartbeatBodySchema, beat)).to.equal(true);
    expect(await verifyHeartbeat(CHAIN, beat)).to.equal(true);
    expect(await verifyHeartbeat(CHAIN, { ...beat, timestamp: "1001" })).to.equal(false);
    expect(await verifyHeartbeat(CHAIN, { ...beat, stargate: mallory.address })).to.equal(false);
    const record = {
      id: "a:1:0",
      gateway: alice.address.toLowerCase(),
      customer: host,
      service: "compute",
      metric: "jobs",
      quantity: "5",
      time: 1,
    };
    const batch = await signUsageBatch(alice, CHAIN, 9n, [record]);
    expect(Value.Check(UsageBatchBodySchema, batch)).to.equal(true);
    expect(await verifyUsageBatch(CHAIN, batch)).to.equal(true);
    expect(await verifyUsageBatch(CHAIN, { ...batch, records: [{ ...record, quantity: "6" }] })).to.equal(false);
    expect(await verifyUsageBatch(CHAIN, { ...batch, sequence: "10" })).to.equal(false);
    expect(await verifyUsageBatch(CHAIN, { ...batch, signature: forged })).to.equal(false);
  });

  it("host registrations: signed by the host for one gateway, URL and time", async function () {
    const body = await signHostRegistration(alice, CHAIN, {
      gateway,
      url: "http://127.0.0.1:1",
      leaving: false,
      timestamp: 5n,
    });
    expect(Value.Check(HostRegistrationBodySchema, body)).to.equal(true);
    expect(await verifyHostRegistration(CHAIN, body)).to.equal(true);
    expect(await verifyHostRegistration(CHAIN, { ...body, leaving: true })).to.equal(false);
    expect(await verifyHostRegistration(CHAIN, { ...body, url: "http://127.0.0.1:2" })).to.equal(false);
    expect(await verifyHostRegistration(CHAIN, { ...body, gateway: host })).to.equal(false);
    expect(await verifyHostRegistration(CHAIN, { ...body, host: mallory.address })).to.equal(false);
    expect(body).to.include({ country: "", region: "" }); // undeclared (D68)
  });

  it("host registrations sign the host's region (D68): another region, or a region added, does not verify", async function () {
    const region = { country: "DE", region: "eu-central" };
    const body = await signHostRegistration(alice, CHAIN, {
      gateway,
      url: "http://127.0.0.1:1",
      leaving: false,
      timestamp: 5n,
      region,
    });
    expect(body).to.include({ country: "DE", region: "eu-central" });
    expect(Value.Check(HostRegistrationBodySchema, body)).to.equal(true);
    expect(await verifyHostRegistration(CHAIN, body)).to.equal(true);
    expect(await verifyHostRegistration(CHAIN, { ...body, country: "FR" })).to.equal(false);
    expect(await verifyHostRegistration(CHAIN, { ...body, region: "eu-west" })).to.equal(false);
    expect(await verifyHostRegistration(CHAIN, { ...body, country: "", region: "" })).to.equal(false);
    expect(Value.Check(HostRegistrationBodySchema, { ...body, country: "de" })).to.equal(false);
    expect(Value.Check(HostRegistrationBodySchema, { ...body, region: "EU" })).to.equal(false);
  });

  it("job requests: signed by the customer for this gateway and body, the customer header in any letter case", async function () {
    const { body, headers } = await signJobRequest(alice, CHAIN, gateway, { payload: "x", rounds: 2 }, 100n);
    expect(Value.Check(ClientJobBodySchema, body)).to.equal(true);
    for (const customer of [alice.address, alice.address.toLowerCase(), `0x${alice.address.slice(2).toUpperCase()}`])
      expect(await verifyJobRequest(CHAIN, gateway, { ...headers, "x-edge-customer": customer }, body)).to.equal(true);
    expect(await verifyJobRequest(CHAIN, host, headers, body)).to.equal(false);
    expect(await verifyJobRequest(CHAIN, gateway, headers, { ...body, rounds: 3 })).to.equal(false);
    expect(await verifyJobRequest(CHAIN, gateway, { ...headers, "x-edge-timestamp": "101" }, body)).to.equal(false);
    expect(await verifyJobRequest(CHAIN, gateway, { ...headers, "x-edge-customer": mallory.address }, body)).to.equal(
      false,
    );
    expect(await verifyJobRequest(CHAIN, gateway, { ...headers, "x-edge-signature": forged }, body)).to.equal(false);
  });
});

describe("offchain/common/protocol: canonical signatures (F1)", function () {
  it("F1: every verifier refuses the v 0/1 and high-s encodings of a valid signature; letter case is the same bytes", async function () {
    const report = await signJobReport(alice, CHAIN, 7n, 2n, [{ host, jobs: 12n }]);
    const beat = await signHeartbeat(alice, CHAIN, 3n, 1_000n);
    const batch = await signUsageBatch(alice, CHAIN, 9n, []);
    const registration = await signHostRegistration(alice, CHAIN, {
      gateway,
      url: "http://127.0.0.1:1",
      leaving: false,
      timestamp: 5n,
    });
    const job = await signJobRequest(alice, CHAIN, gateway, { payload: "x", rounds: 2 }, 100n);
    const verifiers: Array<[string, (signature: Hex) => Promise<boolean>]> = [
      ["report", async (signature) => (await verifyJobReport(CHAIN, { ...report, signature })).signed],
      ["heartbeat", (signature) => verifyHeartbeat(CHAIN, { ...beat, signature })],
      ["usage", (signature) => verifyUsageBatch(CHAIN, { ...batch, signature })],
      ["registration", (signature) => verifyHostRegistration(CHAIN, { ...registration, signature })],
      [
        "job",
        (signature) => verifyJobRequest(CHAIN, gateway, { ...job.headers, "x-edge-signature": signature }, job.body),
      ],
    ];
    const signatures = [report, beat, batch, registration].map((b) => b.signature);
    signatures.push(job.headers["x-edge-signature"]);
    for (const [i, [name, verify]] of verifiers.entries()) {
      const signature = signatures[i] as Hex;
      expect(signatureProblem(signature), name).to.equal(undefined);
      expect(await verify(signature), name).to.equal(true);
      expect(await verify(`0x${signature.slice(2).toUpperCase()}`), name).to.equal(true);
      const [v01, highS] = twins(signature);
      expect(signatureProblem(v01), name).to.match(/v is [01]: only 27 or 28/);
      expect(signatureProblem(highS), name).to.match(/upper half of the curve order/);
      for (const twin of [v01, highS]) expect(await verify(twin), name).to.equal(false);
    }
  });

  it("F1: a job request's replay key is the signed digest, the same however its headers and signature are spelled", async function () {
    const { body, headers } = await signJobRequest(alice, CHAIN, gateway, { payload: "x", rounds: 2 }, 100n);
    const first = await checkJobRequest(CHAIN, gateway, headers, body);
    const respelled = await checkJobRequest(
      CHAIN,
      gateway,
      {
        "x-edge-customer": alice.address.toLowerCase(),
        "x-edge-timestamp": "0100",
        "x-edge-signature": `0x${headers["x-edge-signature"].slice(2).toUpperCase()}`,
      },
      body,
    );
    expect(first.ok && respelled.ok && first.digest === respelled.digest).to.equal(true);
    const [v01] = twins(headers["x-edge-signature"]);
    const refused = await checkJobRequest(CHAIN, gateway, { ...headers, "x-edge-signature": v01 }, body);
    expect(refused).to.deep.include({ ok: false, reason: "non-canonical" });
    const other = await checkJobRequest(CHAIN, gateway, { ...headers, "x-edge-customer": mallory.address }, body);
    expect(other).to.deep.include({ ok: false, reason: "wrong-signer" });
    expect(signatureProblem("0x1234")).to.match(/not 65 bytes/);
  });
});
