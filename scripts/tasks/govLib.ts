/**
 * What the gov:* tasks share: the governed contracts of the address book, and running a governance call either
 * through the timelock (schedule now, execute after its delay) or directly with the sender's role (D37).
 */
import { randomBytes } from "node:crypto";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import type { Contract, Interface, Signer } from "ethers";

import type { AddressBook } from "../../offchain/common/addressBook";
import type { TimelockController } from "../../typechain";
import { type GovernedName, plain } from "./govParams";
import { contractAt, describeError, fail, loadBook, send, sender } from "./lib";

export const PROTOCOL_CONTRACTS = ["StakeManager", "RewardsManager", "PaymentVault"] as const;
export type ProtocolName = (typeof PROTOCOL_CONTRACTS)[number];
const OPERATION_ID = /^0x[0-9a-fA-F]{64}$/;
const STATES = ["unset", "waiting", "ready", "done"] as const;

export interface Gov {
  hre: HardhatRuntimeEnvironment;
  book: AddressBook;
  signer: Signer;
  from: string;
  contracts: Partial<Record<GovernedName, Contract>>;
  timelock?: TimelockController;
  interfaces: Interface[];
}

export async function connectGov(hre: HardhatRuntimeEnvironment, addresses?: string): Promise<Gov> {
  const book = await loadBook(hre, addresses);
  const signer = await sender(hre);
  const contracts: Gov["contracts"] = {};
  for (const name of PROTOCOL_CONTRACTS) contracts[name] = await contractAt<Contract>(hre, book, name, signer);
  if (book.contracts.TimelockController) {
    contracts.TimelockController = await contractAt<Contract>(hre, book, "TimelockController", signer);
  }
  // Its publisher and delta-signer roles are granted and revoked with gov:roles (D52).
  if (book.contracts.ConfigRegistry) {
    contracts.ConfigRegistry = await contractAt<Contract>(hre, book, "ConfigRegistry", signer);
  }
  const timelock = contracts.TimelockController as unknown as TimelockController | undefined;
  const interfaces = Object.values(contracts).map((c) => c.interface);
  return { hre, book, signer, from: await signer.getAddress(), contracts, timelock, interfaces };
}

export function governed(gov: Gov, name: GovernedName): Contract {
  const contract = gov.contracts[name];
  if (!contract) fail(`the address book has no ${name}: this deployment has no timelock`);
  return contract;
}

/** Parses a comma-separated list of protocol contract names ("all": the three). */
export function parseContracts(value: string): ProtocolName[] {
  if (value === "all") return [...PROTOCOL_CONTRACTS];
  const names = value.split(",").map((n) => n.trim());
  for (const name of names) {
    if (!(PROTOCOL_CONTRACTS as readonly string[]).includes(name)) {
      fail(`contract "${name}" is not one of ${PROTOCOL_CONTRACTS.join(", ")} (or "all")`);
    }
  }
  return names as ProtocolName[];
}

export interface GovCall {
  contract: GovernedName;
  fn: string;
  args: unknown[];
  /** The role the call needs (its name, or its hash); "timelock": only the timelock itself may call it. */
  role: string;
  /** Emergency actions (pause) use the sender's own role first; everything else goes through the timelock. */
  preferDirect?: boolean;
  /** What to run to execute the proposal, e.g. "gov:params". */
  task: string;
}

export type GovOutcome = { done: "direct"; hash: string } | { done: "proposed"; id: string; readyAt: number };

/**
 * Through the timelock when it holds the role (or the call is the timelock's own), directly when the sender holds
 * it; a call the contract would refuse is refused here, before anything is scheduled, with its custom error.
 */
export async function govern(gov: Gov, call: GovCall): Promise<GovOutcome> {
  const contract = governed(gov, call.contract);
  const target = await contract.getAddress();
  const data = contract.interface.encodeFunctionData(call.fn, call.args);
  const timelockAddress = gov.timelock ? await gov.timelock.getAddress() : undefined;
  const role =
    call.role === "timelock"
      ? undefined
      : /^0x[0-9a-fA-F]{64}$/.test(call.role)
        ? call.role
        : await contract.getFunction(call.role)();
  const holds = async (account: string) => role !== undefined && (await contract.getFunction("hasRole")(role, account));
  const direct = await holds(gov.from);
  const viaTimelock = timelockAddress !== undefined && (call.role === "timelock" || (await holds(timelockAddress)));
  if (direct && (call.preferDirect || !viaTimelock)) {
    const receipt = await send(`${call.contract}.${call.fn}`, gov.interfaces, () =>
      gov.signer.sendTransaction({ to: target, data }),
    );
    return { done: "direct", hash: receipt.hash };
  }
  if (!viaTimelock || !gov.timelock) {
    const holder = timelockAddress ? "nor does the timelock" : "and the address book has no timelock";
    return fail(`${gov.from} does not hold ${call.role} on ${call.contract}, ${holder}`);
  }
  const timelock = gov.timelock;
  if (!(await timelock.hasRole(await timelock.PROPOSER_ROLE(), gov.from))) {
    fail(`${gov.from} is not a proposer of the timelock ${timelockAddress}`);
  }
  try {
    await gov.hre.ethers.provider.call({ from: timelockAddress, to: target, data });
  } catch (error) {
    fail(`${call.contract}.${call.fn} would fail when executed: ${describeError(error, gov.interfaces)}`);
  }
  const salt = `0x${randomBytes(32).toString("hex")}`;
  const delay = await timelock.getMinDelay();
  const zero = gov.hre.ethers.ZeroHash;
  const receipt = await send("schedule", gov.interfaces, () => timelock.schedule(target, 0n, data, zero, salt, delay));
  const id = await timelock.hashOperation(target, 0n, data, zero, salt);
  const readyAt = Number(await timelock.getTimestamp(id));
  console.log(`proposed ${describeCall(gov, target, data)} in ${receipt.hash}`);
  console.log(`  operation ${id}`);
  console.log(`  executable from ${iso(readyAt)} (delay ${delay} s): npx hardhat ${call.task} --execute ${id}`);
  return { done: "proposed", id, readyAt };
}

