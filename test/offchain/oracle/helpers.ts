/**
 * A deployed protocol with staked gateways, hosts and a stargate, and oracle services over real HTTP on the
 * in-process Hardhat chain: shared by the oracle's tests and its benchmark.
 */
import { join } from "node:path";
import hre, { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { deployProtocol } from "../../../scripts/deploy/deployProtocol";
import { signSignRequest } from "../../../offchain/common/protocol";
import { loadOracleConfig } from "../../../offchain/oracle/config";
import { OracleService } from "../../../offchain/oracle/service";
import type { RewardsManager, StakeManager } from "../../../typechain";
import { MINIMUM, type StakeType } from "../../shared/constants";
import { COMMITTEE_KEYS, bookContracts, signConsent } from "../../shared/fixtures";

export const CHAIN_ID = 31337;
export const ONE = ethers.parseEther("1");
export const EPOCH_SECONDS = 60n;

/** Deterministic device keys: `deviceKey(n)`. */
export const deviceKey = (n: number) => ethers.zeroPadValue(ethers.toBeHex(0x0ac1e0000 + n), 32) as Hex;
export const deviceAccount = (n: number) => privateKeyToAccount(deviceKey(n));

export interface OracleProtocol {
  book: string;
  staking: StakeManager;
  rewards: RewardsManager;
  genesis: bigint;
  /** device address (lowercase) -> stake id */
  stakes: Map<string, bigint>;
}

/**
 * Deploys with committee = the first `committeeSize` COMMITTEE_KEYS and `threshold`, funds the pool and the
 * committee's gas, stakes one device per entry of `devices` (key index -> type) and moves time to epoch 0's
 * start, so every stake is active through epoch 0.
 */
export async function deployForOracle(options: {
  dir: string;
  devices: Array<[number, StakeType]>;
  committeeSize?: number;
  threshold?: number;
}): Promise<OracleProtocol> {
  const [deployer] = await ethers.getSigners();
  const committee = COMMITTEE_KEYS.slice(0, options.committeeSize ?? 2).map((k) => new ethers.Wallet(k).address);
  const genesis = BigInt((await ethers.provider.getBlock("latest"))!.timestamp) + 10_000n;
  const { book, file } = await deployProtocol(hre, {
    parameters: {
      ignition: {
        StakeManager: { adminDelay: 0n },
        RewardsManager: {
          adminDelay: 0n,
          epochDuration: EPOCH_SECONDS,
          genesis,
          committee,
          threshold: BigInt(options.threshold ?? 1),
        },
      },
      roles: {},
      rewards: { fund: 10_000_000n * ONE },
    },
    addressesDir: join(options.dir, "book"),
  });
  const { staking, rewards: maybeRewards, token } = await bookContracts(book);
  const rewards = maybeRewards!;
  await token.connect(deployer).approve(await staking.getAddress(), ethers.MaxUint256);
  for (const address of committee) {
    await hre.network.provider.send("hardhat_setBalance", [address, "0x56BC75E2D63100000"]); // 100 ETH
  }
  const stakes = new Map<string, bigint>();
  for (const [n, type] of options.devices) {
    const device = new ethers.Wallet(deviceKey(n));
    const consent = await signConsent(staking, device, deployer.address);
    await staking.connect(deployer).stakeAndAssign(type, MINIMUM[type], consent);
    stakes.set(device.address.toLowerCase(), await staking.stakeCount());
  }
  await time.increaseTo(genesis);
  return { book: file, staking, rewards, genesis, stakes };
}

/** Oracle flags for tests: ephemeral port, no grace, no confirmations, fast polling, silent logs. */
export function oracleArgs(rpc: string, book: string, db: string, extra: string[] = []): string[] {
  return [
    "--rpc",
    rpc,
    "--addresses",
    book,
    "--port",
    "0",
    "--db",
    db,
    "--grace-seconds",
    "0",
    "--confirmations",
    "0",
    "--poll-interval-ms",
    "50",
    "--log-level",
    "silent",
    ...extra,
  ];
}

/** Starts an in-process oracle holding committee keys `keys` (indexes into COMMITTEE_KEYS). */
export async function startOracle(
  rpc: string,
  book: string,
  db: string,
  keys: number[],
  extra: string[] = [],
): Promise<{ service: OracleService; url: string }> {
  const config = loadOracleConfig(oracleArgs(rpc, book, db, extra), {
    EDGE_ORACLE_KEYS: keys.map((i) => COMMITTEE_KEYS[i]).join(","),
  });
  const service = await OracleService.create(config);
  const url = await service.start();
  inProcess.set(new URL(url).origin, service);
  return { service, url };
}

/**
 * The in-process services by origin: the tests' requests to them go through fastify's `inject` (the routes,
 * schemas and error handler, no socket). The services still listen, because peers relay and ask each other to
 * sign over HTTP; a closed service's origin goes back to the network (its port may be reused).
 */
const inProcess = new Map<string, OracleService>();

async function request(url: string, method: "GET" | "POST", body?: unknown): Promise<{ status: number; text: string }> {
  const { origin, pathname, search } = new URL(url);
  const payload = body === undefined || typeof body === "string" ? body : JSON.stringify(body);
  const service = inProcess.get(origin);
  if (service?.app.server.listening) {
    const reply = await service.app.inject({
      method,
      url: pathname + search,
      headers: payload === undefined ? {} : { "content-type": "application/json" },
      payload,
    });
    return { status: reply.statusCode, text: reply.body };
  }
  const headers = payload === undefined ? undefined : { "content-type": "application/json" };
  const response = await fetch(url, { method, headers, body: payload });
  return { status: response.status, text: await response.text() };
}

export async function postJson(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const { status, text } = await request(url, "POST", body);
  return { status, json: JSON.parse(text) };
}

export async function getJson(url: string): Promise<any> {
  const { status, text } = await request(url, "GET");
  if (status < 200 || status >= 300) throw new Error(`${url}: ${status} ${text}`);
  return JSON.parse(text);
}

export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Every item of a paged list (F4): follows `next` from `url` and concatenates the list named `list` of each
 * page, checking each page holds at most `limit` items when one is given.
 */
export async function getAllPages(url: string, list: string, limit?: number): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams();
    if (limit !== undefined) query.set("limit", String(limit));
    if (cursor !== null) query.set("cursor", cursor);
    const page = await getJson(`${url}${query.size ? `?${query}` : ""}`);
    if (limit !== undefined && page[list].length > limit) throw new Error(`${url}: a page over the limit`);
    out.push(...page[list]);
    cursor = page.next;
  } while (cursor !== null);
  return out;
}

/** A POST /sign body signed by committee key `key` (an index into COMMITTEE_KEYS), issued now unless told. */
export async function signedSignRequest(
  rewards: RewardsManager,
  key: number,
  request: { epoch: number; batchIndex: number; entries: string; issuedAt?: number },
) {
  const [, name, version, chainId, verifyingContract] = await rewards.eip712Domain();
  const domain = { name, version, chainId: Number(chainId), verifyingContract: verifyingContract as Hex };
  return signSignRequest(privateKeyToAccount(COMMITTEE_KEYS[key] as Hex), domain, {
    ...request,
    entries: request.entries as Hex,
    issuedAt: request.issuedAt ?? Date.now(),
  });
}
