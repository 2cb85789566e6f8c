import { ethers } from "hardhat";
import type { Signature, Signer, TypedDataDomain, Wallet } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";

import type {
  EdgeToken,
  LegacyPermitTokenMock,
  LegacyTokenMock,
  PaymentVault,
  RewardsManager,
  StakeManager,
  TokenMigration,
} from "../../typechain";
import type { AddressBook, ContractName } from "../../offchain/common/addressBook";
import { DEVICE_CONSENT_TYPES } from "../../offchain/common/consent";
import { PERMIT_TYPES } from "../../offchain/common/permit";
import { type ScoreEntry, SCORE_BATCH_TYPES, packEntries } from "../../offchain/common/scoreBatch";
import { DEFAULT_YIELD_PARAMS } from "../../offchain/common/yield";
import { DAY, DEFAULTS, StakeType, TOKEN_SUPPLY } from "./constants";

/** The typed contracts of a deployment's address book (those it has; PaymentVault and RewardsManager may be absent). */
export async function bookContracts(book: AddressBook) {
  const at = async <T>(name: ContractName): Promise<T> =>
    (await ethers.getContractAt(name, book.contracts[name]!.address)) as unknown as T;
  return {
    token: await at<EdgeToken>("EdgeToken"),
    staking: await at<StakeManager>("StakeManager"),
    rewards: book.contracts.RewardsManager ? await at<RewardsManager>("RewardsManager") : undefined,
    vault: book.contracts.PaymentVault ? await at<PaymentVault>("PaymentVault") : undefined,
  };
}

export interface ProtocolFixture {
  token: EdgeToken;
  staking: StakeManager;
  admin: HardhatEthersSigner;
  treasury: HardhatEthersSigner;
  slasher: HardhatEthersSigner;
  pauser: HardhatEthersSigner;
  parameterAdmin: HardhatEthersSigner;
  alice: HardhatEthersSigner;
  bob: HardhatEthersSigner;
  carol: HardhatEthersSigner;
  others: HardhatEthersSigner[];
}

/** EdgeToken + StakeManager with the protocol defaults; alice, bob and carol hold 10M tokens each. */
export async function deployStakingFixture(): Promise<ProtocolFixture> {
  const [admin, treasury, slasher, pauser, parameterAdmin, alice, bob, carol, ...others] = await ethers.getSigners();
  const token = await ethers.deployContract("EdgeToken", [treasury.address, TOKEN_SUPPLY]);
  const staking = await ethers.deployContract("StakeManager", [
    await token.getAddress(),
    admin.address,
    DEFAULTS.adminDelay,
    treasury.address,
    DEFAULTS.typeParams,
    DEFAULTS.expressReleaseFeeBps,
    DEFAULTS.slashWindow,
    DEFAULTS.slashCapacity,
    DEFAULTS.minUnbondingPeriod,
  ]);
  await staking.connect(admin).grantRole(await staking.SLASHER_ROLE(), slasher.address);
  await staking.connect(admin).grantRole(await staking.PAUSER_ROLE(), pauser.address);
  await staking.connect(admin).grantRole(await staking.PARAMETER_ADMIN_ROLE(), parameterAdmin.address);
  const grant = ethers.parseEther("10000000");
  for (const account of [alice, bob, carol]) {
    await token.connect(treasury).transfer(account.address, grant);
  }
  return { token, staking, admin, treasury, slasher, pauser, parameterAdmin, alice, bob, carol, others };
}

export interface MigrationFixture {
  token: EdgeToken;
  legacy: LegacyTokenMock;
  legacyPermit: LegacyPermitTokenMock;
  lockingMigration: TokenMigration;
  burningMigration: TokenMigration;
  treasury: HardhatEthersSigner;
  alice: HardhatEthersSigner;
  bob: HardhatEthersSigner;
  deadline: bigint;
}

export const MIGRATION_RESERVE = ethers.parseEther("100000000");

/**
 * Two migrations out of one token: a 0-decimals legacy token (like the old EDG) locked at 1:1 whole tokens,
 * and an 18-decimals legacy token with permit, burned at 3 new tokens per 2 legacy ones.
 */
