/**
 * stake:* tasks: what wallet users and operators do with stakes, against any network.
 *
 *   npx hardhat stake:create  --type host --amount 1000 [--assign]      (EDGE_DEVICE_KEY with --assign)
 *   npx hardhat stake:consent --owner 0x…                                (EDGE_DEVICE_KEY; run by the device operator)
 *   npx hardhat stake:revoke-consent                                     (EDGE_DEVICE_KEY sends it; needs gas)
 *   npx hardhat stake:assign  --stake 1 [--consent consent.json]          (else signs with EDGE_DEVICE_KEY)
 *   npx hardhat stake:unassign --stake 1
 *   npx hardhat stake:unstake --stake 1 [--cancel]
 *   npx hardhat stake:release --stake 1 [--express]
 *   npx hardhat stake:status  --stake 1 | --device 0x… | --owner 0x…  [--json]
 *
 * Add `--network rpc` with EDGE_RPC_URL and EDGE_PRIVATE_KEYS for a real network; `--addresses` picks an
 * address book other than scripts/deploy/addresses/<chainId>.json.
 */
import { readFileSync } from "node:fs";
import { task, types } from "hardhat/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import type { Signer } from "ethers";

import type { EdgeToken, StakeManager } from "../../typechain";
import { DEVICE_CONSENT_TYPES, type SignedDeviceConsent, parseSignedConsent } from "../../offchain/common/consent";
import { PERMIT_TYPES } from "../../offchain/common/permit";
import {
  STAKE_TYPES,
  STATUS_NAMES,
  contractAt,
  eip712Domain,
  fail,
  formatTokens,
  loadBook,
  parseAddress,
  parseId,
  parseStakeType,
  parseTokens,
  send,
  sender,
  walletFromEnv,
} from "./lib";

const DEVICE_KEY_ENV = "EDGE_DEVICE_KEY";

async function connect(hre: HardhatRuntimeEnvironment, addresses?: string) {
  const book = await loadBook(hre, addresses);
  const signer = await sender(hre);
  const staking = await contractAt<StakeManager>(hre, book, "StakeManager", signer);
  const token = await contractAt<EdgeToken>(hre, book, "EdgeToken", signer);
  const interfaces = [staking.interface, token.interface];
  return { book, signer, staking, token, interfaces };
}

/** Signs the device consent for `owner` with the device key. */
async function signDeviceConsent(
  staking: StakeManager,
  device: Signer,
  owner: string,
  validMinutes: number,
): Promise<SignedDeviceConsent> {
  const deviceAddress = await device.getAddress();
  const nonce = await staking.deviceNonce(deviceAddress);
  const latest = await staking.runner!.provider!.getBlock("latest");
  const deadline = BigInt(latest!.timestamp) + BigInt(validMinutes * 60);
  const signature = await device.signTypedData(await eip712Domain(staking), DEVICE_CONSENT_TYPES, {
    device: deviceAddress,
    owner,
    nonce,
    deadline,
  });
  return { device: deviceAddress, owner, nonce: nonce.toString(), deadline: deadline.toString(), signature };
}

function readConsent(value: string): SignedDeviceConsent {
  let text = value.trim();
  if (!text.startsWith("{")) {
    try {
      text = readFileSync(value, "utf8");
    } catch {
      fail(`--consent "${value}" is neither a consent JSON object nor a readable file`);
    }
  }
  try {
    return parseSignedConsent(JSON.parse(text));
  } catch (error) {
    return fail(`invalid consent: ${(error as Error).message}`);
  }
}

async function permitFor(
  hre: HardhatRuntimeEnvironment,
  token: EdgeToken,
  owner: Signer,
  spender: string,
  value: bigint,
) {
  const ownerAddress = await owner.getAddress();
  const latest = await hre.ethers.provider.getBlock("latest");
  const deadline = BigInt(latest!.timestamp) + 3600n;
  const signature = hre.ethers.Signature.from(
    await owner.signTypedData(await eip712Domain(token), PERMIT_TYPES, {
      owner: ownerAddress,
      spender,
      value,
      nonce: await token.nonces(ownerAddress),
      deadline,
    }),
  );
  return { deadline, v: signature.v, r: signature.r, s: signature.s };
}

