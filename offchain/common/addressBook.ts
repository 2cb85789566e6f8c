/**
 * The address book: where each contract of a deployment lives and the block it was deployed in (log readers
 * start there). One JSON file per chain id, written by the deploy task, read by tasks, daemons and services.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { errorClass } from "./errors";
import { ADDRESS_PATTERN } from "./protocol/patterns";

export const CONTRACT_NAMES = [
  "EdgeToken",
  "TokenMigration",
  "StakeManager",
  "RewardsManager",
  "PaymentVault",
  "TimelockController",
  "ConfigRegistry",
] as const;
export type ContractName = (typeof CONTRACT_NAMES)[number];

export interface ContractEntry {
  address: string;
  blockNumber: number;
}

export interface AddressBook {
  chainId: number;
  contracts: Partial<Record<ContractName, ContractEntry>>;
}

export const AddressBookError = errorClass("AddressBookError", "ADDRESS_BOOK_INVALID");
export type AddressBookError = InstanceType<typeof AddressBookError>;

/** Validates an address book read from JSON, with a message that names the bad field. */
export function parseAddressBook(raw: unknown, source: string): AddressBook {
  const fail = (why: string): never => {
    throw new AddressBookError(`${source}: ${why}`);
  };
  if (typeof raw !== "object" || raw === null) fail("not a JSON object");
  const book = raw as Record<string, unknown>;
  if (!Number.isSafeInteger(book.chainId) || (book.chainId as number) <= 0) fail("chainId must be a positive integer");
  if (typeof book.contracts !== "object" || book.contracts === null) fail("contracts must be an object");
  const contracts: AddressBook["contracts"] = {};
  for (const [name, entry] of Object.entries(book.contracts as Record<string, unknown>)) {
    if (!(CONTRACT_NAMES as readonly string[]).includes(name)) fail(`unknown contract ${name}`);
    const e = entry as Record<string, unknown>;
    if (typeof e?.address !== "string" || !ADDRESS_PATTERN.test(e.address)) fail(`${name}.address is not an address`);
    if (!Number.isSafeInteger(e.blockNumber) || (e.blockNumber as number) < 0) fail(`${name}.blockNumber is invalid`);
    contracts[name as ContractName] = { address: e.address as string, blockNumber: e.blockNumber as number };
  }
  return { chainId: book.chainId as number, contracts };
}

export function addressBookPath(directory: string, chainId: number): string {
  return join(directory, `${chainId}.json`);
}

export function readAddressBook(file: string): AddressBook {
  if (!existsSync(file)) throw new AddressBookError(`${file}: no address book (deploy first, or pass its path)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new AddressBookError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  return parseAddressBook(raw, file);
}

export function writeAddressBook(file: string, book: AddressBook): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(book, null, 2) + "\n");
}

/** The entry of `name`, or a clear error when this deployment does not have it. */
export function contractEntry(book: AddressBook, name: ContractName): ContractEntry {
  const entry = book.contracts[name];
  if (!entry) throw new AddressBookError(`the address book of chain ${book.chainId} has no ${name}`);
  return entry;
}
