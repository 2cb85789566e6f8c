/**
 * Oracle benchmark:
 *   - score.hosts100k.seconds: scoreEpoch over 1,000 gateways' reports of 1,000 entries each (1,000,000
 *     entries over 100,000 admitted hosts), parsed from JSON as the service reads them, median of 3;
 *   - ingest.entriesPerSecond: signed reports of 1,000 entries each POSTed concurrently by autocannon to
 *     `npm run oracle -- serve` in its own process, each verified (schema, EIP-712 signature, gateway admitted
 *     in the chain view, every entry's host tally) and stored in SQLite; every reply must be 200: "accepted", or
 *     "duplicate" for a report that 16 concurrent connections delivered after a later one of its gateway (D41
 *     keeps only the latest; it was verified in full all the same), and both count.
 *     The workload is the network's steady state (D40): each of 20 gateways sends cumulative reports of the same
 *     1,000 hosts, every entry with its host's signed tally; a gateway repeats a host's tally until it is
 *     TALLY_REFRESH_MS (10 min) old, and reports every 10 s, so each report carries a new tally for 1 host in
 *     60, staggered (the oracle recovers those and remembers the rest: ingest.tallyRecoveriesPerReport);
 *   - post.stakes1000.seconds: from the block that ends an epoch with 1,000 scored hosts to all their scores
 *     on-chain (close, score, 5 batches, sign, send, mined), same process, 100 ms polling.
 * The chain is Hardhat's in-process network served over HTTP. Writes bench/oracle.json and the table in
 * docs/oracle.md.
 *
 *   npm run bench:oracle
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre, { ethers } from "hardhat";
import { mine, time } from "@nomicfoundation/hardhat-network-helpers";
import Database from "better-sqlite3";
import fc from "fast-check";
import { type Hex, keccak256, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { JsonRpcServer } from "hardhat/internal/hardhat-network/jsonrpc/server";
import { DEVICE_CONSENT_TYPES } from "../../offchain/common/consent";
import { writeBenchResults } from "./report";
import { postBodies, spawnService, waitUntil } from "./service";
import secp256k1 from "secp256k1";
import {
  type JobReportBody,
  type JobReportEntry,
  hostTallyDigest,
  signJobReport,
} from "../../offchain/common/protocol";
import { keccak256 as nativeKeccak } from "../../offchain/common/crypto";
import { type AdmittedInput, type ReportInput, scoreEpoch } from "../../offchain/oracle/scoring";
import { deployProtocol } from "../deploy/deployProtocol";

const ROOT = join(__dirname, "..", "..");
const OUT = join(ROOT, "bench", "oracle.json");
const DOC = join(ROOT, "docs", "oracle.md");
const CHAIN_ID = 31337;
const EPOCH = 600n;
const INGEST_GATEWAYS = 20;
const INGEST_REPORTS = 2_000;
const ENTRIES = 1_000;
const POST_HOSTS = 1_000;
const COMMITTEE_KEY = ethers.zeroPadValue(ethers.toBeHex(0xbe0c0de01n), 32) as Hex;
const deviceKey = (i: number) => ethers.zeroPadValue(ethers.toBeHex(0xbe0d00000n + BigInt(i)), 32) as Hex;
const address = (seed: string) => keccak256(toHex(seed)).slice(0, 42);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

function benchScoring(results: Record<string, number>): void {
  // 100,000 hosts; gateway g reports 1,000 of them (each host is seen by ~10 gateways), random job counts.
  const hosts = Array.from({ length: 100_000 }, (_, i) => address(`host-${i}`));
  const gateways = Array.from({ length: 1_000 }, (_, g) => address(`gateway-${g}`));
  const picks = fc.sample(fc.integer({ min: 0, max: hosts.length - 1 }), { seed: 1, numRuns: 1_000_000 });
  const jobs = fc.sample(fc.integer({ min: 0, max: 5_000 }), { seed: 2, numRuns: 1_000_000 });
  const built: ReportInput[] = gateways.map((gateway, g) => {
    const seen = new Set<number>();
    const entries: Array<{ host: string; jobs: string; attested: string }> = [];
    for (let k = 0; entries.length < ENTRIES; k++) {
      const pick = (picks[(g * ENTRIES + k) % picks.length] + k) % hosts.length;
      if (seen.has(pick)) continue;
      seen.add(pick);
      const count = String(jobs[g * ENTRIES + entries.length]);
      // Every host attested at least what its gateway counted (honest hosts): j = jobs, as before tallies.
      entries.push({ host: hosts[pick], jobs: count, attested: count });
    }
    return { gateway, epoch: 0, sequence: 1, entries };
  });
  // The service scores what it reads back from SQLite (JSON.parse of each report's entries): measure that shape.
  const input = JSON.parse(JSON.stringify({ reports: built, admitted: { hosts, gateways, stargates: [] } }));
  const { reports, admitted } = input as { reports: ReportInput[]; admitted: AdmittedInput };
  const times: number[] = [];
  let scored = 0;
  for (let run = 0; run < 3; run++) {
    const t0 = performance.now();
    scored = scoreEpoch(0n, reports, admitted, []).length;
    times.push((performance.now() - t0) / 1000);
  }
  results["score.hosts100k.seconds"] = round(median(times));
  results["score.hosts100k.entries"] = reports.length * ENTRIES;
  console.log(`scoring: ${scored} scores, ${times.map((t) => t.toFixed(3)).join(" / ")} s`);
}

function spawnOracle(rpc: string, book: string, db: string, extra: string[]) {
  return spawnService(
    "offchain/oracle/cli.ts",
    [
      ...["--rpc", rpc, "--addresses", book, "--db", db, "--port", "0", "--confirmations", "0"],
      ...["--grace-seconds", "0", "--log-level", "info", ...extra],
    ],
    { EDGE_ORACLE_KEYS: COMMITTEE_KEY },
    "oracle started",
  );
}

type Results = Record<string, number>;

/**
 * A deployment whose epoch 0 starts after every stake exists (so each is active through epochs 0 and 1), with
 * 20 gateways and 1,000 hosts staked; the chain is then at genesis.
 */
