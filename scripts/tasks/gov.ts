/**
 * gov:* tasks: what the team does to govern the protocol, without writing code (docs/operations.md, D37).
 *
 *   npx hardhat gov:params [--json]                                    every parameter and the pending proposals
 *   npx hardhat gov:params --name staking.minimumStake.host --value 200 proposes (timelock) or applies the change
 *   npx hardhat gov:params --execute 0x<id> | --cancel 0x<id>         executes after the delay / cancels
 *   npx hardhat gov:pause [--contracts all|StakeManager,…]            pauses at once with the pauser role
 *   npx hardhat gov:unpause [--contracts …]
 *   npx hardhat gov:slash --stake 3 | --device 0x…  --amount 50 --reason "double-signed epoch 12"
 *   npx hardhat gov:roles [--contract StakeManager] [--json]          who holds each role
 *   npx hardhat gov:roles --contract PaymentVault --grant BILLER_ROLE --account 0x…   (or --revoke ROLE)
 *
 * With a TimelockController in the address book, changes of parameters and roles are scheduled through it and
 * executed after its delay; without one, they apply at once with the sender's role.
 */
import { task } from "hardhat/config";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import type { Contract, ContractTransactionReceipt } from "ethers";

import {
  PARAMETERS,
  findParameter,
  formatValue,
  parseValue,
  readParameter,
  sameValue,
  setterArguments,
} from "./govParams";
import {
  type Gov,
  type GovOutcome,
  PROTOCOL_CONTRACTS,
  cancelOperation,
  connectGov,
  describeCall,
  executeOperation,
  governed,
  govern,
  iso,
  operations,
  parseContracts,
} from "./govLib";
import type { GovernedName } from "./govParams";
import { fail, formatTokens, parseAddress, parseId, parseTokens, send } from "./lib";

const MAX_REASON = 200;

function report(outcome: GovOutcome, what: string): void {
  if (outcome.done === "direct") console.log(`${what} in ${outcome.hash}`);
}

async function showParameters(gov: Gov, json: boolean) {
  const rows = [];
  for (const row of PARAMETERS) {
    const contract = gov.contracts[row.contract];
    if (!contract) continue;
    const value = await readParameter(contract, row);
    rows.push({ name: row.name, contract: row.contract, value, shown: formatValue(row.unit, value), setter: row.setter ?? null }); // prettier-ignore
  }
  const pending = gov.timelock ? (await operations(gov)).filter((op) => op.state === "waiting" || op.state === "ready") : []; // prettier-ignore
  const proposals = pending.map((op) => ({
    id: op.id,
    state: op.state,
    readyAt: op.readyAt,
    calls: op.calls.map((c) => describeCall(gov, c.target, c.data)),
  }));
  const timelock = gov.timelock
    ? { address: await gov.timelock.getAddress(), minDelay: Number(await gov.timelock.getMinDelay()) }
    : null;
  if (json) {
    const text = JSON.stringify({ timelock, parameters: rows, pending: proposals }, (_k, v) =>
      typeof v === "bigint" ? v.toString() : v,
    );
    console.log(text);
    return;
  }
  console.log(timelock ? `timelock ${timelock.address}, delay ${timelock.minDelay} s` : "no timelock: changes apply at once"); // prettier-ignore
  const width = Math.max(...rows.map((r) => r.name.length));
  for (const r of rows) console.log(`  ${r.name.padEnd(width)}  ${r.shown}${r.setter ? "" : "  (fixed)"}`);
  for (const p of proposals) {
    console.log(`pending ${p.id} (${p.state === "ready" ? "ready now" : `from ${iso(p.readyAt)}`})`);
    for (const call of p.calls) console.log(`    ${call}`);
  }
}

task("gov:params", "Shows the protocol's parameters; proposes, executes or cancels a change")
  .addOptionalParam("name", "the parameter to change (gov:params lists them)")
  .addOptionalParam("value", "its new value: tokens (1000, 0.5), seconds (90, 5m, 7d), bps, address(es)")
  .addOptionalParam("execute", "the id of a proposal whose delay has passed")
  .addOptionalParam("cancel", "the id of a pending proposal to cancel")
  .addFlag("json", "print JSON")
  .addOptionalParam("addresses", "address book file")
  .setAction(
    async (
      args: { name?: string; value?: string; execute?: string; cancel?: string; json: boolean; addresses?: string },
      hre,
    ) => {
      // prettier-ignore
      const modes = [args.name !== undefined || args.value !== undefined, args.execute, args.cancel].filter(Boolean);
      if (modes.length > 1) fail("give --name and --value, or --execute, or --cancel, not several");
      if ((args.name === undefined) !== (args.value === undefined)) fail("--name and --value go together");
      const row = args.name !== undefined ? findParameter(args.name) : undefined;
      if (row && !row.setter) fail(`${row.name} is fixed at deployment; no setter changes it`);
      const value = row ? parseValue(row, args.value!) : undefined;
      const gov = await connectGov(hre, args.addresses);
      if (args.execute !== undefined) return void (await executeOperation(gov, args.execute));
      if (args.cancel !== undefined) return cancelOperation(gov, args.cancel);
      if (!row) return showParameters(gov, args.json);
      const contract = governed(gov, row.contract);
      const current = await readParameter(contract, row);
      if (sameValue(current, value)) fail(`${row.name} is already ${formatValue(row.unit, current)}`);
      const callArgs = await setterArguments(contract, row, value);
      const outcome = await govern(gov, {
        contract: row.contract,
        fn: row.setter!,
        args: callArgs,
        role: row.role ?? "PARAMETER_ADMIN_ROLE",
        task: "gov:params",
      });
      report(outcome, `${row.name}: ${formatValue(row.unit, current)} -> ${formatValue(row.unit, value)}`);
    },
  );

