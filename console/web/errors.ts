/**
 * Contract reverts in words. Every custom error of the four contracts (and the OpenZeppelin ones they raise) is
 * decoded with the contracts' ABIs and turned into a sentence with its arguments filled in, following
 * docs/errors.md. Wallet refusals and RPC failures get a sentence too. No DOM: unit-tested in Node.
 */
import { type Abi, type Hex, decodeErrorResult, toFunctionSelector } from "viem";

import {
  edgeTokenAbi,
  paymentVaultAbi,
  rewardsManagerAbi,
  stakeManagerAbi,
} from "../../offchain/common/generated/abis";
import { formatBps, formatTime, formatTokens, stakeTypeName, statusName } from "./format";

/** Every error of the deployed contracts, once per selector. */
type AbiError = Extract<Abi[number], { type: "error" }>;

export const CONTRACT_ERRORS_ABI: Abi = (() => {
  const seen = new Set<string>();
  const errors: AbiError[] = [];
  for (const abi of [stakeManagerAbi, rewardsManagerAbi, paymentVaultAbi, edgeTokenAbi] as readonly Abi[]) {
    for (const item of abi) {
      if (item.type !== "error") continue;
      const signature = `${item.name}(${item.inputs.map((i) => i.type).join(",")})`;
      if (seen.has(signature)) continue;
      seen.add(signature);
      errors.push(item);
    }
  }
  return errors;
})();

type Args = readonly unknown[];
const id = (v: unknown) => String(v);
const tokens = (v: unknown) => formatTokens(v as bigint);
const time = (v: unknown) => formatTime(v as bigint);
const signerOrMalformed = (v: unknown) =>
  /^0x0{40}$/i.test(String(v)) ? "a malformed signature" : `the key of ${String(v)}`;