export interface Operation {
  id: string;
  state: (typeof STATES)[number];
  readyAt: number;
  calls: Array<{ target: string; value: bigint; data: string }>;
  predecessor: string;
  salt: string;
}

/** Operations scheduled on the timelock (all, or the one `id`), from its CallScheduled and CallSalt events. */
export async function operations(gov: Gov, id?: string): Promise<Operation[]> {
  const timelock = gov.timelock!;
  const fromBlock = gov.book.contracts.TimelockController!.blockNumber;
  const scheduled = await timelock.queryFilter(timelock.filters.CallScheduled(id), fromBlock);
  const salts = await timelock.queryFilter(timelock.filters.CallSalt(id), fromBlock);
  const byId = new Map<string, Operation>();
  for (const event of scheduled) {
    const { id: opId, index, target, value, data, predecessor } = event.args;
    let op = byId.get(opId);
    if (!op) {
      const salt = salts.find((s) => s.args.id === opId)?.args.salt ?? gov.hre.ethers.ZeroHash;
      op = { id: opId, state: "unset", readyAt: 0, calls: [], predecessor, salt };
      byId.set(opId, op);
    }
    op.calls[Number(index)] = { target, value, data };
  }
  for (const op of byId.values()) {
    op.state = STATES[Number(await timelock.getOperationState(op.id))];
    op.readyAt = Number(await timelock.getTimestamp(op.id));
  }
  return [...byId.values()];
}

/** Executes a scheduled operation once its delay has passed; says clearly why not otherwise. */
export async function executeOperation(gov: Gov, id: string): Promise<string> {
  if (!OPERATION_ID.test(id)) fail(`--execute "${id}" is not an operation id (0x followed by 64 hex digits)`);
  const timelock = gov.timelock;
  if (!timelock) fail("the address book has no TimelockController: nothing was scheduled, changes apply directly");
  const [op] = await operations(gov, id);
  if (!op) fail(`no operation ${id} was scheduled on the timelock ${await timelock.getAddress()}`);
  if (op.state === "done") fail(`operation ${id} was already executed`);
  if (op.state === "unset") fail(`operation ${id} was cancelled`);
  const now = Number((await gov.hre.ethers.provider.getBlock("latest"))!.timestamp);
  if (op.state === "waiting") {
    fail(`operation ${id} is not ready: it can be executed from ${iso(op.readyAt)}, in ${op.readyAt - now} s`);
  }
  const [targets, values, payloads] = [op.calls.map((c) => c.target), op.calls.map((c) => c.value), op.calls.map((c) => c.data)]; // prettier-ignore
  const receipt = await send("execute", gov.interfaces, () =>
    op.calls.length === 1
      ? timelock.execute(targets[0], values[0], payloads[0], op.predecessor, op.salt)
      : timelock.executeBatch(targets, values, payloads, op.predecessor, op.salt),
  );
  for (const call of op.calls) console.log(`executed ${describeCall(gov, call.target, call.data)}`);
  console.log(`  in ${receipt.hash}`);
  return receipt.hash;
}

/** Cancels a pending operation (the timelock's cancellers: its proposers). */
export async function cancelOperation(gov: Gov, id: string): Promise<void> {
  if (!OPERATION_ID.test(id)) fail(`--cancel "${id}" is not an operation id (0x followed by 64 hex digits)`);
  const timelock = gov.timelock;
  if (!timelock) fail("the address book has no TimelockController: nothing to cancel");
  const [op] = await operations(gov, id);
  if (!op || op.state === "unset" || op.state === "done") fail(`operation ${id} is not pending`);
  const receipt = await send("cancel", gov.interfaces, () => timelock.cancel(id));
  console.log(`cancelled operation ${id} in ${receipt.hash}`);
}

/** "StakeManager.setMinimumStake(0, 200000000000000000000)", role hashes shown by name. */
export function describeCall(gov: Gov, target: string, data: string): string {
  for (const [name, contract] of Object.entries(gov.contracts)) {
    if (contract.target.toString().toLowerCase() !== target.toLowerCase()) continue;
    const parsed = contract.interface.parseTransaction({ data });
    if (!parsed) break;
    const roles = new Map<string, string>();
    for (const fragment of contract.interface.fragments) {
      const fn = fragment as { type: string; name?: string };
      if (fn.type !== "function" || !/_ROLE$/.test(fn.name!)) continue;
      roles.set(fn.name === "DEFAULT_ADMIN_ROLE" ? gov.hre.ethers.ZeroHash : gov.hre.ethers.id(fn.name!), fn.name!);
    }
    const show = (value: unknown): string => {
      if (typeof value === "string") return roles.get(value.toLowerCase()) ?? value;
      if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
      if (typeof value === "object" && value !== null) {
        return `{${Object.entries(value)
          .map(([k, v]) => `${k}: ${show(v)}`)
          .join(", ")}}`;
      }
      return String(value);
    };
    const shown = parsed.args.map((a: unknown) => show(plain(a)));
    return `${name}.${parsed.name}(${shown.join(", ")})`;
  }
  return `call ${data.slice(0, 10)} on ${target}`;
}

export function iso(timestamp: number): string {
  return new Date(timestamp * 1000).toISOString();
}
