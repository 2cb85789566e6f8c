/**
 * What every task shares: the address book, signers and keys from the environment, input parsing, and
 * turning reverts into readable messages. Every user error becomes a HardhatPluginError: Hardhat prints its
 * message and exits non-zero, with no stack trace on any machine (see cliErrors.ts) unless --show-stack-traces.
 */
import { HardhatPluginError } from "hardhat/plugins";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import type { BaseContract, Interface, Signer, TypedDataDomain } from "ethers";

import {
  type AddressBook,
  type ContractName,
  addressBookPath,
  contractEntry,
  readAddressBook,
} from "../../offchain/common/addressBook";
import { KeystoreError, keyFromKeystore } from "../../offchain/common/keystore";
import { ADDRESSES_DIR, requiredConfirmations } from "../deploy/deployProtocol";

export const PLUGIN = "edge";

export function fail(message: string): never {
  throw new HardhatPluginError(PLUGIN, message);
}

/** The address book given by --addresses, EDGE_ADDRESSES, or the one of the connected chain. */
export async function loadBook(hre: HardhatRuntimeEnvironment, file?: string): Promise<AddressBook> {
  const chainId = Number((await hre.ethers.provider.getNetwork()).chainId);
  const path = file ?? process.env.EDGE_ADDRESSES ?? addressBookPath(ADDRESSES_DIR, chainId);
  let book: AddressBook;
  try {
    book = readAddressBook(path);
  } catch (error) {
    return fail((error as Error).message);
  }
  if (book.chainId !== chainId) fail(`${path} is for chain ${book.chainId}, but the network is chain ${chainId}`);
  return book;
}

export async function contractAt<T extends BaseContract>(
  hre: HardhatRuntimeEnvironment,
  book: AddressBook,
  name: ContractName,
  signer?: Signer,
): Promise<T> {
  let address: string;
  try {
    address = contractEntry(book, name).address;
  } catch (error) {
    return fail((error as Error).message);
  }
  if ((await hre.ethers.provider.getCode(address)) === "0x") fail(`no ${name} contract at ${address} on this network`);
  return (await hre.ethers.getContractAt(name, address, signer)) as unknown as T;
}

/** The account that signs transactions: the network's first account (EDGE_PRIVATE_KEYS on --network rpc). */
export async function sender(hre: HardhatRuntimeEnvironment): Promise<Signer> {
  const signers = await hre.ethers.getSigners();
  if (signers.length === 0) fail("no account to send from: set EDGE_PRIVATE_KEYS (comma-separated private keys)");
  return signers[0];
}

const PRIVATE_KEY = /^0x[0-9a-fA-F]{64}$/;

/**
 * A wallet from a private key held in an environment variable (never a command-line argument), or in the JSON
 * keystore named by `<variable>_KEYSTORE` (password in `<variable>_KEYSTORE_PASSWORD` or `…_PASSWORD_FILE`).
 */
export function walletFromEnv(hre: HardhatRuntimeEnvironment, variable: string) {
  let key = process.env[variable];
  try {
    key ||= keyFromKeystore(process.env, `${variable}_KEYSTORE`);
  } catch (error) {
    if (error instanceof KeystoreError) fail(error.message);
    throw error;
  }
  if (!key) fail(`set ${variable} to the device's private key (0x followed by 64 hex digits), or ${variable}_KEYSTORE`);
  if (!PRIVATE_KEY.test(key)) fail(`${variable} is not a private key (0x followed by 64 hex digits)`);
  return new hre.ethers.Wallet(key, hre.ethers.provider);
}

export function parseAddress(hre: HardhatRuntimeEnvironment, value: string, what: string): string {
  if (!hre.ethers.isAddress(value)) fail(`${what} "${value}" is not an address`);
  return hre.ethers.getAddress(value);
}

/** Token amounts are given in whole tokens with up to 18 decimals ("1000", "0.5"). */
export function parseTokens(hre: HardhatRuntimeEnvironment, value: string, what = "amount"): bigint {
  if (!/^\d+(\.\d{1,18})?$/.test(value)) fail(`${what} "${value}" is not a token amount (like 1000 or 0.5)`);
  const amount = hre.ethers.parseUnits(value, 18);
  if (amount === 0n) fail(`${what} must be positive`);
  return amount;
}

export function parseId(value: string, what = "stake id"): bigint {
  if (!/^\d+$/.test(value) || BigInt(value) === 0n) fail(`${what} "${value}" is not a positive integer`);
  return BigInt(value);
}

export const STAKE_TYPES = ["host", "gateway", "stargate"] as const;

export function parseStakeType(value: string): number {
  const index = STAKE_TYPES.indexOf(value.toLowerCase() as (typeof STAKE_TYPES)[number]);
  if (index < 0) fail(`stake type "${value}" is not one of ${STAKE_TYPES.join(", ")}`);
  return index;
}

export const STATUS_NAMES = ["unassigned", "assigned", "unlocking", "unlocked", "released"] as const;

export function formatTokens(hre: HardhatRuntimeEnvironment, amount: bigint): string {
  return `${hre.ethers.formatUnits(amount, 18)} EDGE`;
}

/** Runs a transaction; a revert becomes a readable error naming the custom error and its arguments. */
export async function send<T>(
  what: string,
  interfaces: Interface[],
  run: () => Promise<{ wait(confirms?: number): Promise<T | null> }>,
): Promise<T> {
  let confirms: number;
  try {
    confirms = requiredConfirmations(process.env);
  } catch (error) {
    fail((error as Error).message);
  }
  try {
    const receipt = await (await run()).wait(confirms);
    if (!receipt) fail(`${what}: no receipt`);
    return receipt;
  } catch (error) {
    if (error instanceof HardhatPluginError) throw error;
    fail(`${what} failed: ${describeError(error, interfaces)}`);
  }
}

/** "StakeNotOwner(stakeId=1, caller=0x…, owner=0x…)" for a custom error, else the provider's message. */
export function describeError(error: unknown, interfaces: Interface[]): string {
  const data = findRevertData(error);
  if (data) {
    for (const iface of interfaces) {
      const parsed = iface.parseError(data);
      if (parsed) {
        const args = parsed.fragment.inputs.map((input, i) => `${input.name}=${String(parsed.args[i])}`);
        return `${parsed.name}(${args.join(", ")})`;
      }
    }
    return `reverted with unknown data ${data}`;
  }
  const e = error as { shortMessage?: string; message?: string };
  return e.shortMessage ?? e.message ?? String(error);
}

function findRevertData(error: unknown): string | undefined {
  let current = error as { data?: unknown; error?: unknown; info?: { error?: unknown } } | undefined;
  for (let depth = 0; current && depth < 5; depth++) {
    if (typeof current.data === "string" && current.data.startsWith("0x") && current.data.length >= 10) {
      return current.data;
    }
    current = (current.error ?? current.info?.error) as typeof current;
  }
  return undefined;
}

export async function eip712Domain(contract: BaseContract): Promise<TypedDataDomain> {
  const [, name, version, chainId, verifyingContract] = await contract.getFunction("eip712Domain")();
  return { name, version, chainId, verifyingContract };
}
