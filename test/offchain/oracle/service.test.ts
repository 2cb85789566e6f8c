import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ethers } from "hardhat";
import { loadFixture, mine, time } from "@nomicfoundation/hardhat-network-helpers";
import { privateKeyToAccount } from "viem/accounts";

import { signJobReport, signMessage } from "../../../offchain/common/protocol";
import { unpackEntries } from "../../../offchain/common/scoreBatch";
import { ConfigError } from "../../../offchain/common/config";
import { loadOracleConfig } from "../../../offchain/oracle/config";
import { scoreEpoch } from "../../../offchain/oracle/scoring";
import type { OracleService } from "../../../offchain/oracle/service";
import { StakeType } from "../../shared/constants";
import { COMMITTEE_KEYS } from "../../shared/fixtures";
import { type RpcServer, startRpcServer } from "../../shared/rpc";
import {
  CHAIN_ID,
  EPOCH_SECONDS,
  deployForOracle,
  deviceAccount,
  getAllPages,
  getJson,
  postJson,
  signedSignRequest,
  startOracle,
  waitFor,
} from "./helpers";
import { promtoolProblems } from "../../shared/promtool";
import { signAttestedReport } from "./attested";

// Device key indexes: gateways 1-2, hosts 10-13, stargate 20, a second stargate 21 (unstaking), a host-typed 30.
const G1 = deviceAccount(1);
const G2 = deviceAccount(2);
const H = [10, 11, 12, 13].map(deviceAccount);
const S1 = deviceAccount(20);
const OUTSIDER = deviceAccount(99);

let rpc: RpcServer;
let dir: string;
let dbCount = 0;
const running: OracleService[] = [];

const newDb = () => join(dir, `oracle-${++dbCount}.db`);

async function networkFixture() {
  return deployForOracle({
    dir,
    devices: [
      [1, StakeType.Gateway],
      [2, StakeType.Gateway],
      [10, StakeType.Host],
      [11, StakeType.Host],
      [12, StakeType.Host],
      [13, StakeType.Host],
      [20, StakeType.Stargate],
    ],
  });
}

async function oracle(book: string, keys: number[], extra: string[] = [], db = newDb()) {
  const started = await startOracle(rpc.url, book, db, keys, extra);
  running.push(started.service);
  return { ...started, db };
}

async function stop(service: OracleService) {
  running.splice(running.indexOf(service), 1);
  await service.close();
}

/** Moves the chain past `epoch`'s end and mines, so the oracle can close it. */
async function endEpoch(genesis: bigint, epoch: bigint) {
  await time.increaseTo(genesis + (epoch + 1n) * EPOCH_SECONDS + 1n);
  await mine(2);
}

