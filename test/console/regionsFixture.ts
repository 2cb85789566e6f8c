/**
 * A chain and a stargate for the map of regions' tests: every contract deployed (deployProtocol, an address book
 * file), hosts and gateways staked and assigned to devices, one epoch's scores posted by the committee, and a
 * stand-in stargate whose GET /health/catalogue answers what the test sets (a catalogue, an error, garbage, or
 * nothing at all).
 */
import { mkdtempSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";

import { SCORE_BATCH_TYPES, entriesHash, packEntries } from "../../offchain/common/scoreBatch";
import { deployProtocol } from "../../scripts/deploy/deployProtocol";
import type { RewardsManager, StakeManager } from "../../typechain";
import { MINIMUM } from "../shared/constants";
import { COMMITTEE_KEYS, StakeType, eip712Domain, signConsent } from "../shared/fixtures";
import { type RpcServer, startRpcServer } from "../shared/rpc";

const EPOCH = 60n;
const DE = { country: "DE", region: "eu-central" };
const US = { country: "US", region: "us-east" };

/** The devices: role, region, posted score (none: not scored), load, and whether it is staked at all. */
export const DEVICES = [
  {
    name: "host-de-1",
    role: "host",
    region: DE,
    score: 12_000n,
    load: { inFlight: 3, capacity: 8, queueDepth: 1, p99Ms: 40 },
  },
  {
    name: "host-de-2",
    role: "host",
    region: DE,
    score: 9_000n,
    load: { inFlight: 1, capacity: 8, queueDepth: 0, p99Ms: 25 },
  },
  { name: "host-us-1", role: "host", region: US, score: 8_000n },
  { name: "host-none", role: "host", score: 10_000n },
  { name: "gateway-de", role: "gateway", region: DE, score: 10_000n },
  { name: "gateway-us", role: "gateway", region: US, score: 14_000n },
  { name: "host-unstaked", role: "host", region: US, unstaked: true },
] as const;

export interface RegionsChain {
  rpc: RpcServer;
  bookFile: string;
  staking: StakeManager;
  rewards: RewardsManager;
  /** The epoch scored. */
  epoch: bigint;
  /** The catalogue a stargate would serve for DEVICES. */
  catalogue: { atMs: number; endpoints: object[] };
}

/** Deploys, stakes every staked device's role minimum, and posts their scores for one ended epoch. */
export async function regionsChain(): Promise<RegionsChain> {
  const dir = mkdtempSync(join(tmpdir(), "edge-console-regions-"));
  const rpc = await startRpcServer();
  const committee = new ethers.Wallet(COMMITTEE_KEYS[0]);
  const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
  const { book, file } = await deployProtocol(hre, {
    parameters: {
      ignition: {
        StakeManager: { adminDelay: 0n },
        RewardsManager: {
          adminDelay: 0n,
          epochDuration: EPOCH,
          genesis: now,
          committee: [committee.address],
          threshold: 1n,
        },
        PaymentVault: { adminDelay: 0n },
      },
      roles: {},
      rewards: { fund: 1_000_000n * 10n ** 18n },
    },
    addressesDir: join(dir, "book"),
  });
  const staking = (await ethers.getContractAt(
    "StakeManager",
    book.contracts.StakeManager!.address,
  )) as unknown as StakeManager;
  const rewards = (await ethers.getContractAt(
    "RewardsManager",
    book.contracts.RewardsManager!.address,
  )) as unknown as RewardsManager;
  const token = await ethers.getContractAt("EdgeToken", book.contracts.EdgeToken!.address);
  const [deployer] = await ethers.getSigners();
  await token.approve(await staking.getAddress(), ethers.MaxUint256);

  const endpoints: object[] = [];
  const entries: Array<{ stakeId: bigint; score: bigint }> = [];
  for (const [i, d] of DEVICES.entries()) {
    const key = ethers.zeroPadValue(ethers.toBeHex(0xa11ce000 + i), 32);
    const wallet = new ethers.Wallet(key);
    const type = d.role === "host" ? StakeType.Host : StakeType.Gateway;
    if (!("unstaked" in d)) {
      const consent = await signConsent(staking, wallet, deployer.address);
      await staking.stakeAndAssign(type, MINIMUM[type], consent);
      const stakeId = await staking.stakeOfDevice(wallet.address);
      if ("score" in d) entries.push({ stakeId, score: d.score });
    }
    endpoints.push({
      device: wallet.address,
      role: d.role,
      url: `http://127.0.0.${10 + i}:7001`,
      healthy: d.name !== "host-de-2",
      version: 1,
      ...("region" in d ? { region: d.region } : {}),
      ...("load" in d ? { load: d.load } : {}),
    });
  }
  const epoch = (await rewards.currentEpoch()) + 1n;
  const [, end] = await rewards.epochWindow(epoch);
  await time.increaseTo(end + 1n);
  const packed = packEntries(entries);
  const [, , version] = await rewards.committee();
  const signature = await committee.signTypedData(await eip712Domain(rewards), SCORE_BATCH_TYPES, {
    epoch,
    batchIndex: 0n,
    entriesHash: entriesHash(packed),
    committeeVersion: version,
  });
  await rewards.postScores(epoch, 0n, packed, [signature]);
  return { rpc, bookFile: file, staking, rewards, epoch, catalogue: { atMs: Date.now(), endpoints } };
}

export type Answer = (request: IncomingMessage, response: ServerResponse) => void;

export interface StandInStargate {
  url: string;
  /** What GET /health/catalogue answers now. */
  answer: Answer;
  requests: number;
  close(): Promise<void>;
}

export const json =
  (body: unknown, status = 200): Answer =>
  (_request, response) => {
    response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  };

export async function standInStargate(initial: Answer): Promise<StandInStargate> {
  const stargate = { answer: initial, requests: 0 } as StandInStargate;
  const server: Server = createServer((request, response) => {
    if (request.url !== "/health/catalogue") return void response.writeHead(404).end();
    stargate.requests += 1;
    stargate.answer(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  stargate.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stargate.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return stargate;
}
