import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ethers, network } from "hardhat";
import { mine, time } from "@nomicfoundation/hardhat-network-helpers";
import fc from "fast-check";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { unpackEntries } from "../../../offchain/common/scoreBatch";
import { StakeType } from "../../shared/constants";
import { COMMITTEE_KEYS } from "../../shared/fixtures";
import { type RpcServer, startRpcServer } from "../../shared/rpc";
import { type Child, dropPendingTransactions, spawnServe } from "../../shared/spawn";
import {
  CHAIN_ID,
  EPOCH_SECONDS,
  deployForOracle,
  deviceAccount,
  getAllPages,
  getJson,
  postJson,
  waitFor,
} from "./helpers";
import { signAttestedReport } from "./attested";

const HOSTS = 24;
const BATCH_SIZE = 3;
const BATCHES = Math.ceil((HOSTS + 1) / BATCH_SIZE); // the hosts and the reporting gateway

/** `npm run oracle -- serve` as its own process. */
function spawnOracle(rpc: string, book: string, db: string): Child {
  return spawnServe(
    "offchain/oracle/cli.ts",
    [
      ...["--rpc", rpc, "--addresses", book, "--db", db, "--port", "0", "--grace-seconds", "0"],
      ...["--confirmations", "0", "--poll-interval-ms", "50", "--batch-size", String(BATCH_SIZE)],
    ],
    { EDGE_ORACLE_KEYS: COMMITTEE_KEYS[0], EDGE_ORACLE_LOG_LEVEL: "info" },
    "oracle started",
  );
}

describe("oracle crash safety", function () {
  this.timeout(300_000);
  let rpc: RpcServer;
  let dir: string;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-oracle-crash-"));
    rpc = await startRpcServer();
  });

  after(async function () {
    await network.provider.send("evm_setIntervalMining", [0]);
    await network.provider.send("evm_setAutomine", [true]);
    await rpc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("posts each (epoch, stake) exactly once when killed (SIGKILL) at random points while posting", async function () {
    const gateway = deviceAccount(1);
    const hosts = Array.from({ length: HOSTS }, (_, i) => deviceAccount(100 + i));
    const p = await deployForOracle({
      dir,
      devices: [[1, StakeType.Gateway], ...hosts.map((_, i): [number, StakeType] => [100 + i, StakeType.Host])],
    });
    const db = join(dir, "oracle.db");
    const submitter = privateKeyToAccount(COMMITTEE_KEYS[0] as Hex).address;
    // Other suites share this chain and submitter, so count this test's transactions from here.
    const startNonce = await ethers.provider.getTransactionCount(submitter);

    // Reports go in while the first instance runs; then the epoch ends.
    const first = spawnOracle(rpc.url, p.book, db);
    const url = await first.url;
    const report = await signAttestedReport(
      gateway,
      CHAIN_ID,
      0n,
      1n,
      hosts.map((h, i) => ({ host: h, jobs: BigInt(1 + ((i * 7) % 13)) })),
    );
    expect((await postJson(`${url}/reports`, report)).json.status).to.equal("accepted");
    first.process.kill("SIGKILL");
    await first.exited;

    // Blocks every 200 ms, so transactions sit in the mempool for a while and kills land between sending,
    // mining and bookkeeping.
    await network.provider.send("evm_setAutomine", [false]);
    await network.provider.send("evm_setIntervalMining", [200]);
    await time.increaseTo(p.genesis + EPOCH_SECONDS + 1n);
    await mine(2);

    const delays = fc.sample(fc.integer({ min: 0, max: 900 }), { seed: 6, numRuns: 40 });
    const dropped = fc.sample(fc.boolean(), { seed: 7, numRuns: 40 });
    let kills = 0;
    let droppedTxs = 0;
    const postedOnChain = async () => {
      let n = 0;
      for (let i = 0; i < BATCHES; i++) if (await p.rewards.isBatchPosted(0n, BigInt(i))) n += 1;
      return n;
    };
    const progress: number[] = [];
    for (let round = 0; round < delays.length && (await postedOnChain()) < BATCHES; round++) {
      const child = spawnOracle(rpc.url, p.book, db);
      await child.url;
      await new Promise((r) => setTimeout(r, delays[round]));
      child.process.kill("SIGKILL");
      await child.exited;
      kills += 1;
      progress.push(await postedOnChain());
      // As if the node lost the transaction: the next instance must rebroadcast its persisted bytes.
      if (dropped[round]) droppedTxs += await dropPendingTransactions(db);
    }
    // Some kills must have landed mid-epoch: with batches posted and others not.
    expect(
      progress.filter((n) => n > 0 && n < BATCHES).length,
      `batches posted after each kill: ${progress}`,
    ).to.be.greaterThan(2);

    // A last, uninterrupted instance finishes whatever is left.
    const last = spawnOracle(rpc.url, p.book, db);
    const lastUrl = await last.url;
    await waitFor("epoch 0 posted", async () => (await getJson(`${lastUrl}/epochs/0`)).status === "posted", 60_000);
    const epoch = { batches: await getAllPages(`${lastUrl}/epochs/0/batches`, "batches") };
    last.process.kill("SIGTERM");
    expect(await last.exited).to.equal(0);

    // Every batch once, every stake once, nothing skipped as already scored, and no transaction wasted.
    const events = await p.rewards.queryFilter(p.rewards.filters.ScoresPosted(0n));
    expect(events.map((e) => Number(e.args.batchIndex)).sort((a, b) => a - b)).to.deep.equal(
      Array.from({ length: BATCHES }, (_, i) => i),
    );
    const seen = new Map<bigint, number>();
    for (const event of events) {
      const tx = await ethers.provider.getTransaction(event.transactionHash);
      const [, , entries] = p.rewards.interface.decodeFunctionData("postScores", tx!.data);
      for (const { stakeId } of unpackEntries(entries)) seen.set(stakeId, (seen.get(stakeId) ?? 0) + 1);
      expect(epoch.batches[Number(event.args.batchIndex)].txHash).to.equal(event.transactionHash);
    }
    expect([...p.stakes.values()].sort((a, b) => Number(a - b))).to.deep.equal(
      [...seen.keys()].sort((a, b) => Number(a - b)),
    );
    expect([...seen.values()].every((n) => n === 1)).to.equal(true);
    expect(await p.rewards.queryFilter(p.rewards.filters.EntrySkipped())).to.have.length(0);
    expect((await ethers.provider.getTransactionCount(submitter)) - startNonce).to.equal(BATCHES);
    console.log(
      `      (${kills} kills; batches on-chain after each: ${progress}; ${droppedTxs} txs dropped from the mempool)`,
    );
  });
});