/** Error name -> the sentence a wallet user reads. */
export const ERROR_SENTENCES: Record<string, (a: Args) => string> = {
  // StakeManager
  StakeNotFound: ([stakeId]) => `Stake ${id(stakeId)} does not exist.`,
  StakeNotOwner: ([stakeId, caller, owner]) =>
    `Only the owner of stake ${id(stakeId)} (${id(owner)}) can do this; your wallet is ${id(caller)}.`,
  StakeNotOwnerOrDevice: ([stakeId, caller]) =>
    `Only the owner of stake ${id(stakeId)} or its device key can unassign the device; ${id(caller)} is neither.`,
  StakeZeroAmount: () => "The amount must be more than 0.",
  StakeBelowMinimum: ([stakeType, amount, minimum]) =>
    `${tokens(amount)} is below the ${stakeTypeName(stakeType as number)} minimum of ${tokens(minimum)}: stake at least the minimum.`,
  StakeNotActive: ([stakeId, status]) =>
    `Stake ${id(stakeId)} is ${statusName(status as number)}: only an active stake (assigned or unassigned) can do this. Cancel the unstake first, or use a new stake.`,
  StakeNotUnlocking: ([stakeId, status]) =>
    `Stake ${id(stakeId)} is ${statusName(status as number)}, not unlocking: request unstake first.`,
  StakeStillLocked: ([stakeId, unlockAt]) =>
    `Stake ${id(stakeId)} is still locked until ${time(unlockAt)}. Wait until then, or use express release (for a fee).`,
  StakeAlreadyUnlocked: ([stakeId, unlockAt]) =>
    `Stake ${id(stakeId)} unlocked at ${time(unlockAt)}: release it normally, with no fee.`,
  StakeHasNoDevice: ([stakeId]) => `Stake ${id(stakeId)} has no device to unassign.`,
  StakeHistoryFull: ([stakeId]) => `Stake ${id(stakeId)} cannot record more amount changes: open a new stake.`,
  DeviceZeroAddress: () => "The consent names the zero address as its device.",
  DeviceAlreadyAssigned: ([device, stakeId]) =>
    `Device ${id(device)} is already assigned to stake ${id(stakeId)}: unassign it there, or unstake that stake first.`,
  DeviceConsentExpired: ([device, deadline]) =>
    `The consent of device ${id(device)} expired at ${time(deadline)}: ask the device operator for a new one.`,
  DeviceConsentInvalid: ([device, signer]) =>
    `The consent is not device ${id(device)}'s for your wallet, its current nonce and this network (it was signed with ${signerOrMalformed(signer)}): ask the operator to sign a new consent for your address.`,
  SlashExceedsStake: ([stakeId, amount, staked]) =>
    `A slash of ${tokens(amount)} exceeds stake ${id(stakeId)}'s ${tokens(staked)}.`,
  SlashRateLimited: ([slasher, amount, available]) =>
    `Slasher ${id(slasher)} may slash only ${tokens(available)} now, less than ${tokens(amount)}.`,
  SlashReleasedStake: ([stakeId]) => `Stake ${id(stakeId)} was released: nothing is left to slash.`,
  NotRewardsManager: ([caller]) => `Only the RewardsManager can compound, not ${id(caller)}.`,
  MinimumStakeOutOfBounds: ([stakeType, minimum, lowest, highest]) =>
    `A ${stakeTypeName(stakeType as number)} minimum of ${tokens(minimum)} is outside ${tokens(lowest)} .. ${tokens(highest)}.`,
  UnbondingPeriodOutOfBounds: ([, period, lowest, highest]) =>
    `An unbonding period of ${id(period)} s is outside ${id(lowest)} .. ${id(highest)} s.`,
  MinUnbondingPeriodOutOfBounds: ([floor, lowest, highest]) =>
    `A floor of unbonding periods of ${id(floor)} s is outside ${id(lowest)} .. ${id(highest)} s.`,
  ExpressReleaseFeeOutOfBounds: ([feeBps, highest]) =>
    `An express release fee of ${formatBps(feeBps as bigint)} is above the bound of ${formatBps(highest as bigint)}.`,
  SlashLimitOutOfBounds: () => "The slash limit is out of bounds.",
  ZeroAddress: () => "An address was the zero address: give a real one.",
  // RewardsManager
  EpochNotClosed: ([epoch, current]) => `Epoch ${id(epoch)} has not ended yet (the current epoch is ${id(current)}).`,
  EpochExpired: ([epoch, oldest]) =>
    `Epoch ${id(epoch)} can no longer be posted: only epochs from ${id(oldest)} on (the 128 before the current one) can.`,
  BatchAlreadyPosted: ([epoch, batch]) => `Batch ${id(batch)} of epoch ${id(epoch)} was posted already.`,
  EntriesMalformed: ([length]) => `The score entries are malformed (${id(length)} bytes).`,
  NotEnoughSignatures: ([count, threshold]) => `${id(count)} committee signature(s), ${id(threshold)} needed.`,
  SignerNotInCommittee: ([signer]) => `${id(signer)} is not in the current oracle committee.`,
  DuplicateSigner: ([signer]) => `${id(signer)} signed twice.`,
  PoolInsufficient: ([needed, available]) =>
    `The reward pool holds ${tokens(available)} available, less than the ${tokens(needed)} needed.`,
  NotStakeOwner: ([stakeId, caller, owner]) =>
    `Only the owner of stake ${id(stakeId)} (${id(owner)}) can claim its yield; your wallet is ${id(caller)}.`,
  NothingAccrued: ([stakeId]) => `Stake ${id(stakeId)} has no accrued yield yet: wait for the next epoch's scores.`,
  CommitteeInvalid: ([size, threshold]) => `A committee of ${id(size)} with threshold ${id(threshold)} is invalid.`,
  CommitteeMemberInvalid: ([member]) => `Committee member ${id(member)} is zero or repeated.`,
  YieldParamsOutOfBounds: () => "A yield parameter is above its bound.",
  EpochDurationOutOfBounds: ([duration]) => `An epoch of ${id(duration)} s is outside 1 s .. 30 days.`,
  ZeroAmount: () => "The amount must be more than 0.",
  // PaymentVault
  PaymentZeroAmount: () => "The amount must be more than 0.",
  PaymentZeroAddress: () => "An address was the zero address: give a real one.",
  PaymentInsufficientBalance: ([, amount, balance]) =>
    `${tokens(amount)} is more than the prepaid balance of ${tokens(balance)}.`,
  ReferrerAlreadySet: ([, referrer]) => `Your referrer is already set, to ${id(referrer)}: it can be set once.`,
  SelfReferral: () => "You cannot name yourself as your referrer.",
  NoPendingWithdrawal: () => "There is no pending withdrawal: request one first.",
  WithdrawalNotYetExecutable: ([, executableAt]) =>
    `The withdrawal can be executed from ${time(executableAt)}, when its notice period ends.`,
  WithdrawalExpired: ([, expiresAt]) =>
    `The withdrawal could be executed before ${time(expiresAt)} only: request it again (a new notice period applies).`,
  WithdrawalClaimedByDebt: ([, amount, withdrawable, outstanding]) =>
    `${tokens(amount)} is more than the ${tokens(withdrawable)} you can withdraw: outstanding debt of ${tokens(outstanding)} claims the rest of the balance.`,
  MinWithdrawalNoticeOutOfBounds: ([minimum]) =>
    `A withdrawal notice floor of ${id(minimum)} s is outside 1 s .. 30 days.`,
  PeriodOutOfBounds: ([period, maximum]) => `Period ${id(period)} is past the last one, ${id(maximum)}.`,
  BillingRateLimited: ([, amount, available]) =>
    `Billing ${tokens(amount)} is above the biller's rate limit: ${tokens(available)} can be billed now.`,
  BillingLimitOutOfBounds: () => "A billing limit is outside its bounds.",
  NoOutstandingDebt: () => "There is no outstanding debt to pay.",
  NoReferralCredit: () => "There is no referral credit to claim yet.",
  ParamsOutOfBounds: () => "A payment parameter is out of bounds.",
  // OpenZeppelin
  EnforcedPause: () =>
    "The contract is paused by the network's operators: this action is stopped for now (releases, claims and executable withdrawals still work).",
  ExpectedPause: () => "The contract is not paused.",
  AccessControlUnauthorizedAccount: ([account]) => `${id(account)} does not hold the role this action needs.`,
  AccessControlBadConfirmation: () => "Renouncing a role must be confirmed by the account itself.",
  AccessControlEnforcedDefaultAdminDelay: ([schedule]) =>
    `The admin transfer can be accepted only after its delay, from ${time(schedule)}.`,
  AccessControlEnforcedDefaultAdminRules: () => "The admin role changes only through the two-step admin transfer.",
  AccessControlInvalidDefaultAdmin: ([account]) => `${id(account)} is not the pending admin.`,
  CheckpointUnorderedInsertion: () => "A history entry was out of order (a contract bug: please report it).",
  SafeCastOverflowedUintDowncast: ([bits, value]) => `The value ${id(value)} does not fit ${id(bits)} bits.`,
  InvalidShortString: () => "A name is too long.",
  StringTooLong: () => "A name is too long.",
  ReentrancyGuardReentrantCall: () => "A reentrant call was refused.",
  SafeERC20FailedOperation: ([token]) => `The token transfer of ${id(token)} failed.`,
  ERC20InsufficientBalance: ([, balance, needed]) =>
    `Your wallet holds ${tokens(balance)}, less than the ${tokens(needed)} needed.`,
  ERC20InsufficientAllowance: ([, allowance, needed]) =>
    `The contract may spend ${tokens(allowance)} of your tokens, less than ${tokens(needed)}: sign a new permit.`,
  ERC2612ExpiredSignature: ([deadline]) => `The permit signature expired at ${time(deadline)}: try again.`,
  ERC2612InvalidSigner: ([signer, owner]) => `The permit was signed by ${id(signer)}, not by the owner ${id(owner)}.`,
  InvalidAccountNonce: ([account, nonce]) =>
    `The permit used a stale nonce for ${id(account)} (current ${id(nonce)}): try again.`,
};

