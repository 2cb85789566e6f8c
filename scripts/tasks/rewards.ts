/**
 * rewards:* and oracle:* tasks: the reward pool, yields, and the oracle committee's score posting.
 *
 *   npx hardhat rewards:fund     --amount 100000
 *   npx hardhat rewards:claim    --stake 1 [--to 0x…]
 *   npx hardhat rewards:compound --stake 1
 *   npx hardhat rewards:status   [--stake 1] [--json]
 *   npx hardhat oracle:committee [--members 0x…,0x… --threshold 2]
 *   npx hardhat oracle:post      --scores scores.json [--epoch N] [--batch-size 200]   (keys in EDGE_ORACLE_KEYS)
 */
import { readFileSync } from "node:fs";
import { task, types } from "hardhat/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types";

import type { EdgeToken, RewardsManager, StakeManager } from "../../typechain";
import { toBatches } from "../../offchain/common/batches";
import { type ScoreEntry, SCORE_BATCH_TYPES, entriesHash, packEntries } from "../../offchain/common/scoreBatch";
import {
  STAKE_TYPES,
  contractAt,
  eip712Domain,
  fail,
  formatTokens,
  loadBook,
  parseAddress,
  parseId,
  parseTokens,
  send,
  sender,
} from "./lib";

const ORACLE_KEYS_ENV = "EDGE_ORACLE_KEYS";

async function connect(hre: HardhatRuntimeEnvironment, addresses?: string) {
  const book = await loadBook(hre, addresses);
  const signer = await sender(hre);
  const rewards = await contractAt<RewardsManager>(hre, book, "RewardsManager", signer);
  const staking = await contractAt<StakeManager>(hre, book, "StakeManager", signer);
  const token = await contractAt<EdgeToken>(hre, book, "EdgeToken", signer);
  return { book, signer, rewards, staking, token, interfaces: [rewards.interface, staking.interface, token.interface] };
}

task("rewards:fund", "Adds tokens to the reward pool")
  .addParam("amount", "amount in whole tokens")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { amount: string; addresses?: string }, hre) => {
    const amount = parseTokens(hre, args.amount);
    const { signer, rewards, token, interfaces } = await connect(hre, args.addresses);
    const from = await signer.getAddress();
    const balance = await token.balanceOf(from);
    if (balance < amount) fail(`${from} holds ${formatTokens(hre, balance)}, less than ${args.amount}`);
    const spender = await rewards.getAddress();
    if ((await token.allowance(from, spender)) < amount) {
      await send("approve", interfaces, () => token.approve(spender, amount));
    }
    const receipt = await send("fund", interfaces, () => rewards.fund(amount));
    console.log(`funded the pool with ${formatTokens(hre, amount)} in ${receipt.hash}`);
    console.log(`available now: ${formatTokens(hre, await rewards.available())}`);
  });

task("rewards:claim", "Claims a stake's accrued yield")
  .addParam("stake", "stake id")
  .addOptionalParam("to", "recipient (default: the sender)")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { stake: string; to?: string; addresses?: string }, hre) => {
    const stakeId = parseId(args.stake);
    const to = args.to === undefined ? undefined : parseAddress(hre, args.to, "--to");
    const { signer, rewards, interfaces } = await connect(hre, args.addresses);
    const recipient = to ?? (await signer.getAddress());
    const accrued = await rewards.accrued(stakeId);
    if (accrued === 0n) fail(`stake ${stakeId} has no accrued yield`);
    const receipt = await send("claim", interfaces, () => rewards.claim(stakeId, recipient));
    console.log(`claimed ${formatTokens(hre, accrued)} of stake ${stakeId} to ${recipient} in ${receipt.hash}`);
  });

task("rewards:compound", "Adds a stake's accrued yield to the stake")
  .addParam("stake", "stake id")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { stake: string; addresses?: string }, hre) => {
    const stakeId = parseId(args.stake);
    const { rewards, staking, interfaces } = await connect(hre, args.addresses);
    const accrued = await rewards.accrued(stakeId);
    if (accrued === 0n) fail(`stake ${stakeId} has no accrued yield`);
    const receipt = await send("compound", interfaces, () => rewards.compound(stakeId));
    const amount = (await staking.getStake(stakeId)).amount;
    console.log(
      `compounded ${formatTokens(hre, accrued)} into stake ${stakeId} (now ${formatTokens(hre, amount)}) in ${receipt.hash}`,
    );
  });

