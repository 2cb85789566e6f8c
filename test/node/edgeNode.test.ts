import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre, { ethers, network } from "hardhat";
import Fastify, { type FastifyInstance } from "fastify";
import { loadFixture, mine } from "@nomicfoundation/hardhat-network-helpers";
import type { Address, Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { deployProtocol } from "../../scripts/deploy/deployProtocol";
import {
  hostTallySigner,
  jobEntriesHash,
  recoverSigner,
  signJobRequest,
  usageRecordsHash,
} from "../../offchain/common/protocol";
import { submitJob } from "../../offchain/common/jobClient";
import { loadConfig } from "../../node/config";
import { EdgeNode } from "../../node/daemon";
import { runJob } from "../../node/roles/host";
import { StakeType } from "../shared/constants";
import { bookContracts, signConsent } from "../shared/fixtures";
import { type RpcServer, startRpcProxy, startRpcServer } from "../shared/rpc";
import { promtoolProblems } from "../shared/promtool";
import { upgradeRefusal } from "../shared/gatewayHarness";

const ONE = ethers.parseEther("1");
const key = (n: number) => ethers.zeroPadValue(ethers.toBeHex(0xed9e0000 + n), 32) as Hex;
const ADMIN_TOKEN = "admin-token-for-tests-0001";

let rpc: RpcServer;
let dir: string;
let bookFile: string;

async function protocolFixture() {
  const { book, file } = await deployProtocol(hre, {
    parameters: {
      ignition: {
        StakeManager: { adminDelay: 0n },
        RewardsManager: { epochDuration: 60n },
        PaymentVault: {
          params: {
            referrerShareBps: 1000n,
            rewardPoolShareBps: 2000n,
            withdrawalNotice: 3600n,
            freeBuffer: 0n,
            withdrawalWindow: 3600n,
          },
        },
      },
      roles: {},
    },
    addressesDir: join(dir, "book"),
  });
  bookFile = file;
  const [deployer, , customerSigner] = await ethers.getSigners();
  const { staking, vault: maybeVault, token } = await bookContracts(book);
  const vault = maybeVault!;
  await staking.connect(deployer).grantRole(await staking.SLASHER_ROLE(), deployer.address);
  await staking.connect(deployer).grantRole(await staking.PARAMETER_ADMIN_ROLE(), deployer.address);
  await token.connect(deployer).approve(await staking.getAddress(), ethers.MaxUint256);
  // The customer (Hardhat account #2) has a prepaid balance.
  await token.connect(deployer).transfer(customerSigner.address, 1000n * ONE);
  await token.connect(customerSigner).approve(await vault.getAddress(), ethers.MaxUint256);
  await vault.connect(customerSigner).deposit(100n * ONE);
  return { book, staking, vault, token, deployer };
}

type Protocol = Awaited<ReturnType<typeof protocolFixture>>;

/** Binds a fresh stake of `type` to the device whose key is `deviceKey`; returns the stake id. */
async function stakeFor(p: Protocol, type: StakeType, amount: bigint, deviceKey: Hex): Promise<bigint> {
  const device = new ethers.Wallet(deviceKey);
  const consent = await signConsent(p.staking, device, p.deployer.address);
  await p.staking.connect(p.deployer).stakeAndAssign(type, amount, consent);
  return p.staking.stakeCount();
}

const running: EdgeNode[] = [];

async function startNode(role: string, deviceKey: Hex, flags: string[] = [], rpcUrl = rpc.url) {
  const config = loadConfig(
    [
      "--role",
      role,
      "--rpc",
      rpcUrl,
      "--addresses",
      bookFile,
      "--port",
      "0",
      // A stargate's configuration stream on a free port (the default 7443 may be taken by another run).
      "--grpc-port",
      "0",
      "--confirmations",
      "0",
      "--poll-interval-ms",
      "25",
      "--link-ping-ms",
      "1000",
      "--report-interval-ms",
      "100",
      "--heartbeat-interval-ms",
      "100",
      "--usage-flush-ms",
      "100",
      "--stale-after-ms",
      "1500",
      "--data-dir",
      join(dir, "data"),
      "--log-level",
      "silent",
      ...flags,
    ],
    { EDGE_NODE_DEVICE_KEY: deviceKey, EDGE_NODE_ADMIN_TOKEN: ADMIN_TOKEN },
  );
  const node = await EdgeNode.create(config);
  const url = await node.start();
  running.push(node);
  return { node, url, device: node.device };
}

async function status(url: string) {
  return (await (await fetch(`${url}/status`)).json()) as Record<string, any>;
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 8_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Records what gateways and stargates send to the oracle and billing (the real services come later), answering
 * 503 while `down`; as billing, it grants every customer ample credit (the credit bound has its own tests:
 * gatewayCredit.test.ts).
 */
async function startReceiver() {
  const received: Record<string, any[]> = { reports: [], heartbeats: [], usage: [] };
  const state = { down: false };
  const app: FastifyInstance = Fastify();
  for (const path of Object.keys(received)) {
    app.post(`/${path}`, async (request, reply) => {
      if (state.down) return reply.code(503).send({ error: "down" });
      received[path].push(request.body);
      return { ok: true };
    });
  }
  const price = { unitSize: "1", unitPrice: "1" };
  app.post("/credit", async (request) => ({
    period: "0",
    asOf: Date.now(),
    balanceMaxAgeMs: 0,
    freeBuffer: "0",
    prices: { compute: { jobs: price, rounds: price } },
    credits: (request.body as { customers: string[] }).customers.map((customer) => ({
      customer: customer.toLowerCase(),
      remaining: "1000000000",
      exhausted: false,
    })),
  }));
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  return { url, received, state, close: () => app.close() };
}

const customer = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"); // Hardhat #2
const stranger = privateKeyToAccount(key(999));

describe("edge-node", function () {
  this.timeout(120_000);

  before(async function () {
    rpc = await startRpcServer();
    dir = mkdtempSync(join(tmpdir(), "edge-node-"));
  });

  afterEach(async function () {
    await Promise.all(running.splice(0).map((n) => n.close()));
  });

  after(async function () {
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("admits itself, routes signed jobs to admitted hosts, reports jobs, usage and heartbeats", async function () {
    const p = await loadFixture(protocolFixture);
    await stakeFor(p, StakeType.Gateway, 25_000n * ONE, key(1));
    await stakeFor(p, StakeType.Host, 100n * ONE, key(2));
    await stakeFor(p, StakeType.Host, 100n * ONE, key(3));
    await stakeFor(p, StakeType.Stargate, 250_000n * ONE, key(4));
    const receiver = await startReceiver();
    try {
      const gw = await startNode("gateway", key(1), ["--oracle", receiver.url, "--billing", receiver.url]);
      const de = await startNode("host", key(2), ["--gateway", gw.url, "--region", "DE/eu-central"]);
      await startNode("host", key(3), ["--gateway", gw.url]);
      const sg = await startNode("stargate", key(4), ["--oracle", receiver.url]);
      await waitFor("two routable hosts", async () => (await status(gw.url)).gateway.hosts === 2);
      expect((await status(de.url)).region).to.deep.equal({ country: "DE", region: "eu-central" }); // D68: signed
      expect((await status(gw.url)).gateway.hostRegions).to.deep.equal({ "DE/eu-central": 1, undeclared: 1 });
      expect(await status(gw.url)).to.include({ admitted: true, serving: true, role: "gateway" });
      expect((await fetch(`${gw.url}/ready`)).status).to.equal(200);

      const hostsUsed = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const { status: code, body } = await submitJob(gw.url, customer, 31337, gw.device, {
          payload: `job ${i}`,
          rounds: 3,
        });
        expect(code, JSON.stringify(body)).to.equal(200);
        expect(body.result).to.equal(runJob(`job ${i}`, 3));
        hostsUsed.add(body.host!);
      }
      expect(hostsUsed.size).to.equal(2);

      // A signed job report for the current epoch, with both hosts' counts.
      const total = (r: { entries: Array<{ jobs: string }> }) => r.entries.reduce((a, e) => a + BigInt(e.jobs), 0n);
      await waitFor("a job report counting all six jobs", () => receiver.received.reports.some((r) => total(r) === 6n));
      const reportBody = receiver.received.reports.find((r) => total(r) === 6n);
      const entries = reportBody.entries.map((e: { host: string; jobs: string }) => ({ ...e, jobs: BigInt(e.jobs) }));
      // F11: each entry carries its host's own signed tally for this gateway and epoch (at most the jobs counted).
      for (const e of reportBody.entries) {
        const tally = {
          host: e.host,
          gateway: gw.device,
          epoch: reportBody.epoch,
          jobs: e.attested,
          sequence: e.tallySeq,
        };
        expect(BigInt(e.attested) >= 1n && BigInt(e.attested) <= BigInt(e.jobs), JSON.stringify(e)).to.equal(true);
        expect(hostTallySigner(31337, tally, e.tallySig)?.toLowerCase()).to.equal(e.host.toLowerCase());
      }
      expect(entries.reduce((a: bigint, e: { jobs: bigint }) => a + e.jobs, 0n)).to.equal(6n);
      const signer = await recoverSigner(
        31337,
        "JobReport",
        {
          gateway: reportBody.gateway,
          epoch: BigInt(reportBody.epoch),
          sequence: BigInt(reportBody.sequence),
          entriesHash: jobEntriesHash(entries),
        },
        reportBody.signature,
      );
      expect(signer).to.equal(gw.device);

      // Usage for the customer: 6 jobs, 18 rounds, in a signed batch.
      const usageOf = (metric: string) =>
        receiver.received.usage
          .flatMap((u) => u.records)
          .filter((r) => r.metric === metric)
          .reduce((a, r) => a + BigInt(r.quantity), 0n);
      await waitFor("usage of all six jobs", () => usageOf("jobs") === 6n);
      expect(usageOf("rounds")).to.equal(18n);
      const records = receiver.received.usage.flatMap((u) => u.records);
      expect(records[0].customer).to.equal(customer.address.toLowerCase());
      const batch = receiver.received.usage[0];
      expect(
        await recoverSigner(
          31337,
          "UsageBatch",
          { gateway: batch.gateway, sequence: BigInt(batch.sequence), recordsHash: usageRecordsHash(batch.records) },
          batch.signature,
        ),
      ).to.equal(gw.device);

      await waitFor("a heartbeat", () => receiver.received.heartbeats.length > 0);
      const hb = receiver.received.heartbeats[0];
      expect(hb.stargate).to.equal(sg.device);
      expect(
        await recoverSigner(
          31337,
          "Heartbeat",
          { stargate: hb.stargate, epoch: BigInt(hb.epoch), timestamp: BigInt(hb.timestamp) },
          hb.signature,
        ),
      ).to.equal(sg.device);
    } finally {
      await receiver.close();
    }
  });

  describe("eviction", function () {
    for (const [trigger, act] of [
      ["unstake requested", async (p: Protocol, id: bigint) => p.staking.requestUnstake(id)],
      ["slashed below the minimum", async (p: Protocol, id: bigint) => p.staking.slash(id, 60n * ONE, "test")],
      ["device unassigned", async (p: Protocol, id: bigint) => p.staking.unassignDevice(id)],
      ["minimum raised", async (p: Protocol) => p.staking.setMinimumStake(StakeType.Host, 150n * ONE)],
    ] as const) {
      it(`evicts itself when its ${trigger}, and the gateway stops sending it jobs`, async function () {
        const p = await loadFixture(protocolFixture);
        await stakeFor(p, StakeType.Gateway, 25_000n * ONE, key(1));
        const id = await stakeFor(p, StakeType.Host, 100n * ONE, key(2));
        await stakeFor(p, StakeType.Host, 200n * ONE, key(3));
        const gw = await startNode("gateway", key(1), ["--allow-customers", customer.address]);
        const victim = await startNode("host", key(2), ["--gateway", gw.url]);
        const other = await startNode("host", key(3), ["--gateway", gw.url]);
        await waitFor("both hosts routable", async () => (await status(gw.url)).gateway.hosts === 2);
        await act(p, id);
        await waitFor("the host evicts itself", async () => (await status(victim.url)).admitted === false);
        const s = await status(victim.url);
        expect(s.reason)
          .to.be.a("string")
          .and.not.match(/^admitted/);
        expect((await fetch(`${victim.url}/ready`)).status).to.equal(503);
        const metrics = await (await fetch(`${victim.url}/metrics`)).text();
        expect(metrics).to.match(/edge_node_admitted\{role="host"\} 0/);
        await waitFor("the gateway drops it", async () => (await status(gw.url)).gateway.hosts === 1);
        for (let i = 0; i < 5; i++) {
          const { status: code, body } = await submitJob(gw.url, customer, 31337, gw.device, {
            payload: `x${i}`,
            rounds: 1,
          });
          expect(code).to.equal(200);
          expect(body.host).to.equal(other.device);
        }
        await waitFor(
          "the host leaves its gateway",
          async () => (await status(victim.url)).host.registered === false,
        ).catch(async (e) => {
          console.log(JSON.stringify((await status(victim.url)).host));
          throw e;
        });
      });
    }

    it("a non-admitted host cannot register, and a wrong-type stake is not admitted", async function () {
      const p = await loadFixture(protocolFixture);
      await stakeFor(p, StakeType.Gateway, 25_000n * ONE, key(1));
      await stakeFor(p, StakeType.Gateway, 25_000n * ONE, key(5)); // a gateway stake on a host device
      const gw = await startNode("gateway", key(1), ["--allow-customers", customer.address]);
      const wrong = await startNode("host", key(5), ["--gateway", gw.url]);
      const none = await startNode("host", key(6), ["--gateway", gw.url]);
      await waitFor(
        "decisions",
        async () =>
          (await status(wrong.url)).admissionChangedAt !== null && (await status(none.url)).admissionChangedAt !== null,
      );
      expect((await status(wrong.url)).reason).to.match(/backs a gateway, this node runs as host/);
      expect((await status(none.url)).reason).to.equal("no stake is bound to this device");
      // Forcing a registration anyway is refused by the gateway's own view.
      const account = privateKeyToAccount(key(6));
      const message = {
        host: account.address,
        gateway: gw.device,
        url: "http://127.0.0.1:1",
        country: "",
        region: "",
        leaving: false,
        timestamp: BigInt(Date.now()),
      };
      const { MESSAGE_TYPES, messageDomain } = await import("../../offchain/common/protocol");
      const signature = await account.signTypedData({
        domain: messageDomain(31337),
        types: MESSAGE_TYPES,
        primaryType: "HostRegistration",
        message,
      });
      const registration = { ...message, timestamp: message.timestamp.toString(), signature };
      const refusal = await upgradeRefusal(gw.url, Buffer.from(JSON.stringify(registration)).toString("base64url"));
      expect(refusal.status).to.equal(403);
      expect(refusal.body).to.include({ code: "EDGE_NODE_HOST_NOT_ADMITTED" });
      const jobs = await submitJob(gw.url, customer, 31337, gw.device, { payload: "p", rounds: 1 });
      expect(jobs.status).to.equal(503);
      expect(jobs.body.code).to.equal("EDGE_NODE_NO_HOSTS");
    });

    it("says so when its address book starts after StakeManager's deployment (no type minimums seen)", async function () {
      const p = await loadFixture(protocolFixture);
      await stakeFor(p, StakeType.Host, 10_000n * ONE, key(2));
      const book = JSON.parse(readFileSync(bookFile, "utf8"));
      book.contracts.StakeManager.blockNumber += 1;
      const late = join(dir, "late-book.json");
      writeFileSync(late, JSON.stringify(book));
      const { url } = await startNode("host", key(2), ["--gateway", "http://127.0.0.1:9", "--addresses", late]);
      await waitFor("a decision", async () => (await status(url)).admissionChangedAt !== null);
      const seen = await status(url);
      expect(seen.admitted).to.equal(false);
      expect(seen.reason).to.equal(
        "no host minimum in the chain view: check StakeManager's blockNumber in the address book",
      );
    });

    it("repairs a reorg: the abandoned unstake no longer evicts it", async function () {
      const p = await loadFixture(protocolFixture);
      const id = await stakeFor(p, StakeType.Host, 100n * ONE, key(7));
      const { url } = await startNode("host", key(7), ["--gateway", "http://127.0.0.1:9"]);
      await waitFor("admitted", async () => (await status(url)).admitted === true);
      const snapshot = await network.provider.send("evm_snapshot");
      await p.staking.requestUnstake(id);
      await waitFor("evicted", async () => (await status(url)).admitted === false);
      await network.provider.send("evm_revert", [snapshot]);
      await mine(5);
      await waitFor("admitted again", async () => (await status(url)).admitted === true);
      expect((await status(url)).sync.reorgs).to.be.greaterThan(0);
    });
  });

  it("loses no report or usage across a restart while the oracle and billing are down", async function () {
    const p = await loadFixture(protocolFixture);
    await stakeFor(p, StakeType.Gateway, 25_000n * ONE, key(1));
    await stakeFor(p, StakeType.Host, 100n * ONE, key(2));
    const receiver = await startReceiver();
    // The oracle's and billing's receivers answer 503 (billing still grants credit: D43 refuses jobs without it).
    receiver.state.down = true;
    const flags = ["--oracle", receiver.url, "--billing", receiver.url, "--data-dir", join(dir, "restart")];
    const gw = await startNode("gateway", key(1), flags);
    await startNode("host", key(2), ["--gateway", gw.url]);
    await waitFor("host routable", async () => (await status(gw.url)).gateway.hosts === 1);
    for (let i = 0; i < 3; i++) {
      expect((await submitJob(gw.url, customer, 31337, gw.device, { payload: `r${i}`, rounds: 2 })).status).to.equal(
        200,
      );
    }
    await waitFor("queued", async () => (await status(gw.url)).outboxPending >= 2);
    await gw.node.close();
    running.splice(running.indexOf(gw.node), 1);
    receiver.state.down = false;
    try {
      // Same device and data directory, receivers reachable now: everything pending arrives.
      const again = await startNode("gateway", key(1), [
        "--oracle",
        receiver.url,
        "--billing",
        receiver.url,
        "--data-dir",
        join(dir, "restart"),
      ]);
      await waitFor("the report", () =>
        receiver.received.reports.some((r) => r.entries.some((e: { jobs: string }) => e.jobs === "3")),
      );
      await waitFor(
        "the usage of all three jobs",
        () =>
          receiver.received.usage
            .flatMap((u) => u.records)
            .filter((r) => r.metric === "jobs")
            .reduce((a, r) => a + BigInt(r.quantity), 0n) === 3n,
      );
      await waitFor("an empty outbox", async () => (await status(again.url)).outboxPending === 0);
      // Each batch arrived once (receivers dedupe anyway, but the sender must not double its traffic).
      const sequences = receiver.received.usage.map((u) => u.sequence);
      expect(new Set(sequences).size).to.equal(sequences.length);
    } finally {
      await receiver.close();
    }
  });

  it("an RPC outage does not make it flap: it reports staleness, and a stale gateway takes no new host", async function () {
    const p = await loadFixture(protocolFixture);
    await stakeFor(p, StakeType.Gateway, 25_000n * ONE, key(1));
    await stakeFor(p, StakeType.Host, 100n * ONE, key(2));
    const proxy = await startRpcProxy(rpc.port);
    try {
      const gw = await startNode("gateway", key(1), ["--allow-customers", customer.address], proxy.url);
      await waitFor("gateway admitted", async () => (await status(gw.url)).admitted === true);
      proxy.down();
      await waitFor("stale", async () => (await status(gw.url)).sync.stale === true, 10_000);
      const s = await status(gw.url);
      expect(s).to.include({ admitted: true, serving: true });
      expect(s.sync.consecutiveErrors).to.be.greaterThan(0);
      expect(await (await fetch(`${gw.url}/metrics`)).text()).to.match(/edge_node_view_stale\{role="gateway"\} 1/);
      const host = await startNode("host", key(2), ["--gateway", gw.url]);
      await waitFor("the host tried", async () => (await status(host.url)).host.lastError !== null);
      expect((await status(host.url)).host.lastError).to.match(/503.*stale/);
      expect((await status(gw.url)).gateway.registeredHosts).to.equal(0);
      proxy.up();
      await waitFor("fresh again", async () => (await status(gw.url)).sync.stale === false, 10_000);
      await waitFor("host registered", async () => (await status(gw.url)).gateway.hosts === 1);
      expect((await status(gw.url)).admissionChangedAt).to.equal(s.admissionChangedAt); // no flap
    } finally {
      await proxy.close();
    }
  });

  it("drains: waits for in-flight jobs, then takes no new work", async function () {
    const p = await loadFixture(protocolFixture);
    await stakeFor(p, StakeType.Gateway, 25_000n * ONE, key(1));
    await stakeFor(p, StakeType.Host, 100n * ONE, key(2));
    const gw = await startNode("gateway", key(1), [
      "--allow-customers",
      customer.address,
      "--max-job-rounds",
      "1000000",
    ]);
    await startNode("host", key(2), ["--gateway", gw.url, "--max-job-rounds", "1000000"]);
    await waitFor("host routable", async () => (await status(gw.url)).gateway.hosts === 1);
    const slow = submitJob(gw.url, customer, 31337, gw.device, { payload: "slow", rounds: 600_000 });
    await waitFor("the job is in flight", async () => (await status(gw.url)).inFlight === 1);
    const drain = fetch(`${gw.url}/admin/drain`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const [job, drained] = await Promise.all([slow, drain]);
    expect(job.status).to.equal(200);
    expect(await drained.json()).to.deep.equal({ drained: true, inFlight: 0 });
    expect((await fetch(`${gw.url}/ready`)).status).to.equal(503);
    const after = await submitJob(gw.url, customer, 31337, gw.device, { payload: "late", rounds: 1 });
    expect(after.status).to.equal(503);
    expect(after.body.code).to.equal("EDGE_NODE_NOT_SERVING");
  });

  it("answers bad HTTP input with a 4xx and a message", async function () {
    const p = await loadFixture(protocolFixture);
    await stakeFor(p, StakeType.Gateway, 25_000n * ONE, key(1));
    await stakeFor(p, StakeType.Host, 100n * ONE, key(2));
    const gw = await startNode("gateway", key(1));
    const host = await startNode("host", key(2), ["--gateway", gw.url]);
    await waitFor("host routable", async () => (await status(gw.url)).gateway.hosts === 1);
    const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const expectError = async (response: Promise<Response>, status: number, pattern: RegExp) => {
      const r = await response;
      const body = (await r.json()) as { error?: string; message?: string; code?: string };
      expect(r.status, JSON.stringify(body)).to.equal(status);
      expect(`${body.code} ${body.error} ${body.message}`).to.match(pattern);
    };
    const good = await signJobRequest(customer, 31337, gw.device, { payload: "a", rounds: 1 });
    await expectError(post(`${gw.url}/jobs`, "{not json", good.headers), 400, /JSON/i);
    await expectError(post(`${gw.url}/jobs`, { payload: "a" }, good.headers), 400, /rounds/);
    await expectError(post(`${gw.url}/jobs`, { payload: "a", rounds: 0 }, good.headers), 400, /rounds/);
    await expectError(post(`${gw.url}/jobs`, { payload: "a", rounds: 1, extra: 1 }, good.headers), 400, /additional/i);
    await expectError(
      post(`${gw.url}/jobs`, good.body, { "x-edge-customer": customer.address }),
      400,
      /x-edge-timestamp|x-edge-signature/,
    );
    await expectError(
      post(`${gw.url}/jobs`, { payload: "b", rounds: 1 }, good.headers),
      401,
      /EDGE_NODE_BAD_SIGNATURE/,
    );
    const old = await signJobRequest(customer, 31337, gw.device, { payload: "a", rounds: 1 }, 1000n);
    await expectError(post(`${gw.url}/jobs`, old.body, old.headers), 401, /EDGE_NODE_SIGNATURE_EXPIRED/);
    const huge = await signJobRequest(customer, 31337, gw.device, { payload: "a", rounds: 10_000_000 });
    await expectError(post(`${gw.url}/jobs`, huge.body, huge.headers), 413, /EDGE_NODE_JOB_TOO_LARGE/);
    const unknown = await signJobRequest(stranger, 31337, gw.device, { payload: "a", rounds: 1 });
    await expectError(post(`${gw.url}/jobs`, unknown.body, unknown.headers), 402, /EDGE_NODE_CUSTOMER_NOT_ALLOWED/);
    const ok = await post(`${gw.url}/jobs`, good.body, good.headers);
    expect(ok.status).to.equal(200);
    await expectError(post(`${gw.url}/jobs`, good.body, good.headers), 409, /EDGE_NODE_REPLAYED/);
    await expectError(post(`${gw.url}/jobs`, "x".repeat(200_000), good.headers), 413, /too large/i);
    // A host link asked for with a malformed registration: 400 before any signature check; hosts have no /jobs.
    for (const bad of [
      "",
      "not base64 json!",
      Buffer.from('{"host":"0x1"}').toString("base64url"),
      "x".repeat(5_000),
    ]) {
      const refusal = await upgradeRefusal(gw.url, bad);
      expect(refusal.status, bad.slice(0, 20)).to.equal(400);
      expect(refusal.body).to.include({ code: "EDGE_NODE_BAD_LINK" });
    }
    await expectError(post(`${host.url}/jobs`, { jobId: "j", payload: "p", rounds: 1 }), 404, /not found/i);
    await expectError(
      post(`${gw.url}/admin/drain`, {}, { authorization: "Bearer wrong" }),
      401,
      /EDGE_NODE_UNAUTHORIZED/,
    );
    const noToken = await startNode("host", key(8), ["--gateway", gw.url], rpc.url);
    void noToken;
    await expectError(fetch(`${gw.url}/nope`), 404, /not found/i);
  });

  it("exposes valid Prometheus metrics on every role (promtool check metrics)", async function () {
    const p = await loadFixture(protocolFixture);
    await stakeFor(p, StakeType.Gateway, 25_000n * ONE, key(1));
    await stakeFor(p, StakeType.Host, 100n * ONE, key(2));
    await stakeFor(p, StakeType.Stargate, 250_000n * ONE, key(4));
    const gw = await startNode("gateway", key(1), ["--allow-customers", customer.address]);
    const host = await startNode("host", key(2), ["--gateway", gw.url]);
    const sg = await startNode("stargate", key(4));
    await waitFor("host routable", async () => (await status(gw.url)).gateway.hosts === 1);
    await submitJob(gw.url, customer, 31337, gw.device, { payload: "m", rounds: 1 });
    for (const node of [gw, host, sg]) {
      const text = await (await fetch(`${node.url}/metrics`)).text();
      const output = promtoolProblems(text);
      expect(output, output).to.equal("");
      expect(text).to.match(/edge_node_sync_head_block\{role="\w+"\} \d+/);
      expect(text).to.include("edge_node_eviction_delay_seconds_bucket");
    }
  });
});

export type { Address };