async function setPaused(hre: HardhatRuntimeEnvironment, paused: boolean, list: string, addresses?: string) {
  const names = parseContracts(list);
  const gov = await connectGov(hre, addresses);
  for (const name of names) {
    const contract = governed(gov, name);
    if ((await contract.getFunction("paused")()) === paused) {
      console.log(`${name} is already ${paused ? "paused" : "running"}`);
      continue;
    }
    const fn = paused ? "pause" : "unpause";
    const outcome = await govern(gov, { contract: name, fn, args: [], role: "PAUSER_ROLE", preferDirect: true, task: `gov:${fn}` }); // prettier-ignore
    report(outcome, `${name} ${paused ? "paused" : "unpaused"}`);
  }
}

task("gov:pause", "Pauses contracts at once (the sender's PAUSER_ROLE; pausing never blocks anyone's exit)")
  .addOptionalParam("contracts", `comma-separated: ${PROTOCOL_CONTRACTS.join(", ")}, or all`, "all")
  .addOptionalParam("addresses", "address book file")
  .setAction((args: { contracts: string; addresses?: string }, hre) => setPaused(hre, true, args.contracts, args.addresses)); // prettier-ignore

task("gov:unpause", "Unpauses contracts (the sender's PAUSER_ROLE)")
  .addOptionalParam("contracts", `comma-separated: ${PROTOCOL_CONTRACTS.join(", ")}, or all`, "all")
  .addOptionalParam("addresses", "address book file")
  .setAction((args: { contracts: string; addresses?: string }, hre) => setPaused(hre, false, args.contracts, args.addresses)); // prettier-ignore

task("gov:slash", "Slashes a stake (SLASHER_ROLE); the reason is recorded in the StakeSlashed event")
  .addOptionalParam("stake", "stake id")
  .addOptionalParam("device", "or the device whose stake to slash")
  .addParam("amount", "amount in whole tokens, e.g. 500 or 0.5")
  .addParam("reason", `why (recorded on chain, at most ${MAX_REASON} characters)`)
  .addOptionalParam("addresses", "address book file")
  .setAction(
    async (args: { stake?: string; device?: string; amount: string; reason: string; addresses?: string }, hre) => {
      // prettier-ignore
      if ((args.stake === undefined) === (args.device === undefined)) fail("give exactly one of --stake and --device");
      const amount = parseTokens(hre, args.amount);
      const reason = args.reason.trim();
      if (reason.length === 0) fail("--reason must say why (it is recorded on chain)");
      if (reason.length > MAX_REASON) fail(`--reason is ${reason.length} characters; at most ${MAX_REASON}`);
      const device = args.device !== undefined ? parseAddress(hre, args.device, "--device") : undefined;
      let stakeId = args.stake !== undefined ? parseId(args.stake) : 0n;
      const gov = await connectGov(hre, args.addresses);
      const staking = governed(gov, "StakeManager");
      if (device) {
        stakeId = await staking.getFunction("stakeOfDevice")(device);
        if (stakeId === 0n) fail(`device ${device} has no stake`);
      }
      if (stakeId > (await staking.getFunction("stakeCount")())) fail(`stake ${stakeId} does not exist`);
      const staked: bigint = (await staking.getFunction("getStake")(stakeId)).amount;
      if (amount > staked) fail(`${args.amount} is more than stake ${stakeId} holds (${formatTokens(hre, staked)})`);
      const slasher = await staking.getFunction("SLASHER_ROLE")();
      if (!(await staking.getFunction("hasRole")(slasher, gov.from))) fail(`${gov.from} does not hold SLASHER_ROLE`);
      const receipt = await send<ContractTransactionReceipt>("slash", gov.interfaces, () =>
        staking.getFunction("slash")(stakeId, amount, reason),
      );
      const event = receipt.logs.map((l) => staking.interface.parseLog(l)).find((l) => l?.name === "StakeSlashed");
      if (!event) fail("the transaction did not slash");
      console.log(`slashed ${formatTokens(hre, amount)} from stake ${stakeId} in ${receipt.hash}`);
      console.log(`  left ${formatTokens(hre, event.args.newAmount)}; reason recorded: "${event.args.reason}"`);
    },
  );