async function deployAndStake(dir: string) {
  const [deployer] = await ethers.getSigners();
  const committee = privateKeyToAccount(COMMITTEE_KEY).address;
  const genesis = BigInt((await ethers.provider.getBlock("latest"))!.timestamp) + 100_000n;
  const { book, file } = await deployProtocol(hre, {
    parameters: {
      ignition: {
        StakeManager: { adminDelay: 0n },
        RewardsManager: { adminDelay: 0n, epochDuration: EPOCH, genesis, committee: [committee], threshold: 1n },
      },
      roles: {},
      rewards: { fund: 10_000_000n * ethers.parseEther("1") },
    },
    addressesDir: join(dir, "book"),
  });
  await hre.network.provider.send("hardhat_setBalance", [committee, "0x56BC75E2D63100000"]);
  const staking = await ethers.getContractAt("StakeManager", book.contracts.StakeManager!.address);
  const rewards = await ethers.getContractAt("RewardsManager", book.contracts.RewardsManager!.address);
  const token = await ethers.getContractAt("EdgeToken", book.contracts.EdgeToken!.address);
  await (await token.approve(await staking.getAddress(), ethers.MaxUint256)).wait();

  // Devices 0..19 are gateways, 100..1099 hosts: consents signed offline, 100 stakes to a block.
  const devices: Array<[number, number]> = [
    ...Array.from({ length: INGEST_GATEWAYS }, (_, i): [number, number] => [i, 1]),
    ...Array.from({ length: POST_HOSTS }, (_, i): [number, number] => [100 + i, 0]),
  ];
  const domain = {
    name: "Edge StakeManager",
    version: "1",
    chainId: CHAIN_ID,
    verifyingContract: await staking.getAddress(),
  };
  const deadline = genesis + 1_000_000n;
  await hre.network.provider.send("evm_setAutomine", [false]);
  for (let from = 0; from < devices.length; from += 100) {
    const sends = [];
    for (const [n, type] of devices.slice(from, from + 100)) {
      const device = new ethers.Wallet(deviceKey(n));
      const signature = await device.signTypedData(domain, DEVICE_CONSENT_TYPES, {
        device: device.address,
        owner: deployer.address,
        nonce: 0n,
        deadline,
      });
      const amount = type === 1 ? ethers.parseEther("25000") : ethers.parseEther("100");
      sends.push(
        staking.stakeAndAssign(type, amount, { device: device.address, deadline, signature }, { gasLimit: 250_000 }),
      );
    }
    await Promise.all(sends);
    await mine(1);
  }
  await hre.network.provider.send("evm_setAutomine", [true]);
  if ((await staking.stakeCount()) !== BigInt(devices.length)) throw new Error("staking failed");
  await time.increaseTo(genesis);
  await mine(1);
  return { file, rewards, genesis };
}

/** What the ingestion and posting measures run against. */
type Bench = Awaited<ReturnType<typeof deployAndStake>> & { dir: string; rpc: string; children: ChildProcess[] };

/** Reports between two tallies of one host in a report (TALLY_REFRESH_MS / the 10 s report interval). */
const TALLY_EVERY = 60;