export async function deployMigrationFixture(): Promise<MigrationFixture> {
  const [, treasury, , , , alice, bob] = await ethers.getSigners();
  const token = await ethers.deployContract("EdgeToken", [treasury.address, TOKEN_SUPPLY]);
  const legacy = await ethers.deployContract("LegacyTokenMock", [0, alice.address, 1_000_000n]);
  const legacyPermit = await ethers.deployContract("LegacyPermitTokenMock", [
    18,
    alice.address,
    ethers.parseEther("1000000"),
  ]);
  const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
  const deadline = now + 90n * 24n * 3600n;
  const lockingMigration = await ethers.deployContract("TokenMigration", [
    await legacy.getAddress(),
    await token.getAddress(),
    treasury.address,
    deadline,
    1,
    1,
    false,
  ]);
  const burningMigration = await ethers.deployContract("TokenMigration", [
    await legacyPermit.getAddress(),
    await token.getAddress(),
    treasury.address,
    deadline,
    3,
    2,
    true,
  ]);
  await token.connect(treasury).transfer(await lockingMigration.getAddress(), MIGRATION_RESERVE);
  await token.connect(treasury).transfer(await burningMigration.getAddress(), MIGRATION_RESERVE);
  return { token, legacy, legacyPermit, lockingMigration, burningMigration, treasury, alice, bob, deadline };
}

export async function eip712Domain(contract: {
  eip712Domain(): Promise<[string, string, string, bigint, string, string, bigint[]]>;
}): Promise<TypedDataDomain> {
  const [, name, version, chainId, verifyingContract] = await contract.eip712Domain();
  return { name, version, chainId, verifyingContract };
}

/** An ERC-2612 permit signature from `owner` for `spender`. */
export async function signPermit(
  token: EdgeToken | LegacyPermitTokenMock,
  owner: Signer,
  spender: string,
  value: bigint,
  deadline: bigint,
): Promise<Signature> {
  const ownerAddress = await owner.getAddress();
  const nonce = await token.nonces(ownerAddress);
  const signature = await owner.signTypedData(await eip712Domain(token), PERMIT_TYPES, {
    owner: ownerAddress,
    spender,
    value,
    nonce,
    deadline,
  });
  return ethers.Signature.from(signature);
}

export interface ConsentOptions {
  nonce?: bigint;
  deadline?: bigint;
  domain?: Partial<TypedDataDomain>;
}

/** The device key's EIP-712 consent to be assigned to a stake of `owner`, as a DeviceConsent struct. */
export async function signConsent(
  staking: StakeManager,
  device: Signer,
  owner: string,
  options: ConsentOptions = {},
): Promise<{ device: string; deadline: bigint; signature: string }> {
  const deviceAddress = await device.getAddress();
  const nonce = options.nonce ?? (await staking.deviceNonce(deviceAddress));
  const deadline = options.deadline ?? (await latestTimestamp()) + 3600n;
  const domain = { ...(await eip712Domain(staking)), ...options.domain };
  const signature = await device.signTypedData(domain, DEVICE_CONSENT_TYPES, {
    device: deviceAddress,
    owner,
    nonce,
    deadline,
  });
  return { device: deviceAddress, deadline, signature };
}

export function permitStruct(signature: Signature, deadline: bigint) {
  return { deadline, v: signature.v, r: signature.r, s: signature.s };
}

export async function latestTimestamp(): Promise<bigint> {
  return BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
}

/** A fresh random device key connected to the Hardhat provider (funded when it must send transactions). */
export function newDevice() {
  return ethers.Wallet.createRandom().connect(ethers.provider);
}

export { StakeType };

// ------------------------------------------------------------------------------------------------ rewards

/** Deterministic oracle committee keys. */
export const COMMITTEE_KEYS = [1, 2, 3, 4].map((i) => ethers.zeroPadValue(ethers.toBeHex(0xc0de0000 + i), 32));

export function committeeWallets(): Wallet[] {
  return COMMITTEE_KEYS.map((key) => new ethers.Wallet(key));
}

export interface RewardsFixture extends ProtocolFixture {
  rewards: RewardsManager;
  committee: Wallet[];
  genesis: bigint;
  epochDuration: bigint;
}

export const POOL_FUNDING = ethers.parseEther("10000000");

/**
 * StakeManager + RewardsManager (committee of 3 with threshold 1, pool funded). Genesis is 100 seconds ahead,
 * so stakes created right after the fixture are active through epoch 0.
 */
export async function deployRewardsFixture(): Promise<RewardsFixture> {
  return deployRewards({ threshold: 1, epochDuration: DAY });
}