/** Roles of a contract: its *_ROLE constants, by name. */
async function rolesOf(contract: Contract): Promise<Map<string, string>> {
  const roles = new Map<string, string>();
  const names: string[] = [];
  contract.interface.forEachFunction((fn) => {
    if (/_ROLE$/.test(fn.name) && fn.inputs.length === 0) names.push(fn.name);
  });
  for (const name of names) roles.set(name, await contract.getFunction(name)());
  return roles;
}

/** Current holders of every role, from RoleGranted events checked with hasRole (the contracts do not enumerate). */
async function listRoles(gov: Gov, names: GovernedName[], json: boolean) {
  const out: Record<string, Record<string, string[]>> = {};
  for (const name of names) {
    const contract = governed(gov, name);
    const fromBlock = gov.book.contracts[name]!.blockNumber;
    const granted = await contract.queryFilter(contract.filters.RoleGranted(), fromBlock);
    out[name] = {};
    for (const [roleName, role] of await rolesOf(contract)) {
      const accounts = [...new Set(granted.filter((e) => "args" in e && e.args.role === role).map((e) => ("args" in e ? (e.args.account as string) : ""))),]; // prettier-ignore
      const holders = [];
      for (const account of accounts) if (await contract.getFunction("hasRole")(role, account)) holders.push(account);
      out[name][roleName] = holders;
    }
  }
  if (json) return console.log(JSON.stringify(out));
  for (const [name, roles] of Object.entries(out)) {
    console.log(name);
    for (const [role, holders] of Object.entries(roles))
      console.log(`  ${role.padEnd(22)} ${holders.join(", ") || "-"}`);
  }
}

task("gov:roles", "Lists who holds each role; grants or revokes one (through the timelock when it is the admin)")
  .addOptionalParam("contract", "StakeManager, RewardsManager, PaymentVault or TimelockController")
  .addOptionalParam("grant", "role to grant, e.g. PAUSER_ROLE")
  .addOptionalParam("revoke", "role to revoke")
  .addOptionalParam("account", "the account to grant the role to or revoke it from")
  .addOptionalParam("execute", "the id of a role change whose delay has passed")
  .addFlag("json", "print JSON")
  .addOptionalParam("addresses", "address book file")
  .setAction(
    async (
      args: {
        contract?: string;
        grant?: string;
        revoke?: string;
        account?: string;
        execute?: string;
        json: boolean;
        addresses?: string;
      },
      hre,
    ) => {
      // prettier-ignore
      const known = [...PROTOCOL_CONTRACTS, "TimelockController", "ConfigRegistry"];
      if (args.contract !== undefined && !known.includes(args.contract)) fail(`--contract "${args.contract}" is not one of ${known.join(", ")}`); // prettier-ignore
      if (args.grant !== undefined && args.revoke !== undefined) fail("give --grant or --revoke, not both");
      const roleName = args.grant ?? args.revoke;
      if (roleName !== undefined && (args.contract === undefined || args.account === undefined)) {
        fail(`--${args.grant ? "grant" : "revoke"} needs --contract and --account`);
      }
      if (roleName === undefined && args.account !== undefined) fail("--account goes with --grant or --revoke");
      const account = args.account !== undefined ? parseAddress(hre, args.account, "--account") : undefined;
      const gov = await connectGov(hre, args.addresses);
      if (args.execute !== undefined) return void (await executeOperation(gov, args.execute));
      const contractName = args.contract as GovernedName | undefined;
      if (roleName === undefined || !account || !contractName) {
        const names = contractName ? [contractName] : (known.filter((n) => gov.contracts[n as GovernedName]) as GovernedName[]); // prettier-ignore
        return listRoles(gov, names, args.json);
      }
      const contract = governed(gov, contractName);
      const roles = await rolesOf(contract);
      const role = roles.get(roleName);
      if (role === undefined) fail(`${contractName} has no role "${roleName}"; its roles: ${[...roles.keys()].join(", ")}`); // prettier-ignore
      if (roleName === "DEFAULT_ADMIN_ROLE" && contractName !== "TimelockController") {
        fail("DEFAULT_ADMIN_ROLE moves in two steps (beginDefaultAdminTransfer, then the new admin accepts after adminDelay), not with gov:roles"); // prettier-ignore
      }
      const holds: boolean = await contract.getFunction("hasRole")(role, account);
      if (args.grant && holds) fail(`${account} already holds ${roleName} on ${contractName}`);
      if (args.revoke && !holds) fail(`${account} does not hold ${roleName} on ${contractName}`);
      const adminRole: string = await contract.getFunction("getRoleAdmin")(role);
      const adminName = [...roles].find(([, hash]) => hash === adminRole)?.[0] ?? adminRole;
      const fn = args.grant ? "grantRole" : "revokeRole";
      const outcome = await govern(gov, { contract: contractName, fn, args: [role, account], role: adminName, task: "gov:roles" }); // prettier-ignore
      report(outcome, `${args.grant ? "granted" : "revoked"} ${roleName} on ${contractName} ${args.grant ? "to" : "from"} ${account}`); // prettier-ignore
    },
  );