task("rewards:status", "Shows the pool, the epochs and the committee, or one stake's earnings")
  .addOptionalParam("stake", "stake id")
  .addFlag("json", "print JSON")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { stake?: string; json: boolean; addresses?: string }, hre) => {
    const stakeId = args.stake === undefined ? undefined : parseId(args.stake);
    const { rewards, staking, token } = await connect(hre, args.addresses);
    const current = await rewards.currentEpoch();
    const [start, end] = await rewards.epochWindow(current);
    const [members, threshold, version] = await rewards.committee();
    const view: Record<string, unknown> = {
      currentEpoch: current.toString(),
      epochWindow: [Number(start), Number(end)],
      epochDuration: Number(await rewards.epochDuration()),
      pool: {
        balance: (await token.balanceOf(await rewards.getAddress())).toString(),
        reserved: (await rewards.reserved()).toString(),
        available: (await rewards.available()).toString(),
      },
      committee: { members, threshold: Number(threshold), version: Number(version) },
    };
    if (stakeId !== undefined) {
      if (stakeId > (await staking.stakeCount())) fail(`stake ${stakeId} does not exist`);
      const stake = await staking.getStake(stakeId);
      const [scored, lastEpoch] = await rewards.lastScoredEpoch(stakeId);
      const now = BigInt((await hre.ethers.provider.getBlock("latest"))!.timestamp);
      const activeTime = stake.activeSince === 0n ? 0n : now - stake.activeSince;
      view.stake = {
        stakeId: stakeId.toString(),
        type: STAKE_TYPES[Number(stake.stakeType)],
        accrued: (await rewards.accrued(stakeId)).toString(),
        lastScoredEpoch: scored ? lastEpoch.toString() : null,
        aprBpsAtAverageScore: Number(await rewards.aprBps(stake.stakeType, activeTime, 10_000n)),
      };
    }
    if (args.json) {
      console.log(JSON.stringify(view, null, 2));
      return;
    }
    const pool = view.pool as Record<string, string>;
    console.log(
      `epoch ${current} (${new Date(Number(start) * 1000).toISOString()} .. ${new Date(Number(end) * 1000).toISOString()})`,
    );
    console.log(
      `pool: ${formatTokens(hre, BigInt(pool.balance))}, reserved ${formatTokens(hre, BigInt(pool.reserved))}, available ${formatTokens(hre, BigInt(pool.available))}`,
    );
    console.log(`committee v${version}: ${threshold} of ${members.join(", ")}`);
    if (view.stake) {
      const s = view.stake as Record<string, string | number | null>;
      console.log(
        `stake ${s.stakeId} (${s.type}): accrued ${formatTokens(hre, BigInt(s.accrued as string))}, last scored epoch ${s.lastScoredEpoch ?? "-"}, APR at the average score ${(Number(s.aprBpsAtAverageScore) / 100).toFixed(2)}%`,
      );
    }
  });

task("oracle:committee", "Shows the oracle committee, or replaces it (ORACLE_ADMIN_ROLE)")
  .addOptionalParam("members", "comma-separated member addresses")
  .addOptionalParam("threshold", "signatures needed per batch", undefined, types.int)
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { members?: string; threshold?: number; addresses?: string }, hre) => {
    if ((args.members === undefined) !== (args.threshold === undefined))
      fail("give both --members and --threshold, or neither");
    const members = args.members?.split(",").map((m, i) => parseAddress(hre, m.trim(), `member ${i + 1}`));
    const { signer, rewards, interfaces } = await connect(hre, args.addresses);
    if (members) {
      const threshold = args.threshold!;
      if (!(threshold >= 1 && threshold <= members.length)) fail(`--threshold must be between 1 and ${members.length}`);
      const from = await signer.getAddress();
      if (!(await rewards.hasRole(await rewards.ORACLE_ADMIN_ROLE(), from))) {
        fail(`${from} does not hold ORACLE_ADMIN_ROLE on RewardsManager`);
      }
      const receipt = await send("setCommittee", interfaces, () => rewards.setCommittee(members, threshold));
      console.log(`committee replaced in ${receipt.hash}; signatures for earlier versions no longer count`);
    }
    const [current, threshold, version] = await rewards.committee();
    console.log(`committee v${version}: ${threshold} of ${current.length}`);
    for (const member of current) console.log(`  ${member}`);
  });

interface ScoresFile {
  epoch?: number | string;
  scores: Array<{ stakeId?: number | string; device?: string; score: number | string }>;
}

function readScores(path: string): ScoresFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    return fail(`cannot read scores from ${path}: ${(error as Error).message}`);
  }
  const file = parsed as ScoresFile;
  if (typeof file !== "object" || file === null || !Array.isArray(file.scores)) {
    fail(`${path}: expected {"epoch": N, "scores": [{"stakeId" or "device", "score"}]}`);
  }
  return file;
}