async function printStake(hre: HardhatRuntimeEnvironment, staking: StakeManager, stakeId: bigint, json: boolean) {
  const s = await staking.getStake(stakeId);
  const minimum = (await staking.typeParams(s.stakeType)).minimumStake;
  const admitted = s.device !== hre.ethers.ZeroAddress && (await staking.isAdmitted(s.device));
  const view = {
    stakeId: s.stakeId.toString(),
    owner: s.owner,
    type: STAKE_TYPES[Number(s.stakeType)],
    status: STATUS_NAMES[Number(s.status)],
    amount: s.amount.toString(),
    device: s.device === hre.ethers.ZeroAddress ? null : s.device,
    admitted,
    minimumMet: s.minimumMet,
    minimumStake: minimum.toString(),
    createdAt: Number(s.createdAt),
    activeSince: Number(s.activeSince) || null,
    unlockAt: Number(s.unlockAt) || null,
    releasedAt: Number(s.releasedAt) || null,
  };
  if (json) return view;
  const time = (t: number | null) => (t ? new Date(t * 1000).toISOString() : "-");
  console.log(`stake ${view.stakeId}: ${view.type}, ${view.status}${admitted ? ", device admitted" : ""}`);
  console.log(`  owner        ${view.owner}`);
  console.log(
    `  amount       ${formatTokens(hre, s.amount)} (minimum ${formatTokens(hre, minimum)}: ${s.minimumMet ? "met" : "NOT met"})`,
  );
  console.log(`  device       ${view.device ?? "-"}`);
  console.log(`  active since ${time(view.activeSince)}`);
  console.log(`  unlocks at   ${time(view.unlockAt)}`);
  if (view.releasedAt) console.log(`  released at  ${time(view.releasedAt)}`);
  return view;
}

task("stake:create", "Stakes tokens for a device (permit by default: one transaction)")
  .addParam("type", `stake type: ${STAKE_TYPES.join(" | ")}`)
  .addParam("amount", "amount in whole tokens, e.g. 1000 or 0.5")
  .addFlag("assign", `also bind the device whose key is in ${DEVICE_KEY_ENV}`)
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { type: string; amount: string; assign: boolean; addresses?: string }, hre) => {
    const stakeType = parseStakeType(args.type);
    const amount = parseTokens(hre, args.amount);
    const device = args.assign ? walletFromEnv(hre, DEVICE_KEY_ENV) : undefined;
    const { signer, staking, token, interfaces } = await connect(hre, args.addresses);
    const owner = await signer.getAddress();
    const minimum = (await staking.typeParams(stakeType)).minimumStake;
    if (amount < minimum) fail(`${args.amount} is below the ${args.type} minimum of ${formatTokens(hre, minimum)}`);
    const balance = await token.balanceOf(owner);
    if (balance < amount) fail(`${owner} holds ${formatTokens(hre, balance)}, less than ${args.amount}`);
    const spender = await staking.getAddress();
    const needsPermit = (await token.allowance(owner, spender)) < amount;
    const permit = needsPermit ? await permitFor(hre, token, signer, spender, amount) : undefined;
    const consent = device ? await signDeviceConsent(staking, device, owner, 60) : undefined;
    const receipt = await send("stake", interfaces, () => {
      if (consent && permit) return staking.stakeAndAssignWithPermit(stakeType, amount, consent, permit);
      if (consent) return staking.stakeAndAssign(stakeType, amount, consent);
      if (permit) return staking.stakeWithPermit(stakeType, amount, permit);
      return staking.stake(stakeType, amount);
    });
    const created = receipt.logs
      .map((log) => staking.interface.parseLog(log))
      .find((log) => log?.name === "StakeCreated");
    if (!created) fail("the transaction did not create a stake");
    console.log(`created stake ${created.args.stakeId} in ${receipt.hash}`);
    await printStake(hre, staking, created.args.stakeId, false);
  });