/** A host's key and address for the ingest workload (signed natively: 50,000 tallies to make). */
function ingestHost(i: number): { key: Buffer; address: string } {
  const key = Buffer.from(keccak256(toHex(`ingest-host-key-${i}`)).slice(2), "hex");
  const publicKey = secp256k1.publicKeyCreate(key, false);
  return { key, address: `0x${nativeKeccak(publicKey.subarray(1)).slice(-40)}` };
}

/** Host k's tally at gateway g as of report sequence s: a new one every TALLY_EVERY reports, staggered by host. */
function ingestTally(host: { key: Buffer; address: string }, gateway: string, k: number, s: number) {
  const version = Math.floor((s + (k % TALLY_EVERY)) / TALLY_EVERY);
  const tally = {
    host: host.address,
    gateway,
    epoch: "0",
    jobs: String(1 + version * 600 + k),
    sequence: String(1 + version),
  };
  const digest = Buffer.from(hostTallyDigest(CHAIN_ID, tally).slice(2), "hex");
  const { signature, recid } = secp256k1.ecdsaSign(digest, host.key);
  const sig = `0x${Buffer.from(signature).toString("hex")}${(27 + recid).toString(16)}`;
  return { attested: tally.jobs, tallySeq: tally.sequence, tallySig: sig };
}

/** Signed job reports POSTed concurrently to `oracle serve` in its own process. */
async function measureIngest({ dir, rpc, file, children }: Bench, results: Results): Promise<void> {
  console.log(`signing ${INGEST_REPORTS} reports of ${ENTRIES} entries with host tallies...`);
  const gatewayAccounts = Array.from({ length: INGEST_GATEWAYS }, (_, i) => privateKeyToAccount(deviceKey(i)));
  const hosts = Array.from({ length: INGEST_GATEWAYS * ENTRIES }, (_, i) => ingestHost(i));
  const tallies = new Map<string, ReturnType<typeof ingestTally>>();
  let newTallies = 0;
  const bodies: string[] = [];
  for (let r = 0; r < INGEST_REPORTS; r++) {
    const g = r % INGEST_GATEWAYS;
    const account = gatewayAccounts[g];
    const s = 1 + Math.floor(r / INGEST_GATEWAYS);
    const entries: JobReportEntry[] = Array.from({ length: ENTRIES }, (_, k) => {
      const host = hosts[g * ENTRIES + k];
      const version = Math.floor((s + (k % TALLY_EVERY)) / TALLY_EVERY);
      const key = `${g}:${k}:${version}`;
      let tally = tallies.get(key);
      if (!tally) {
        tally = ingestTally(host, account.address, k, s);
        tallies.set(key, tally);
        if (r >= 100) newTallies += 1;
      }
      return { host: host.address, jobs: BigInt(1 + s * 10 + (k % 7)), ...tally };
    });
    const body: JobReportBody = await signJobReport(account, CHAIN_ID, 0n, BigInt(s), entries);
    bodies.push(JSON.stringify(body));
  }
  const ingestDb = join(dir, "ingest.db");
  const ingest = spawnOracle(rpc, file, ingestDb, ["--poll-interval-ms", "1000"]);
  children.push(ingest.child);
  const ingestUrl = await ingest.url;
  // Warm-up (JIT, connections) on the first 100 reports: not counted.
  const url = `${ingestUrl}/reports`;
  const { statuses: warm } = await postBodies(url, bodies, 0, 100, 8, (json) => json.status);
  const measured = await postBodies(url, bodies, 100, INGEST_REPORTS - 100, 16, (json) => json.status);
  const { statuses, seconds, result: ingestResult } = measured;
  // Verified in full either way: "duplicate" is a report overtaken by a later one of its gateway (D41).
  const accepted = (statuses["200 accepted"] ?? 0) + (statuses["200 duplicate"] ?? 0);
  console.log("warm-up", warm, "measured", statuses, `${seconds.toFixed(2)} s`);
  if (accepted !== INGEST_REPORTS - 100)
    throw new Error(`only ${accepted} reports accepted: ${JSON.stringify(statuses)}`);
  // Every gateway's last report is stored (older ones too, unless the store keeps only the latest: F4).
  const stored = new Database(ingestDb, { readonly: true });
  const latest = stored.prepare("select gateway, max(sequence) s from reports group by gateway").all() as Array<{
    s: number;
  }>;
  stored.close();
  const last = INGEST_REPORTS / INGEST_GATEWAYS;
  if (latest.length !== INGEST_GATEWAYS || latest.some((row) => row.s !== last))
    throw new Error(`stored reports: ${JSON.stringify(latest)}, expected sequence ${last} of each gateway`);
  results["ingest.entriesPerSecond"] = Math.round((accepted * ENTRIES) / seconds);
  results["ingest.reportsPerSecond"] = Math.round(accepted / seconds);
  results["ingest.latency.p99.ms"] = ingestResult.latency.p99;
  results["ingest.connections"] = 16;
  results["ingest.tallyRecoveriesPerReport"] = round(newTallies / (INGEST_REPORTS - 100), 1);
  ingest.child.kill("SIGTERM");
}