task(
  "oracle:post",
  `Posts an epoch's scores in signed batches (committee keys in ${ORACLE_KEYS_ENV}); re-running is safe`,
)
  .addParam("scores", 'JSON file: {"epoch": N, "scores": [{"device" or "stakeId", "score"}]} (the oracle CLI output)')
  .addOptionalParam("epoch", "the epoch (default: the file's)")
  .addOptionalParam("batchSize", "entries per batch", 200, types.int)
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { scores: string; epoch?: string; batchSize: number; addresses?: string }, hre) => {
    const file = readScores(args.scores);
    const epochText = args.epoch ?? (file.epoch === undefined ? undefined : String(file.epoch));
    if (epochText === undefined || !/^\d+$/.test(epochText)) fail('give --epoch, or an integer "epoch" in the file');
    const epoch = BigInt(epochText);
    if (file.epoch !== undefined && BigInt(file.epoch) !== epoch)
      fail(`--epoch ${epoch} differs from the file's epoch ${file.epoch}`);
    if (!(args.batchSize >= 1 && args.batchSize <= 1000)) fail("--batch-size must be between 1 and 1000");
    const keys = (process.env[ORACLE_KEYS_ENV] ?? "")
      .split(",")
      .map((k) => k.trim())
      .filter(Boolean);
    if (keys.length === 0) fail(`set ${ORACLE_KEYS_ENV} to the committee members' private keys (comma-separated)`);
    if (keys.some((k) => !/^0x[0-9a-fA-F]{64}$/.test(k)))
      fail(`${ORACLE_KEYS_ENV} holds something that is not a private key`);
    const wallets = keys.map((k) => new hre.ethers.Wallet(k));

    const { rewards, staking, interfaces } = await connect(hre, args.addresses);
    const [, threshold] = await rewards.committee();
    const signers = [];
    for (const wallet of wallets) {
      if (await rewards.isCommitteeMember(wallet.address)) signers.push(wallet);
      else console.log(`skipping ${wallet.address}: not in the current committee`);
    }
    if (BigInt(signers.length) < threshold)
      fail(`${signers.length} committee key(s) given, the threshold is ${threshold}`);
    const [, end] = await rewards.epochWindow(epoch);
    const now = BigInt((await hre.ethers.provider.getBlock("latest"))!.timestamp);
    if (end > now) fail(`epoch ${epoch} is not closed yet (it ends at ${new Date(Number(end) * 1000).toISOString()})`);

    // Devices are resolved to the stakes they are bound to now; unbound devices are reported and left out.
    const byStake = new Map<bigint, bigint>();
    for (const [i, entry] of file.scores.entries()) {
      const score = BigInt(entry.score);
      if (score < 0n || score > 65_535n) fail(`scores[${i}].score ${entry.score} is out of range`);
      let stakeId: bigint;
      if (entry.stakeId !== undefined) stakeId = BigInt(entry.stakeId);
      else if (entry.device !== undefined) {
        stakeId = await staking.stakeOfDevice(parseAddress(hre, entry.device, `scores[${i}].device`));
        if (stakeId === 0n) {
          console.log(`skipping ${entry.device}: not bound to a stake`);
          continue;
        }
      } else return fail(`scores[${i}] has neither "stakeId" nor "device"`);
      byStake.set(stakeId, score);
    }
    const entries: ScoreEntry[] = [...byStake]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([stakeId, score]) => ({ stakeId, score }));
    if (entries.length === 0) fail("no entries to post");

    // Batches depend only on the entries and the batch size, so a re-run skips what was posted.
    const domain = await eip712Domain(rewards);
    const [, , version] = await rewards.committee();
    let posted = 0;
    let total = 0n;
    for (const [index, batch] of toBatches(entries, args.batchSize).entries()) {
      if (await rewards.isBatchPosted(epoch, index)) {
        console.log(`batch ${index}: already posted`);
        continue;
      }
      const packed = packEntries(batch);
      const message = { epoch, batchIndex: BigInt(index), entriesHash: entriesHash(packed), committeeVersion: version };
      const signatures = await Promise.all(
        signers.slice(0, Number(threshold)).map((w) => w.signTypedData(domain, SCORE_BATCH_TYPES, message)),
      );
      const receipt = await send(`batch ${index}`, interfaces, () =>
        rewards.postScores(epoch, index, packed, signatures),
      );
      const event = receipt.logs.map((l) => rewards.interface.parseLog(l)).find((l) => l?.name === "ScoresPosted");
      posted++;
      total += event!.args.totalYield;
      console.log(
        `batch ${index}: ${event!.args.accrued} of ${batch.length} entries accrued ${formatTokens(hre, event!.args.totalYield)} in ${receipt.hash}`,
      );
    }
    console.log(`epoch ${epoch}: ${posted} batch(es) posted, ${formatTokens(hre, total)} accrued`);
  });