task("stake:consent", `Prints the device's consent to be bound to a stake of --owner (key in ${DEVICE_KEY_ENV})`)
  .addParam("owner", "the stake owner's address")
  .addOptionalParam("minutes", "how long the consent stays valid", 60, types.int)
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { owner: string; minutes: number; addresses?: string }, hre) => {
    const owner = parseAddress(hre, args.owner, "--owner");
    if (!(args.minutes > 0 && args.minutes <= 7 * 24 * 60)) fail("--minutes must be between 1 and 10080 (a week)");
    const device = walletFromEnv(hre, DEVICE_KEY_ENV);
    const book = await loadBook(hre, args.addresses);
    const staking = await contractAt<StakeManager>(hre, book, "StakeManager");
    console.log(JSON.stringify(await signDeviceConsent(staking, device, owner, args.minutes), null, 2));
  });

task(
  "stake:revoke-consent",
  `Revokes the device's consents not used yet: moves its nonce on (sent by the key in ${DEVICE_KEY_ENV})`,
)
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { addresses?: string }, hre) => {
    const device = walletFromEnv(hre, DEVICE_KEY_ENV);
    const book = await loadBook(hre, args.addresses);
    const staking = await contractAt<StakeManager>(hre, book, "StakeManager", device);
    const receipt = await send("revokeConsent", [staking.interface], () => staking.revokeConsent());
    const revoked = receipt.logs
      .map((log) => staking.interface.parseLog(log))
      .find((log) => log?.name === "ConsentRevoked");
    if (!revoked) fail("the transaction revoked nothing");
    const nonce: bigint = revoked.args.nonce;
    console.log(`consents of device ${device.address} for nonce ${nonce} revoked in ${receipt.hash}`);
    console.log(`its next consent needs nonce ${nonce + 1n}`);
  });

task("stake:assign", "Binds a device to a stake, with the device's consent")
  .addParam("stake", "stake id")
  .addOptionalParam(
    "consent",
    `consent JSON or file (from stake:consent or edge-node); else signs with ${DEVICE_KEY_ENV}`,
  )
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { stake: string; consent?: string; addresses?: string }, hre) => {
    const stakeId = parseId(args.stake);
    const { signer, staking, interfaces } = await connect(hre, args.addresses);
    const owner = await signer.getAddress();
    const consent = args.consent
      ? readConsent(args.consent)
      : await signDeviceConsent(staking, walletFromEnv(hre, DEVICE_KEY_ENV), owner, 60);
    if (consent.owner.toLowerCase() !== owner.toLowerCase()) {
      fail(`the consent is for owner ${consent.owner}, but transactions are sent by ${owner}`);
    }
    const receipt = await send("assignDevice", interfaces, () => staking.assignDevice(stakeId, consent));
    console.log(`device ${consent.device} assigned to stake ${stakeId} in ${receipt.hash}`);
    await printStake(hre, staking, stakeId, false);
  });

task("stake:unassign", "Unbinds the stake's device")
  .addParam("stake", "stake id")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { stake: string; addresses?: string }, hre) => {
    const stakeId = parseId(args.stake);
    const { staking, interfaces } = await connect(hre, args.addresses);
    const receipt = await send("unassignDevice", interfaces, () => staking.unassignDevice(stakeId));
    console.log(`device unassigned from stake ${stakeId} in ${receipt.hash}`);
  });