export interface DecodedRevert {
  name: string;
  args: readonly unknown[];
  sentence: string;
}

/** Decodes revert data of the contracts into its name, arguments and sentence; undefined for unknown data. */
export function decodeRevert(data: Hex): DecodedRevert | undefined {
  let decoded;
  try {
    decoded = decodeErrorResult({ abi: CONTRACT_ERRORS_ABI, data });
  } catch {
    return undefined;
  }
  const args = (decoded.args ?? []) as readonly unknown[];
  const sentence = ERROR_SENTENCES[decoded.errorName]?.(args) ?? `${decoded.errorName}(${args.map(String).join(", ")})`;
  return { name: decoded.errorName, args, sentence };
}

const HEX_DATA = /^0x[0-9a-fA-F]{8,}$/;

/** The revert data somewhere in an error from viem, a wallet or a JSON-RPC node (several shapes exist). */
export function findRevertData(error: unknown): Hex | undefined {
  const queue: unknown[] = [error];
  const seen = new Set<unknown>();
  while (queue.length > 0) {
    const current = queue.shift() as Record<string, unknown> | undefined;
    if (!current || typeof current !== "object" || seen.has(current)) continue;
    seen.add(current);
    for (const key of ["raw", "data"]) {
      const value = current[key];
      if (typeof value === "string" && HEX_DATA.test(value)) return value as Hex;
      if (value && typeof value === "object") queue.push(value);
    }
    for (const key of ["cause", "error", "info"]) if (current[key]) queue.push(current[key]);
  }
  return undefined;
}

/** The sentence for any failure of a wallet request or transaction. */
export function describeFailure(error: unknown): { sentence: string; errorName?: string } {
  const data = findRevertData(error);
  if (data) {
    const decoded = decodeRevert(data);
    if (decoded) return { sentence: decoded.sentence, errorName: decoded.name };
    if (data.length >= 10 && data.slice(0, 10) !== toFunctionSelector("Error(string)")) {
      return { sentence: `The contract refused with an unknown error (${data.slice(0, 10)}).` };
    }
  }
  const codes: number[] = [];
  const messages: string[] = [];
  let current = error as Record<string, unknown> | undefined;
  for (let depth = 0; current && typeof current === "object" && depth < 8; depth++) {
    if (typeof current.code === "number") codes.push(current.code);
    if (typeof current.shortMessage === "string") messages.push(current.shortMessage);
    else if (typeof current.message === "string") messages.push(current.message);
    current = (current.cause ?? current.error) as Record<string, unknown> | undefined;
  }
  if (codes.includes(4001)) return { sentence: "You rejected the request in your wallet." };
  if (codes.includes(4100)) return { sentence: "The wallet has not authorised this site: connect again." };
  const message = messages[0]?.split("\n")[0] ?? String(error);
  return { sentence: `The request failed: ${message}` };
}
