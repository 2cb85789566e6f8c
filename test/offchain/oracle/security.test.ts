/**
 * The oracle's findings of the security review: F4 (one report per gateway and epoch, paged lists), F7 (the
 * sender checked before any hashing or recovery), F8 (peer signatures verified before they count) and L-4
 * (in-order posting, /sign for committee members only).
 */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { type Server, createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ethers } from "hardhat";
import { mine, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { type JobReportBody, MAX_REPORT_ENTRIES, signJobReport } from "../../../offchain/common/protocol";
import { ingestHeartbeat, ingestReport } from "../../../offchain/oracle/ingest";
import { postClosedEpochs } from "../../../offchain/oracle/post";
import { PAGE_LIMITS } from "../../../offchain/oracle/routes/epochs";
import type { OracleService } from "../../../offchain/oracle/service";
import { OracleStore } from "../../../offchain/oracle/store";
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

const G1 = deviceAccount(1);
const G2 = deviceAccount(2);
const H = [10, 11].map(deviceAccount);
const OUTSIDER = deviceAccount(99);
const member = (i: number) => privateKeyToAccount(COMMITTEE_KEYS[i] as Hex);

let rpc: RpcServer;
let dir: string;
let dbCount = 0;
const running: OracleService[] = [];

async function oracle(book: string, keys: number[], extra: string[] = []) {
  const started = await startOracle(rpc.url, book, join(dir, `oracle-${++dbCount}.db`), keys, extra);
  running.push(started.service);
  return started;
}

const report = (gateway = G1, epoch = 0n, sequence = 1n, jobs = 1n) =>
  signJobReport(gateway, CHAIN_ID, epoch, sequence, [
    { host: H[0].address, jobs },
    { host: H[1].address, jobs: 2n },
  ]);

describe("oracle security review (F4, F7, F8, L-4)", function () {
  this.timeout(120_000);

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-oracle-sec-"));
    rpc = await startRpcServer();
  });

  after(async function () {
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async function () {
    for (const service of running.splice(0)) await service.close();
  });

  it("F4: the store keeps one report per gateway and epoch (a higher sequence replaces it), and every list endpoint is paged and bounded", async function () {
    const store = new OracleStore(join(dir, "f4.db"));
    const stored = (gateway: string, sequence: number, hash: string) => ({
      gateway,
      epoch: 0,
      sequence,
      entries: [{ host: "0x" + "a".repeat(40), jobs: String(sequence) }],
      entriesHash: hash,
      signature: "0x",
      receivedAt: 0,
    });
    expect(store.insertReport(stored("0x01", 1, "h1"))).to.equal("inserted");
    expect(store.insertReport(stored("0x01", 3, "h3"))).to.equal("inserted");
    expect(store.insertReport(stored("0x01", 2, "h2"))).to.equal("duplicate"); // superseded: never counts
    expect(store.insertReport(stored("0x01", 3, "h3"))).to.equal("duplicate");
    expect(store.insertReport(stored("0x01", 3, "other"))).to.equal("conflict");
    expect(store.insertReport(stored("0x02", 1, "g1"))).to.equal("inserted");
    const rows = store.db.prepare("select gateway, sequence from reports order by gateway").all();
    expect(rows).to.deep.equal([
      { gateway: "0x01", sequence: 3 },
      { gateway: "0x02", sequence: 1 },
    ]);
    // A page stops at its character budget (past its first report) and resumes from the cursor.
    const first = store.reportsPage(0, "", 10, 1);
    expect([first.items.map((r) => r.gateway), first.next]).to.deep.equal([["0x01"], "0x01"]);
    expect(store.reportsPage(0, "0x01", 10, 1).items.map((r) => r.gateway)).to.deep.equal(["0x02"]);
    store.close();

    // Over HTTP: three reports from G1, one from G2; the lists hold the latest per gateway, page by page.
    const p = await deployForOracle({
      dir,
      devices: [
        [1, StakeType.Gateway],
        [2, StakeType.Gateway],
        [10, StakeType.Host],
        [11, StakeType.Host],
      ],
    });
    const { url } = await oracle(p.book, [0]);
    for (const body of [await report(G1, 0n, 1n), await report(G1, 0n, 5n, 9n), await report(G2)]) {
      expect((await postJson(`${url}/reports`, body)).json.status).to.equal("accepted");
    }
    expect((await postJson(`${url}/reports`, await report(G1, 0n, 2n))).json.status).to.equal("duplicate");
    const reports = await getAllPages(`${url}/epochs/0/reports`, "reports", 1);
    expect(reports.map((r) => [r.gateway, r.sequence]).sort()).to.deep.equal(
      [
        [G1.address.toLowerCase(), 5],
        [G2.address.toLowerCase(), 1],
      ].sort(),
    );
    expect((await getJson(`${url}/epochs/0`)).reports).to.equal(2);
    const page = await getJson(`${url}/epochs/0/reports?limit=1`);
    expect(page.reports).to.have.length(1);
    expect(page.next).to.be.a("string");
    for (const [path, list] of Object.entries({
      "/epochs": "epochs",
      "/epochs/0/reports": "reports",
      "/epochs/0/heartbeats": "heartbeats",
      "/epochs/0/batches": "batches",
    })) {
      const max = PAGE_LIMITS[list as keyof typeof PAGE_LIMITS].max;
      const over = await postJsonGet(`${url}${path}?limit=${max + 1}`);
      expect([over.status, over.json.code], path).to.deep.equal([400, "ORACLE_BAD_PAGE"]);
      const bad = await postJsonGet(`${url}${path}?cursor=x`);
      expect(bad.status, path).to.equal(400);
    }
  });

  it("F7: an unadmitted sender's maximal report (and heartbeat) is refused before its entries or signature are read", async function () {
    const p = await deployForOracle({ dir, devices: [[1, StakeType.Gateway]] });
    const { service, url } = await oracle(p.book, [0]);
    const entries = Array.from({ length: MAX_REPORT_ENTRIES }, (_, i) => ({
      host: ethers.zeroPadValue(ethers.toBeHex(i + 1), 20),
      jobs: BigInt(i + 1),
    }));
    const maximal = await signJobReport(OUTSIDER, CHAIN_ID, 0n, 1n, entries);
    // Every read of the entries or the signature (hashing, recovery) is counted.
    let reads = 0;
    const watched = (body: Record<string, unknown>, fields: string[]) => {
      const out = { ...body };
      for (const field of fields) {
        Object.defineProperty(out, field, { get: () => (reads++, body[field]), enumerable: true });
      }
      return out;
    };
    expect(
      await failure(ingestReport(service.ingestDeps, watched(maximal, ["entries", "signature"]) as JobReportBody)),
    ).to.match(/holds no gateway stake/);
    const beat = {
      stargate: OUTSIDER.address,
      epoch: "0",
      timestamp: String(await time.latest()),
      signature: "0x" + "1".repeat(130),
    };
    expect(await failure(ingestHeartbeat(service.ingestDeps, watched(beat, ["signature"]) as typeof beat))).to.match(
      /holds no stargate stake/,
    );
    expect(reads).to.equal(0);

    // Over HTTP: refused with 403; the same report from an admitted gateway (bad signature) costs the hashing.
    const started = performance.now();
    const reply = await postJson(`${url}/reports`, maximal);
    const refusedMs = performance.now() - started;
    expect([reply.status, reply.json.code]).to.deep.equal([403, "ORACLE_SENDER_NOT_STAKED"]);
    const forged = { ...maximal, gateway: G1.address };
    const t1 = performance.now();
    expect((await postJson(`${url}/reports`, forged)).json.code).to.equal("ORACLE_BAD_SIGNATURE");
    console.log(
      `      (20,000 entries: unadmitted refused in ${refusedMs.toFixed(1)} ms, admitted forged in ${(performance.now() - t1).toFixed(1)} ms, parsing and schema included)`,
    );
    // A heartbeat body over 1 KiB is not parsed.
    const big = await postJson(`${url}/heartbeats`, { ...beat, pad: "x".repeat(2000) });
    expect(big.status).to.equal(413);
  });

  it("F8: a bogus peer listed first does not fill the threshold: its signature is refused and the good peer is asked", async function () {
    const p = await deployForOracle({
      dir,
      committeeSize: 3,
      threshold: 2,
      devices: [
        [1, StakeType.Gateway],
        [10, StakeType.Host],
        [11, StakeType.Host],
      ],
    });
    // The bogus peer accepts relays and answers /sign with a signature it claims is member 2's (made by an outsider).
    let bogusAsked = 0;
    const bogus: Server = createServer((request, response) => {
      let text = "";
      request.on("data", (chunk) => (text += chunk));
      request.on("end", async () => {
        response.setHeader("content-type", "application/json");
        if (request.url !== "/sign") return response.end(JSON.stringify({ status: "accepted" }));
        bogusAsked += 1;
        const body = JSON.parse(text);
        const signature = await OUTSIDER.signMessage({ message: body.entries });
        response.end(JSON.stringify({ signatures: [{ signer: member(2).address, signature }] }));
      });
    });
    await new Promise<void>((resolve) => bogus.listen(0, "127.0.0.1", resolve));
    const bogusUrl = `http://127.0.0.1:${(bogus.address() as { port: number }).port}`;
    try {
      const b = await oracle(p.book, [1], ["--submit", "false"]);
      const a = await oracle(p.book, [0], ["--peers", `${bogusUrl},${b.url}`]);
      expect((await postJson(`${a.url}/reports`, await report())).json.status).to.equal("accepted");
      await waitFor("relayed to B", async () => (await getJson(`${b.url}/epochs/0`)).reports === 1);
      await time.increaseTo(p.genesis + EPOCH_SECONDS + 1n);
      await mine(2);
      await waitFor("epoch 0 posted by A", async () => (await getJson(`${a.url}/epochs/0`)).status === "posted");
      expect(bogusAsked).to.be.greaterThan(0);
      const [event] = await p.rewards.queryFilter(p.rewards.filters.ScoresPosted(0n));
      const tx = await ethers.provider.getTransaction(event.transactionHash);
      const [, , entries, signatures] = p.rewards.interface.decodeFunctionData("postScores", tx!.data);
      const [, , version] = await p.rewards.committee();
      const digest = await p.rewards.batchDigest(0n, 0n, ethers.keccak256(entries), version);
      const signers = (signatures as string[]).map((s) => ethers.recoverAddress(digest, s)).sort();
      expect(signers).to.deep.equal([member(0).address, member(1).address].sort());
    } finally {
      await new Promise((resolve) => bogus.close(resolve));
    }
  });

  it("L-4: /sign answers only a committee member's fresh, signed, unseen request (checked before any work)", async function () {
    const p = await deployForOracle({ dir, committeeSize: 2, devices: [[1, StakeType.Gateway]] });
    const { url } = await oracle(p.book, [1], ["--submit", "false"]);
    const entries = "0x" + "00".repeat(10);
    const ask = async (body: unknown) => {
      const reply = await postJson(`${url}/sign`, body);
      return [reply.status, reply.json.code];
    };
    const valid = await signedSignRequest(p.rewards, 0, { epoch: 0, batchIndex: 0, entries });
    expect(await ask({ epoch: "0", batchIndex: "0", entries })).to.deep.equal([400, "FST_ERR_VALIDATION"]);
    // An outsider's request, however well signed, is refused before the batch is looked up (not "not closed").
    const outsider = { ...valid, requester: OUTSIDER.address };
    expect(await ask(outsider)).to.deep.equal([403, "ORACLE_SIGN_NOT_COMMITTEE"]);
    const forged = await signedSignRequest(p.rewards, 0, { epoch: 0, batchIndex: 0, entries });
    expect(await ask({ ...forged, requester: member(1).address })).to.deep.equal([401, "ORACLE_SIGN_BAD_SIGNATURE"]);
    const stale = await signedSignRequest(p.rewards, 0, {
      epoch: 0,
      batchIndex: 0,
      entries,
      issuedAt: Date.now() - 600_000,
    });
    expect(await ask(stale)).to.deep.equal([400, "ORACLE_SIGN_STALE"]);
    // The member's request reaches the work (this instance has not closed epoch 0), once.
    expect(await ask(valid)).to.deep.equal([409, "ORACLE_EPOCH_NOT_CLOSED"]);
    expect(await ask(valid)).to.deep.equal([409, "ORACLE_SIGN_REPLAYED"]);
    // Another encoding of the same signature (v as 0/1) is the same digest: still a replay.
    const v = parseInt(valid.signature.slice(130), 16) - 27;
    const reencoded = { ...valid, signature: valid.signature.slice(0, 130) + v.toString(16).padStart(2, "0") };
    expect(await ask(reencoded)).to.deep.equal([409, "ORACLE_SIGN_REPLAYED"]);
  });

  it("L3: a member's request whose requester has a bad EIP-55 checksum is answered 4xx, not 500", async function () {
    const p = await deployForOracle({ dir, committeeSize: 2, devices: [[1, StakeType.Gateway]] });
    const { url } = await oracle(p.book, [1], ["--submit", "false"]);
    const entries = "0x" + "00".repeat(10);
    const valid = await signedSignRequest(p.rewards, 0, { epoch: 0, batchIndex: 0, entries });
    // One letter's case flipped: still mixed case, so viem would refuse it as an address when hashing.
    const at = valid.requester.search(/[a-fA-F]/);
    const c = valid.requester[at];
    const flipped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
    const requester = valid.requester.slice(0, at) + flipped + valid.requester.slice(at + 1);
    const reply = await postJson(`${url}/sign`, { ...valid, requester });
    expect(reply.status, JSON.stringify(reply.json)).to.equal(409);
    expect(reply.json.code).to.equal("ORACLE_EPOCH_NOT_CLOSED");
  });

  it("L-4: an epoch that cannot gather signatures holds the later ones back: epochs are posted in order", async function () {
    const p = await deployForOracle({
      dir,
      committeeSize: 2,
      threshold: 2,
      devices: [
        [1, StakeType.Gateway],
        [2, StakeType.Gateway],
        [10, StakeType.Host],
        [11, StakeType.Host],
      ],
    });
    const b = await oracle(p.book, [1], ["--submit", "false"]);
    const a = await oracle(p.book, [0], ["--peers", b.url]);
    // Epoch 0: B also holds G2's report (sent to B only), so B scores G2 and refuses to sign A's batch.
    expect((await postJson(`${a.url}/reports`, await report(G1, 0n, 1n))).json.status).to.equal("accepted");
    await waitFor("relayed to B", async () => (await getJson(`${b.url}/epochs/0`)).reports === 1);
    expect((await postJson(`${b.url}/reports`, await report(G2, 0n, 1n))).json.status).to.equal("accepted");
    await time.increaseTo(p.genesis + EPOCH_SECONDS + 1n);
    await mine(2);
    await waitFor("A closed epoch 0", async () => (await getJson(`${a.url}/epochs/0`)).status !== "open");
    // Epoch 1: both agree.
    expect((await postJson(`${a.url}/reports`, await report(G1, 1n, 1n))).json.status).to.equal("accepted");
    await waitFor("relayed to B", async () => (await getJson(`${b.url}/epochs/1`)).reports === 1);
    await time.increaseTo(p.genesis + 2n * EPOCH_SECONDS + 1n);
    await mine(2);
    await waitFor("A closed epoch 1", async () => (await getJson(`${a.url}/epochs/1`)).status !== "open");
    await waitFor("B closed epoch 1", async () => (await getJson(`${b.url}/epochs/1`)).status !== "open");
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // many work passes (50 ms each)
    expect(await p.rewards.isBatchPosted(0n, 0n)).to.equal(false);
    expect(await p.rewards.isBatchPosted(1n, 0n)).to.equal(false);
    expect(await getAllPages(`${a.url}/epochs`, "epochs")).to.deep.equal([
      { epoch: 0, status: "closed" },
      { epoch: 1, status: "closed" },
    ]);
  });
});