describe("oracle service", function () {
  this.timeout(120_000);

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-oracle-"));
    rpc = await startRpcServer();
  });

  after(async function () {
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async function () {
    for (const service of running.splice(0)) await service.close();
  });

  describe("ingestion", function () {
    it("accepts a gateway's signed report once and answers bad ones with a 4xx that changes nothing", async function () {
      const p = await loadFixture(networkFixture);
      const { url } = await oracle(p.book, [0]);
      const entries = [
        { host: H[0].address, jobs: 10n },
        { host: H[1].address, jobs: 5n },
      ];
      const report = await signJobReport(G1, CHAIN_ID, 0n, 1n, entries);

      expect(await postJson(`${url}/reports`, report)).to.deep.equal({ status: 200, json: { status: "accepted" } });
      expect(await postJson(`${url}/reports`, report)).to.deep.equal({ status: 200, json: { status: "duplicate" } });
      // Address case is not content: the same report with a lowercase gateway is the same report.
      const lower = { ...report, gateway: report.gateway.toLowerCase() };
      expect((await postJson(`${url}/reports`, lower)).json.status).to.equal("duplicate");

      const reject = async (body: unknown, status: number, code: string, message: RegExp) => {
        const reply = await postJson(`${url}/reports`, body);
        expect(reply.status, JSON.stringify(reply.json)).to.equal(status);
        expect(reply.json.code).to.equal(code);
        expect(reply.json.error).to.match(message);
      };
      const other = await signJobReport(G1, CHAIN_ID, 0n, 1n, [{ host: H[0].address, jobs: 11n }]);
      await reject(other, 409, "ORACLE_REPORT_CONFLICT", /another report/);
      const tampered = { ...report, entries: [{ host: H[0].address, jobs: "1000" }, report.entries[1]] };
      await reject(tampered, 401, "ORACLE_BAD_SIGNATURE", /not signed by its gateway/);
      const forged = { ...(await signJobReport(OUTSIDER, CHAIN_ID, 0n, 2n, entries)), gateway: G1.address };
      await reject(forged, 401, "ORACLE_BAD_SIGNATURE", /not signed by its gateway/);
      const wrongChain = await signJobReport(G1, CHAIN_ID + 1, 0n, 2n, entries);
      await reject(wrongChain, 401, "ORACLE_BAD_SIGNATURE", /not signed/);
      await reject(
        await signJobReport(OUTSIDER, CHAIN_ID, 0n, 1n, entries),
        403,
        "ORACLE_SENDER_NOT_STAKED",
        /holds no gateway stake/,
      );
      await reject(
        await signJobReport(H[2], CHAIN_ID, 0n, 1n, entries),
        403,
        "ORACLE_SENDER_NOT_STAKED",
        /holds no gateway stake/,
      );
      await reject(
        await signJobReport(G1, CHAIN_ID, 7n, 3n, entries),
        400,
        "ORACLE_EPOCH_IN_FUTURE",
        /epoch 7 has not started \(current 0\)/,
      );
      const twice = await signJobReport(G1, CHAIN_ID, 0n, 4n, [entries[0], { host: H[0].address, jobs: 1n }]);
      await reject(twice, 400, "ORACLE_DUPLICATE_HOST", /appears twice/);
      const huge = { ...report, entries: [{ host: H[0].address, jobs: (1n << 256n).toString() }] };
      await reject(huge, 400, "ORACLE_JOBS_OUT_OF_RANGE", /does not fit 256 bits/);

      // Malformed bodies: the schema names the field.
      const { signature: _omit, ...unsigned } = report;
      void _omit;
      await reject(unsigned, 400, "FST_ERR_VALIDATION", /signature/);
      await reject({ ...report, extra: 1 }, 400, "FST_ERR_VALIDATION", /additional properties/);
      await reject({ ...report, epoch: 0 }, 400, "FST_ERR_VALIDATION", /epoch/);
      await reject({ ...report, entries: [{ host: "0x12", jobs: "1" }] }, 400, "FST_ERR_VALIDATION", /host/);
      await reject({ ...report, entries: [{ host: H[0].address, jobs: "-1" }] }, 400, "FST_ERR_VALIDATION", /jobs/);
      await reject({ ...report, signature: "0x1234" }, 400, "FST_ERR_VALIDATION", /signature/);
      await reject("{not json", 400, "FST_ERR_CTP_INVALID_JSON_BODY", /JSON/i);
      const text = await fetch(`${url}/reports`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "x",
      });
      expect(text.status).to.equal(400);
      expect(((await text.json()) as { error: string }).error).to.match(/body must be object/);

      // Only the one accepted report is stored.
      const stored = await getAllPages(`${url}/epochs/0/reports`, "reports");
      expect(stored).to.have.length(1);
      expect(stored[0]).to.deep.include({ gateway: G1.address.toLowerCase(), epoch: 0, sequence: 1 });
      expect(stored[0].entries).to.deep.equal(
        report.entries.map((e) => ({ host: e.host.toLowerCase(), jobs: e.jobs })),
      );
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).to.include('edge_oracle_reports_total{outcome="accepted"} 1');
      expect(metrics).to.include('edge_oracle_reports_total{outcome="duplicate"} 2');
      expect(metrics).to.include('edge_oracle_reports_total{outcome="rejected_oracle_bad_signature"} 3');
    });

    it("rejects reports from a gateway whose stake is unbonding (not admitted)", async function () {
      const p = await loadFixture(networkFixture);
      await p.staking.requestUnstake(p.stakes.get(G2.address.toLowerCase())!);
      const { url } = await oracle(p.book, [0]);
      const reply = await postJson(
        `${url}/reports`,
        await signJobReport(G2, CHAIN_ID, 0n, 1n, [{ host: H[0].address, jobs: 1n }]),
      );
      expect(reply.status).to.equal(403);
      expect(reply.json.code).to.equal("ORACLE_SENDER_NOT_ADMITTED");
      expect(reply.json.error).to.match(/gateway stake is not admitted/);
    });

    it("accepts a stargate's heartbeat once and checks its epoch, time, signature and stake", async function () {
      const p = await loadFixture(networkFixture);
      const { url } = await oracle(p.book, [0]);
      const now = BigInt(await time.latest());
      const beat = async (account = S1, epoch = 0n, timestamp = now, stargate = account.address) => ({
        stargate,
        epoch: epoch.toString(),
        timestamp: timestamp.toString(),
        signature: await signMessage(account, CHAIN_ID, "Heartbeat", { stargate, epoch, timestamp }),
      });
      const ok = await beat();
      expect((await postJson(`${url}/heartbeats`, ok)).json).to.deep.equal({ status: "accepted" });
      expect((await postJson(`${url}/heartbeats`, ok)).json).to.deep.equal({ status: "duplicate" });
      const cases: Array<[unknown, number, string]> = [
        [await beat(S1, 0n, p.genesis + EPOCH_SECONDS + 5n), 400, "ORACLE_EPOCH_MISMATCH"],
        [await beat(S1, 0n, p.genesis - 1n), 400, "ORACLE_EPOCH_MISMATCH"],
        [{ ...ok, timestamp: (now + 1n).toString() }, 401, "ORACLE_BAD_SIGNATURE"],
        [await beat(OUTSIDER, 0n, now, S1.address), 401, "ORACLE_BAD_SIGNATURE"],
        [await beat(H[0]), 403, "ORACLE_SENDER_NOT_STAKED"],
        [await beat(S1, 3n, p.genesis + 3n * EPOCH_SECONDS), 400, "ORACLE_EPOCH_IN_FUTURE"],
        [{ ...ok, timestamp: 5 }, 400, "FST_ERR_VALIDATION"],
      ];
      for (const [body, status, code] of cases) {
        const reply = await postJson(`${url}/heartbeats`, body);
        expect([reply.status, reply.json.code], JSON.stringify(reply.json)).to.deep.equal([status, code]);
        expect(reply.json.error).to.be.a("string").and.not.empty;
      }
      expect(await getAllPages(`${url}/epochs/0/heartbeats`, "heartbeats")).to.deep.equal([
        { stargate: S1.address.toLowerCase(), epoch: 0, timestamp: Number(now), signature: ok.signature },
      ]);
    });

    it("validates its configuration and names what is wrong", function () {
      const base = ["--rpc", "http://127.0.0.1:8545", "--addresses", "book.json"];
      expect(loadOracleConfig(base, {})).to.deep.include({ port: 7100, graceSeconds: 300, submit: true, keys: [] });
      const fails = (argv: string[], env: Record<string, string>, message: RegExp) =>
        expect(() => loadOracleConfig(argv, env)).to.throw(ConfigError, message);
      fails([], {}, /rpc/);
      fails([...base, "--port", "http"], {}, /port/);
      fails([...base, "--submit", "maybe"], {}, /--submit must be true or false/);
      fails(base, { EDGE_ORACLE_KEYS: "0x1234" }, /EDGE_ORACLE_KEYS/);
      fails([...base, "--keys", COMMITTEE_KEYS[0]], {}, /keys/);
      fails([...base, "--peers", "ftp://x"], {}, /peers/);
    });
  });

  describe("closing and posting", function () {
    it("closes an ended epoch, posts its scores once and publishes everything needed to recompute them", async function () {
      const p = await loadFixture(networkFixture);
      const { service, url, db } = await oracle(p.book, [0], ["--batch-size", "2"]);
      // Other suites share this chain and submitter, so count this test's transactions from here.
      const submitter = privateKeyToAccount(COMMITTEE_KEYS[0] as `0x${string}`).address;
      const startNonce = await ethers.provider.getTransactionCount(submitter);
      const reports = [
        await signAttestedReport(G1, CHAIN_ID, 0n, 1n, [{ host: H[0], jobs: 1n }]),
        // G1's final report (the highest sequence wins).
        await signAttestedReport(G1, CHAIN_ID, 0n, 2n, [
          { host: H[0], jobs: 30n },
          { host: H[1], jobs: 10n },
          { host: H[2], jobs: 20n },
        ]),
        await signAttestedReport(G2, CHAIN_ID, 0n, 1n, [
          { host: H[0], jobs: 5n },
          { host: H[3], jobs: 15n },
        ]),
      ];
      for (const report of reports) expect((await postJson(`${url}/reports`, report)).status).to.equal(200);
      const timestamp = BigInt(await time.latest());
      const signature = await signMessage(S1, CHAIN_ID, "Heartbeat", { stargate: S1.address, epoch: 0n, timestamp });
      await postJson(`${url}/heartbeats`, {
        stargate: S1.address,
        epoch: "0",
        timestamp: timestamp.toString(),
        signature,
      });

      await endEpoch(p.genesis, 0n);
      await waitFor("epoch 0 posted", async () => (await getJson(`${url}/epochs/0`)).status === "posted");

      // Anyone can recompute the scores from the published inputs.
      const published = {
        reports: await getAllPages(`${url}/epochs/0/reports`, "reports"),
        admitted: await getJson(`${url}/epochs/0/admitted`),
        heartbeats: await getAllPages(`${url}/epochs/0/heartbeats`, "heartbeats"),
        scores: await getJson(`${url}/epochs/0/scores`),
      };
      // One report per gateway: G1's sequence 2 replaced its sequence 1 (F4).
      expect(
        Object.fromEntries(
          published.reports.map((r: { gateway: string; sequence: number }) => [r.gateway, r.sequence]),
        ),
      ).to.deep.equal({ [G1.address.toLowerCase()]: 2, [G2.address.toLowerCase()]: 1 });
      expect(published.admitted.hosts).to.have.length(4);
      const recomputed = scoreEpoch(0n, published.reports, published.admitted, published.heartbeats);
      expect(published.scores).to.deep.equal({ epoch: 0, scores: recomputed, next: null });
      // Peer averages: G1 (30+10+20)/3 = 20 -> H0 15000, H1 5000, H2 10000; G2 (5+15)/2 = 10 -> H0 5000, H3
      // 15000; H0 weighted by jobs (30*15000 + 5*5000)/35 = 13571; gateways and the stargate 10000.
      const byDevice = Object.fromEntries(recomputed.map((s) => [s.device, s.score]));
      expect(byDevice).to.deep.equal({
        [H[0].address.toLowerCase()]: 13571,
        [H[1].address.toLowerCase()]: 5000,
        [H[2].address.toLowerCase()]: 10000,
        [H[3].address.toLowerCase()]: 15000,
        [G1.address.toLowerCase()]: 10000,
        [G2.address.toLowerCase()]: 10000,
        [S1.address.toLowerCase()]: 10000,
      });

      // On-chain: every scored stake once, in batches of 2 ordered by stake id, each with its transaction.
      const epoch = {
        ...(await getJson(`${url}/epochs/0`)),
        batches: await getAllPages(`${url}/epochs/0/batches`, "batches"),
      };
      expect(epoch.batches).to.have.length(4);
      const posted = await p.rewards.queryFilter(p.rewards.filters.ScoresPosted(0n));
      expect(posted.map((e) => Number(e.args.batchIndex)).sort()).to.deep.equal([0, 1, 2, 3]);
      const onChain = new Map<bigint, number>();
      for (const event of posted) {
        const batch = epoch.batches[Number(event.args.batchIndex)];
        expect(batch).to.deep.include({
          posted: true,
          txHash: event.transactionHash,
          entriesHash: event.args.entriesHash,
        });
        const tx = await ethers.provider.getTransaction(event.transactionHash);
        const [, , entries] = p.rewards.interface.decodeFunctionData("postScores", tx!.data);
        for (const { stakeId, score } of unpackEntries(entries)) onChain.set(stakeId, score);
      }
      expect(onChain.size).to.equal(7);
      for (const [device, score] of Object.entries(byDevice)) {
        const stakeId = p.stakes.get(device)!;
        expect(onChain.get(stakeId), device).to.equal(score);
        expect(await p.rewards.isScored(stakeId, 0n)).to.equal(true);
      }
      expect(await p.rewards.queryFilter(p.rewards.filters.EntrySkipped())).to.have.length(0);

      // The epoch no longer takes reports.
      const late = await postJson(
        `${url}/reports`,
        await signJobReport(G1, CHAIN_ID, 0n, 3n, [{ host: H[0].address, jobs: 99n }]),
      );
      expect([late.status, late.json.code]).to.deep.equal([409, "ORACLE_EPOCH_CLOSED"]);

      // A restart on the same database sends nothing more.
      const nonce = await ethers.provider.getTransactionCount(submitter);
      expect(nonce - startNonce).to.equal(4);
      await stop(service);
      const again = await oracle(p.book, [0], ["--batch-size", "2"], db);
      await endEpoch(p.genesis, 1n);
      await waitFor("epoch 1 closed", async () => (await getJson(`${again.url}/epochs/1`)).status === "posted");
      // Epoch 1 had no reports: only admitted gateways that reported and stargates that beat score, so nothing.
      expect((await getJson(`${again.url}/epochs/1`)).batches).to.equal(0);
      expect(await ethers.provider.getTransactionCount(submitter)).to.equal(nonce);
      expect(await getAllPages(`${again.url}/epochs`, "epochs")).to.deep.equal([
        { epoch: 0, status: "posted" },
        { epoch: 1, status: "posted" },
      ]);
    });

    it("serves valid Prometheus metrics (promtool check metrics) and OpenAPI docs from the route schemas", async function () {
      const p = await loadFixture(networkFixture);
      const { url } = await oracle(p.book, [0]);
      await postJson(`${url}/reports`, await signJobReport(G1, CHAIN_ID, 0n, 1n, [{ host: H[0].address, jobs: 1n }]));
      await postJson(`${url}/reports`, { bad: true });
      await endEpoch(p.genesis, 0n);
      await waitFor("epoch 0 posted", async () => (await getJson(`${url}/epochs/0`)).status === "posted");
      const text = await (await fetch(`${url}/metrics`)).text();
      const output = promtoolProblems(text);
      expect(output, output).to.equal("");
      expect(text).to.include("edge_oracle_last_closed_epoch 0");
      expect(text).to.include("edge_oracle_last_posted_epoch 0");
      expect(text).to.include("edge_oracle_pending_transactions 0");
      expect(text).to.match(/edge_oracle_posting_duration_seconds_count 1/);
      expect(text).to.include('edge_oracle_reports_total{outcome="rejected_fst_err_validation"} 1');
      const docs = await getJson(`${url}/docs/json`);
      expect(docs.openapi).to.match(/^3\./);
      for (const path of ["/reports", "/heartbeats", "/epochs/{epoch}", "/epochs/{epoch}/scores"]) {
        expect(docs.paths, path).to.have.property(path);
      }
      expect(docs.paths["/reports"].post.requestBody.content["application/json"].schema.required).to.include(
        "signature",
      );
      expect(await getJson(`${url}/health`)).to.deep.equal({ ok: true });
    });
  });

  describe("a committee of two instances (t = 2)", function () {
    it("relays reports, signs only batches it computed itself, and posts with both signatures", async function () {
      const p = await loadFixture(async function twoOfTwo() {
        return deployForOracle({
          dir,
          committeeSize: 2,
          threshold: 2,
          devices: [
            [1, StakeType.Gateway],
            [10, StakeType.Host],
            [11, StakeType.Host],
          ],
        });
      });
      // B signs only (no submitter); A submits and asks B. Gateways talk to A; A relays to B.
      const b = await oracle(p.book, [1], ["--submit", "false"]);
      const a = await oracle(p.book, [0], ["--peers", b.url]);
      const report = await signAttestedReport(G1, CHAIN_ID, 0n, 1n, [
        { host: H[0], jobs: 3n },
        { host: H[1], jobs: 1n },
      ]);
      expect((await postJson(`${a.url}/reports`, report)).json.status).to.equal("accepted");
      await waitFor("relayed to B", async () => (await getJson(`${b.url}/epochs/0`)).reports === 1);

      await endEpoch(p.genesis, 0n);
      await waitFor("epoch 0 posted by A", async () => (await getJson(`${a.url}/epochs/0`)).status === "posted");
      const [event] = await p.rewards.queryFilter(p.rewards.filters.ScoresPosted(0n));
      const tx = await ethers.provider.getTransaction(event.transactionHash);
      const [, , entries, signatures] = p.rewards.interface.decodeFunctionData("postScores", tx!.data);
      expect(signatures).to.have.length(2);
      expect(unpackEntries(entries)).to.have.length(3);
      // B learns from the chain that the batch is on-chain, without sending anything.
      await waitFor("B sees it posted", async () => (await getJson(`${b.url}/epochs/0`)).status === "posted");
      expect(
        await ethers.provider.getTransactionCount(privateKeyToAccount(COMMITTEE_KEYS[1] as `0x${string}`).address),
      ).to.equal(0);

      // B refuses to sign a batch that differs from its own, and one for an epoch it has not closed.
      const altered = (entries as string).slice(0, -4) + "4e20";
      const ask = (epoch: number, batchEntries: string) =>
        signedSignRequest(p.rewards, 0, { epoch, batchIndex: 0, entries: batchEntries });
      const refused = await postJson(`${b.url}/sign`, await ask(0, altered));
      expect([refused.status, refused.json.code]).to.deep.equal([409, "ORACLE_BATCH_MISMATCH"]);
      const early = await postJson(`${b.url}/sign`, await ask(5, entries));
      expect([early.status, early.json.code]).to.deep.equal([409, "ORACLE_EPOCH_NOT_CLOSED"]);
      const same = await postJson(`${b.url}/sign`, await ask(0, entries));
      expect(same.status, JSON.stringify(same.json)).to.equal(200);
      expect(same.json.signatures[0].signer).to.equal(privateKeyToAccount(COMMITTEE_KEYS[1] as `0x${string}`).address);
    });
  });
});