task("stake:unstake", "Requests unstaking (the device stops being admitted at once), or cancels the request")
  .addParam("stake", "stake id")
  .addFlag("cancel", "withdraw a pending unstake request instead")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { stake: string; cancel: boolean; addresses?: string }, hre) => {
    const stakeId = parseId(args.stake);
    const { staking, interfaces } = await connect(hre, args.addresses);
    if (args.cancel) {
      const receipt = await send("cancelUnstake", interfaces, () => staking.cancelUnstake(stakeId));
      console.log(`unstake request of stake ${stakeId} cancelled in ${receipt.hash}`);
    } else {
      const receipt = await send("requestUnstake", interfaces, () => staking.requestUnstake(stakeId));
      console.log(`unstake requested for stake ${stakeId} in ${receipt.hash}`);
    }
    await printStake(hre, staking, stakeId, false);
  });

task("stake:release", "Returns an unlocked stake's tokens, or (with --express) an unbonding one's less the fee")
  .addParam("stake", "stake id")
  .addFlag("express", "release during unbonding and pay the express release fee")
  .addOptionalParam("addresses", "address book file")
  .setAction(async (args: { stake: string; express: boolean; addresses?: string }, hre) => {
    const stakeId = parseId(args.stake);
    const { staking, interfaces } = await connect(hre, args.addresses);
    if (args.express) {
      const amount = (await staking.getStake(stakeId)).amount;
      const fee = (amount * (await staking.expressReleaseFeeBps())) / 10_000n;
      console.log(`express release: fee ${formatTokens(hre, fee)}, you receive ${formatTokens(hre, amount - fee)}`);
    }
    const receipt = await send(args.express ? "expressRelease" : "release", interfaces, () =>
      args.express ? staking.expressRelease(stakeId) : staking.release(stakeId),
    );
    const released = receipt.logs
      .map((log) => staking.interface.parseLog(log))
      .find((log) => log?.name === "StakeReleased");
    console.log(`stake ${stakeId} released in ${receipt.hash}: ${formatTokens(hre, released!.args.amount)} returned`);
  });

task("stake:status", "Shows stakes by id, device or owner")
  .addOptionalParam("stake", "stake id")
  .addOptionalParam("device", "device address")
  .addOptionalParam("owner", "owner address (lists every stake it created)")
  .addFlag("json", "print JSON")
  .addOptionalParam("addresses", "address book file")
  .setAction(
    async (args: { stake?: string; device?: string; owner?: string; json: boolean; addresses?: string }, hre) => {
      const given = [args.stake, args.device, args.owner].filter((v) => v !== undefined).length;
      if (given !== 1) fail("give exactly one of --stake, --device or --owner");
      const stakeId = args.stake !== undefined ? parseId(args.stake) : undefined;
      const device = args.device !== undefined ? parseAddress(hre, args.device, "--device") : undefined;
      const owner = args.owner !== undefined ? parseAddress(hre, args.owner, "--owner") : undefined;
      const book = await loadBook(hre, args.addresses);
      const staking = await contractAt<StakeManager>(hre, book, "StakeManager");
      let ids: bigint[] = [];
      if (stakeId !== undefined) {
        if (stakeId > (await staking.stakeCount())) fail(`stake ${stakeId} does not exist`);
        ids = [stakeId];
      } else if (device !== undefined) {
        const bound = await staking.stakeOfDevice(device);
        if (bound === 0n) {
          if (args.json) console.log(JSON.stringify({ device, stakeId: null, admitted: false }));
          else console.log(`device ${device} is not assigned to any stake: not admitted`);
          return;
        }
        ids = [bound];
      } else {
        const logs = await staking.queryFilter(
          staking.filters.StakeCreated(undefined, owner),
          book.contracts.StakeManager!.blockNumber,
        );
        ids = logs.map((log) => log.args.stakeId);
        if (ids.length === 0 && !args.json) console.log(`${owner} has no stakes`);
      }
      const views = [];
      for (const id of ids) views.push(await printStake(hre, staking, id, args.json));
      if (args.json) console.log(JSON.stringify(args.owner ? views : views[0], null, 2));
    },
  );