export async function deployRewards(options: { threshold: number; epochDuration: bigint }): Promise<RewardsFixture> {
  const base = await deployStakingFixture();
  const committee = committeeWallets().slice(0, 3);
  const genesis = (await latestTimestamp()) + 100n;
  const rewards = await ethers.deployContract("RewardsManager", [
    await base.staking.getAddress(),
    base.admin.address,
    DEFAULTS.adminDelay,
    genesis,
    options.epochDuration,
    committee.map((w) => w.address),
    options.threshold,
    DEFAULT_YIELD_PARAMS,
  ]);
  await base.staking.connect(base.admin).setRewardsManager(await rewards.getAddress());
  for (const role of [await rewards.ORACLE_ADMIN_ROLE(), await rewards.PARAMETER_ADMIN_ROLE()]) {
    await rewards.connect(base.admin).grantRole(role, base.parameterAdmin.address);
  }
  await rewards.connect(base.admin).grantRole(await rewards.PAUSER_ROLE(), base.pauser.address);
  await base.token.connect(base.treasury).approve(await rewards.getAddress(), POOL_FUNDING);
  await rewards.connect(base.treasury).fund(POOL_FUNDING);
  return { ...base, rewards, committee, genesis, epochDuration: options.epochDuration };
}

/** Signatures of `signers` over a score batch, for the contract's current committee version unless given. */
export async function signBatch(
  rewards: RewardsManager,
  signers: Wallet[],
  epoch: bigint,
  batchIndex: bigint,
  entries: ScoreEntry[],
  options: { version?: bigint; domain?: Partial<TypedDataDomain> } = {},
): Promise<{ packed: string; signatures: string[] }> {
  const packed = packEntries(entries);
  const version = options.version ?? (await rewards.committee()).version;
  const domain = { ...(await eip712Domain(rewards)), ...options.domain };
  const message = { epoch, batchIndex, entriesHash: ethers.keccak256(packed), committeeVersion: version };
  const signatures = await Promise.all(signers.map((s) => s.signTypedData(domain, SCORE_BATCH_TYPES, message)));
  return { packed, signatures };
}

/** Signs with the first `threshold` committee members and posts. */
export async function postBatch(
  f: RewardsFixture,
  epoch: bigint,
  entries: ScoreEntry[],
  options: { batchIndex?: bigint; signers?: Wallet[]; from?: Signer } = {},
) {
  const threshold = Number((await f.rewards.committee()).threshold);
  const { packed, signatures } = await signBatch(
    f.rewards,
    options.signers ?? f.committee.slice(0, threshold),
    epoch,
    options.batchIndex ?? 0n,
    entries,
  );
  return f.rewards.connect(options.from ?? f.treasury).postScores(epoch, options.batchIndex ?? 0n, packed, signatures);
}

// ------------------------------------------------------------------------------------------------ payments

export const PAYMENT_PARAMS = {
  referrerShareBps: 1000n,
  rewardPoolShareBps: 2000n,
  withdrawalNotice: 7n * DAY,
  freeBuffer: ethers.parseEther("5"),
  withdrawalWindow: 2n * DAY,
};

/** The vault's deployment-time limits in the fixture: a 1-hour notice floor, 10 million tokens billed a day. */
export const PAYMENT_LIMITS = {
  minWithdrawalNotice: 3600n,
  billingWindow: DAY,
  billingCapacity: ethers.parseEther("10000000"),
};

export interface PaymentsFixture extends ProtocolFixture {
  vault: PaymentVault;
  biller: HardhatEthersSigner;
  referrer: HardhatEthersSigner;
  rewardPool: HardhatEthersSigner;
}

/** EdgeToken + PaymentVault (default split, 7-day notice, 2-day window); alice, bob and carol approved the vault. */
export async function deployPaymentsFixture(): Promise<PaymentsFixture> {
  const base = await deployStakingFixture();
  const [biller, referrer, rewardPool] = base.others;
  const vault = await ethers.deployContract("PaymentVault", [
    await base.token.getAddress(),
    base.admin.address,
    DEFAULTS.adminDelay,
    base.treasury.address,
    rewardPool.address,
    PAYMENT_PARAMS,
    PAYMENT_LIMITS.minWithdrawalNotice,
    PAYMENT_LIMITS.billingWindow,
    PAYMENT_LIMITS.billingCapacity,
  ]);
  await vault.connect(base.admin).grantRole(await vault.BILLER_ROLE(), biller.address);
  await vault.connect(base.admin).grantRole(await vault.PARAMETER_ADMIN_ROLE(), base.parameterAdmin.address);
  await vault.connect(base.admin).grantRole(await vault.PAUSER_ROLE(), base.pauser.address);
  for (const account of [base.alice, base.bob, base.carol]) {
    await base.token.connect(account).approve(await vault.getAddress(), ethers.MaxUint256);
  }
  return { ...base, vault, biller, referrer, rewardPool };
}