/** From the block that closes an epoch with 1,000 scored hosts to its scores posted on-chain. */
async function measurePosting({ dir, rpc, file, rewards, genesis, children }: Bench, results: Results) {
  const postDb = join(dir, "post.db");
  const poster = spawnOracle(rpc, file, postDb, ["--poll-interval-ms", "100", "--first-epoch", "1"]);
  children.push(poster.child);
  const posterUrl = await poster.url;
  await time.increaseTo(genesis + EPOCH);
  await mine(1);
  const gateway = privateKeyToAccount(deviceKey(0));
  // Each host attests its count at the gateway (F11): a host without a tally would score nothing.
  const hosts = Array.from({ length: POST_HOSTS }, (_, i) => {
    const key = Buffer.from(deviceKey(100 + i).slice(2), "hex");
    const host = { key, address: privateKeyToAccount(deviceKey(100 + i)).address };
    const jobs = BigInt(1 + (i % 97));
    const tally = { host: host.address, gateway: gateway.address, epoch: "1", jobs: jobs.toString(), sequence: "1" };
    const { signature, recid } = secp256k1.ecdsaSign(
      Buffer.from(hostTallyDigest(CHAIN_ID, tally).slice(2), "hex"),
      key,
    );
    const tallySig = `0x${Buffer.from(signature).toString("hex")}${(27 + recid).toString(16)}`;
    return { host: host.address, jobs, attested: jobs, tallySeq: 1n, tallySig };
  });
  const report = await signJobReport(gateway, CHAIN_ID, 1n, 1n, hosts);
  // The chain runs in this process: while it signed, the oracle could not read the new head, so its clock may
  // still be in epoch 0 (it would refuse the report as ORACLE_EPOCH_IN_FUTURE). Wait until it has seen epoch 1.
  await waitUntil("the oracle in epoch 1", async () => {
    const epochs = (await (await fetch(`${posterUrl}/epochs`)).json()) as { current: string };
    return epochs.current === "1";
  });
  const reply = await fetch(`${posterUrl}/reports`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(report),
  });
  if (!reply.ok) throw new Error(`report refused: ${await reply.text()}`);
  await time.increaseTo(genesis + 2n * EPOCH);
  const p0 = performance.now();
  await mine(1);
  await waitUntil("epoch 1 posted", async () => {
    const epoch = (await (await fetch(`${posterUrl}/epochs/1`)).json()) as { status: string };
    return epoch.status === "posted";
  });
  const postSeconds = (performance.now() - p0) / 1000;
  const events = await rewards.queryFilter(rewards.filters.ScoresPosted(1n));
  const scoredCount = events.reduce((n, e) => n + Number(e.args.accrued), 0);
  if (scoredCount !== POST_HOSTS + 1)
    throw new Error(`${scoredCount} stakes scored on-chain, expected ${POST_HOSTS + 1}`);
  results["post.stakes1000.seconds"] = round(postSeconds);
  results["post.stakes1000.batches"] = events.length;
  results["post.stakes1000.gasPerStake"] = Math.round(
    (await Promise.all(events.map(async (e) => (await e.getTransactionReceipt()).gasUsed))).reduce(
      (a, b) => a + Number(b),
      0,
    ) / scoredCount,
  );
}

async function main(): Promise<void> {
  const results: Results = {};
  benchScoring(results);

  const dir = mkdtempSync(join(tmpdir(), "edge-bench-oracle-"));
  const server = new JsonRpcServer({ hostname: "127.0.0.1", port: 0, provider: hre.network.provider });
  const { port } = await server.listen();
  const rpc = `http://127.0.0.1:${port}`;
  const children: ChildProcess[] = [];
  try {
    const bench: Bench = { ...(await deployAndStake(dir)), dir, rpc, children };
    await measureIngest(bench, results);
    await measurePosting(bench, results);
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }

  await writeBenchResults(OUT, DOC, "oracle-bench", results, TARGETS);
}

const TARGETS: Record<string, string> = {
  "score.hosts100k.seconds": "<= 1 s",
  "ingest.entriesPerSecond": ">= 200,000",
  "post.stakes1000.seconds": "<= 10 s",
};

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