describe("oracle posting: epochs the contract no longer takes", function () {
  it("M1 (review after D41): instances given a gateway's two same-sequence reports in either order keep the same one", async function () {
    const dir = mkdtempSync(join(tmpdir(), "oracle-equivocation-"));
    const [a, b] = ["a.db", "b.db"].map((f) => new OracleStore(join(dir, f)));
    try {
      const report = (hash: string, jobs: string) => ({
        gateway: "0x" + "0".repeat(39) + "1",
        epoch: 0,
        sequence: 5,
        entries: [{ host: "0x" + "a".repeat(40), jobs }],
        entriesHash: hash,
        signature: "0x",
        receivedAt: 0,
      });
      const low = report(`0x${"11".repeat(32)}`, "1");
      const high = report(`0x${"ee".repeat(32)}`, "999");
      // Each instance accepted one of them first, then got the other by relay: a conflict either way...
      expect([a.insertReport(low), a.insertReport(high)]).to.deep.equal(["inserted", "conflict"]);
      expect([b.insertReport(high), b.insertReport(low)]).to.deep.equal(["inserted", "conflict"]);
      // ...but both keep the larger entries hash, so they score the gateway alike and their batches agree.
      for (const store of [a, b]) expect(store.reports(0).map((r) => r.entriesHash)).to.deep.equal([high.entriesHash]);
      expect(a.reports(0)[0].entries).to.deep.equal(b.reports(0)[0].entries);
    } finally {
      a.close();
      b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("L-4: an epoch older than RewardsManager's oldest postable one is marked expired, and later epochs go on", async function () {
    const dir = mkdtempSync(join(tmpdir(), "oracle-expired-"));
    const store = new OracleStore(join(dir, "oracle.db"));
    try {
      const closed = (epoch: number, batches: number) =>
        store.saveClosedEpoch(
          {
            epoch,
            status: "closed",
            endBlock: 1,
            admitted: { hosts: [], gateways: [], stargates: [] },
            scores: [],
            stakes: {},
            closedAt: 0,
            postedAt: null,
          },
          Array.from({ length: batches }, () => ({ entries: "0x", entriesHash: `0x${"00".repeat(32)}` })),
        );
      closed(3, 1); // stuck: never gathered its signatures, and now out of the window
      closed(4, 1); // posted by someone else
      closed(5, 0); // nothing to post
      const errors: object[] = [];
      const reads: string[] = [];
      const client = {
        readContract: async ({ functionName, args }: { functionName: string; args?: bigint[] }) => {
          reads.push(functionName);
          if (functionName === "oldestPostableEpoch") return 4n;
          if (functionName === "isBatchPosted") return args![0] === 4n;
          throw new Error(`unexpected read ${functionName}`);
        },
      };
      const log = { info: () => {}, warn: () => {}, error: (o: object) => errors.push(o) };
      await postClosedEpochs({
        store,
        client: client as never,
        rewards: `0x${"0".repeat(40)}`,
        sender: null,
        signer: {} as never,
        peers: [],
        postingDuration: { observe: () => {} } as never,
        now: () => 1_000,
        log: log as never,
      });
      expect(store.epoch(3)!.status).to.equal("expired");
      expect(store.epoch(4)!.status).to.equal("posted");
      expect(store.epoch(5)!.status).to.equal("posted");
      expect(errors).to.deep.equal([{ epoch: 3, oldestPostable: 4 }]);
      expect(reads.filter((r) => r === "isBatchPosted")).to.have.length(1); // the expired epoch is not even asked
      expect(store.unpostedEpochs()).to.deep.equal([]);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The message a promise is rejected with ("" if it resolves). */
async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "";
  } catch (error) {
    return (error as Error).message;
  }
}

/** A GET that returns the status and body instead of throwing on a 4xx. */
async function postJsonGet(url: string): Promise<{ status: number; json: any }> {
  const response = await fetch(url);
  return { status: response.status, json: await response.json() };
}
