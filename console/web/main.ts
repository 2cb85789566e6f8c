/**
 * The Console page: a wallet user's stakes, devices, earnings and prepaid balance. Talks to the chain only
 * through the injected EIP-1193 wallet; the server gives it the chain id and the address book (/config.json).
 *
 * The page is rendered from one state object: every change re-renders <main>, keeping what the user typed
 * (drafts) and where the keyboard focus was.
 */
import type { Address, EIP1193Provider, Hex } from "viem";

import { paymentVaultAbi, rewardsManagerAbi, stakeManagerAbi } from "../../offchain/common/generated/abis";
import { ConsentFormatError, parseSignedConsent } from "../../offchain/common/consent";
import { type ConsoleConfig, EdgeChain, type Overview, type StakeRow, contractsOf } from "./chain";
import { h, row } from "./dom";
import { describeFailure } from "./errors";
import {
  AmountFormatError,
  STAKE_TYPES,
  STATUS_HELP,
  STATUS_NAMES,
  type StatusName,
  formatBps,
  formatDuration,
  formatTime,
  formatTokens,
  parseTokenAmount,
  stakeTypeName,
  statusName,
} from "./format";

type TxState = "signing" | "pending" | "confirmed" | "failed";
interface TxRecord {
  /** Increases with every transaction started, so a reader can tell a new outcome from the previous one. */
  seq: number;
  state: TxState;
  text: string;
  hash?: Hex;
  errorName?: string;
}

interface State {
  config?: ConsoleConfig;
  provider?: EIP1193Provider;
  account?: Address;
  walletChainId?: number;
  chain?: EdgeChain;
  overview?: Overview;
  loading: boolean;
  notice?: { kind: "error" | "info"; text: string };
  tx: Map<string, TxRecord>;
  fieldErrors: Map<string, string>;
  drafts: Map<string, string>;
  expressOpen: Set<string>;
  busy: Set<string>;
}

const state: State = {
  loading: false,
  tx: new Map(),
  fieldErrors: new Map(),
  drafts: new Map(),
  expressOpen: new Set(),
  busy: new Set(),
};

declare global {
  interface Window {
    ethereum?: EIP1193Provider;
  }
}

let txSeq = 0;

const $ = (id: string) => document.getElementById(id)!;

// ------------------------------------------------------------------------------------------ wallet

async function connect(): Promise<void> {
  const provider = window.ethereum;
  if (!provider) {
    state.notice = {
      kind: "error",
      text: "No browser wallet found. Install or enable an Ethereum wallet extension, then reload this page.",
    };
    return render();
  }
  state.provider = provider;
  state.notice = { kind: "info", text: "Waiting for your wallet to share an account…" };
  render();
  try {
    const accounts = (await provider.request({ method: "eth_requestAccounts" })) as Address[];
    if (!listening) {
      listening = true;
      provider.on?.("accountsChanged", (next: Address[]) => void onAccounts(next));
      provider.on?.("chainChanged", (chainId: string) => void onChain(chainId));
    }
    state.walletChainId = Number(await provider.request({ method: "eth_chainId" }));
    state.notice = undefined;
    await onAccounts(accounts);
  } catch (error) {
    state.notice = { kind: "error", text: `Could not connect: ${describeFailure(error).sentence}` };
    render();
  }
}
let listening = false;

async function onAccounts(accounts: Address[]): Promise<void> {
  state.account = accounts[0];
  state.overview = undefined;
  state.tx.clear();
  if (!state.account) state.notice = { kind: "info", text: "The wallet disconnected: connect again to continue." };
  await setup();
}

async function onChain(chainIdHex: string): Promise<void> {
  state.walletChainId = Number(chainIdHex);
  state.overview = undefined;
  await setup();
}

function chainOk(): boolean {
  return state.walletChainId === state.config?.chainId;
}

async function setup(): Promise<void> {
  state.chain =
    state.account && state.provider && chainOk()
      ? new EdgeChain(state.provider, state.config!, state.account)
      : undefined;
  render();
  if (state.chain) await refresh();
}

async function switchChain(): Promise<void> {
  const config = state.config!;
  const chainId = `0x${config.chainId.toString(16)}`;
  try {
    await state.provider!.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
  } catch (error) {
    if ((error as { code?: number }).code === 4902) {
      try {
        await state.provider!.request({
          method: "wallet_addEthereumChain",
          params: [
            {
              chainId,
              chainName: `Edge chain ${config.chainId}`,
              nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
              rpcUrls: [config.rpcUrl],
            },
          ],
        });
        return;
      } catch (addError) {
        error = addError;
      }
    }
    state.notice = { kind: "error", text: `Could not switch the network: ${describeFailure(error).sentence}` };
    render();
  }
}

async function refresh(): Promise<void> {
  const chain = state.chain;
  if (!chain) return;
  state.loading = true;
  render();
  try {
    const overview = await chain.overview();
    if (chain === state.chain) state.overview = overview;
    state.notice = undefined;
  } catch (error) {
    state.notice = { kind: "error", text: `Could not read the contracts: ${describeFailure(error).sentence}` };
  } finally {
    state.loading = false;
    render();
  }
}

// ------------------------------------------------------------------------------------------ transactions

type ContractRequest = Parameters<EdgeChain["send"]>[0];

/**
 * Runs one transaction and records its stages under `key`: waiting for the wallet, pending (hash), confirmed
 * (block and hash) or failed (the contract's error in words). `prepare` may ask the wallet for signatures first.
 */
async function runTx(key: string, label: string, prepare: () => Promise<ContractRequest>): Promise<boolean> {
  const chain = state.chain;
  if (!chain || state.busy.has(key)) return false;
  state.busy.add(key);
  const seq = ++txSeq;
  state.tx.set(key, { seq, state: "signing", text: `${label}: confirm in your wallet…` });
  render();
  try {
    const request = await prepare();
    const { hash, blockNumber } = await chain.send(request, (stage) => {
      if (stage.stage === "pending") {
        state.tx.set(key, { seq, state: "pending", text: `${label}: pending…`, hash: stage.hash });
        render();
      }
    });
    state.tx.set(key, { seq, state: "confirmed", text: `${label}: confirmed in block ${blockNumber}.`, hash });
    state.busy.delete(key);
    await refresh();
    return true;
  } catch (error) {
    const { sentence, errorName } = describeFailure(error);
    const previous = state.tx.get(key);
    state.tx.set(key, { seq, state: "failed", text: `${label} failed. ${sentence}`, hash: previous?.hash, errorName });
    state.busy.delete(key);
    render();
    return false;
  }
}

function draft(key: string): string {
  return state.drafts.get(key) ?? "";
}

function fieldError(key: string, message: string | undefined): void {
  if (message) state.fieldErrors.set(key, message);
  else state.fieldErrors.delete(key);
}

/** Validates an amount field; on failure shows the message next to it and returns undefined. */
function amountField(
  key: string,
  options: { allowZero?: boolean; max?: bigint; maxWhat?: string; min?: bigint; minWhat?: string } = {},
): bigint | undefined {
  try {
    const amount = parseTokenAmount(draft(key), { allowZero: options.allowZero });
    if (options.min !== undefined && amount < options.min)
      throw new AmountFormatError(`at least ${formatTokens(options.min)} (${options.minWhat})`);
    if (options.max !== undefined && amount > options.max)
      throw new AmountFormatError(`${options.maxWhat} is ${formatTokens(options.max)}`);
    fieldError(key, undefined);
    return amount;
  } catch (error) {
    fieldError(key, (error as Error).message);
    render();
    return undefined;
  }
}

/** Parses and checks a pasted device consent; on failure shows the message next to the field. */
async function consentField(key: string, optional = false) {
  const text = draft(key).trim();
  if (text === "" && optional) {
    fieldError(key, undefined);
    return { consent: undefined, ok: true };
  }
  let consent;
  try {
    if (text === "")
      throw new ConsentFormatError("paste the device's consent (the JSON from stake:consent or edge-node)");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ConsentFormatError("the consent is not valid JSON: paste it exactly as the operator gave it");
    }
    consent = parseSignedConsent(json);
  } catch (error) {
    fieldError(key, (error as Error).message);
    render();
    return { consent: undefined, ok: false };
  }
  const problem = await state.chain!.checkConsent(consent);
  fieldError(key, problem);
  if (problem) {
    render();
    return { consent: undefined, ok: false };
  }
  return {
    consent: {
      device: consent.device as Address,
      deadline: BigInt(consent.deadline),
      signature: consent.signature as Hex,
    },
    ok: true,
  };
}

async function createStake(): Promise<void> {
  const chain = state.chain!;
  const overview = state.overview!;
  const typeIndex = Number(draft("create-type") || "0");
  const amount = amountField("create-amount", {
    min: overview.minimums[typeIndex],
    minWhat: `the ${STAKE_TYPES[typeIndex]} minimum`,
    max: overview.walletBalance,
    maxWhat: "your wallet balance",
  });
  if (amount === undefined) return;
  const { consent, ok } = await consentField("create-consent", true);
  if (!ok) return;
  const done = await runTx("create", consent ? "Stake and assign" : "Stake", async () => {
    const permit = await chain.permitFor(chain.contracts.staking, amount);
    const base = { address: chain.contracts.staking, abi: stakeManagerAbi };
    if (consent && permit)
      return { ...base, functionName: "stakeAndAssignWithPermit", args: [typeIndex, amount, consent, permit] };
    if (consent) return { ...base, functionName: "stakeAndAssign", args: [typeIndex, amount, consent] };
    if (permit) return { ...base, functionName: "stakeWithPermit", args: [typeIndex, amount, permit] };
    return { ...base, functionName: "stake", args: [typeIndex, amount] };
  });
  if (done) {
    state.drafts.delete("create-amount");
    state.drafts.delete("create-consent");
    render();
  }
}

async function assignDevice(stake: StakeRow): Promise<void> {
  const key = `assign-${stake.id}`;
  const { consent, ok } = await consentField(key);
  if (!ok || !consent) return;
  const chain = state.chain!;
  const done = await runTx(`stake-${stake.id}`, `Assign device ${consent.device}`, async () => ({
    address: chain.contracts.staking,
    abi: stakeManagerAbi,
    functionName: "assignDevice",
    args: [stake.id, consent],
  }));
  if (done) {
    state.drafts.delete(key);
    render();
  }
}

function stakeCall(stake: StakeRow, label: string, functionName: string): Promise<boolean> {
  const chain = state.chain!;
  return runTx(`stake-${stake.id}`, label, async () => ({
    address: chain.contracts.staking,
    abi: stakeManagerAbi,
    functionName,
    args: [stake.id],
  }));
}

function rewardsCall(stake: StakeRow, label: string, functionName: "claim" | "compound"): Promise<boolean> {
  const chain = state.chain!;
  return runTx(`stake-${stake.id}`, label, async () => ({
    address: chain.contracts.rewards!,
    abi: rewardsManagerAbi,
    functionName,
    args: functionName === "claim" ? [stake.id, chain.account] : [stake.id],
  }));
}

function vaultCall(key: string, label: string, functionName: string, args: readonly unknown[] = []): Promise<boolean> {
  const chain = state.chain!;
  return runTx(key, label, async () => ({ address: chain.contracts.vault!, abi: paymentVaultAbi, functionName, args }));
}

async function deposit(): Promise<void> {
  const chain = state.chain!;
  const amount = amountField("deposit-amount", { max: state.overview!.walletBalance, maxWhat: "your wallet balance" });
  if (amount === undefined) return;
  const done = await runTx("deposit", "Deposit", async () => {
    const permit = await chain.permitFor(chain.contracts.vault!, amount);
    const base = { address: chain.contracts.vault!, abi: paymentVaultAbi };
    if (!permit) return { ...base, functionName: "depositFor", args: [chain.account, amount] };
    return {
      ...base,
      functionName: "depositWithPermit",
      args: [chain.account, amount, permit.deadline, permit.v, permit.r, permit.s],
    };
  });
  if (done) state.drafts.delete("deposit-amount");
  render();
}

async function setCap(): Promise<void> {
  const cap = amountField("cap-amount", { allowZero: true });
  if (cap === undefined) return;
  if (await vaultCall("cap", cap === 0n ? "Remove the spending cap" : "Set the spending cap", "setSpendingCap", [cap]))
    state.drafts.delete("cap-amount");
  render();
}

async function setReferrer(): Promise<void> {
  const value = draft("referrer-address").trim();
  if (!/^0x[0-9a-fA-F]{40}$/.test(value)) {
    fieldError("referrer-address", "enter an address: 0x followed by 40 hex digits");
    return render();
  }
  if (value.toLowerCase() === state.account!.toLowerCase()) {
    fieldError("referrer-address", "you cannot name yourself as your referrer");
    return render();
  }
  fieldError("referrer-address", undefined);
  if (await vaultCall("referrer", "Set the referrer", "setReferrer", [value])) state.drafts.delete("referrer-address");
  render();
}

async function requestWithdrawal(): Promise<void> {
  const amount = amountField("withdraw-amount", {
    max: state.overview!.customer!.balance,
    maxWhat: "the prepaid balance",
  });
  if (amount === undefined) return;
  if (await vaultCall("withdraw", "Request a withdrawal", "requestWithdrawal", [amount]))
    state.drafts.delete("withdraw-amount");
  render();
}

// ------------------------------------------------------------------------------------------ rendering

function txLine(key: string): HTMLElement {
  const record = state.tx.get(key);
  return h(
    "p",
    {
      class: `tx ${record ? `tx-${record.state}` : ""}`,
      role: "status",
      "aria-live": "polite",
      id: `tx-${key}`,
      "data-state": record?.state,
      "data-seq": record?.seq,
      "data-error": record?.errorName,
    },
    record ? h("span", { class: "tx-text" }, record.text) : null,
    record?.hash ? h("span", { class: "tx-hash" }, " Transaction ", h("code", {}, record.hash)) : null,
  );
}

/** A labelled text input bound to a draft, with its error message next to it. */
function field(
  key: string,
  label: string,
  options: { placeholder?: string; hint?: string; multiline?: boolean; inputmode?: string } = {},
): HTMLElement {
  const error = state.fieldErrors.get(key);
  const describedBy = [options.hint ? `${key}-hint` : "", error ? `${key}-error` : ""].filter(Boolean).join(" ");
  const attrs = {
    id: key,
    name: key,
    placeholder: options.placeholder,
    inputmode: options.inputmode,
    autocomplete: "off",
    spellcheck: "false",
    "aria-invalid": error ? "true" : undefined,
    "aria-describedby": describedBy || undefined,
    oninput: (event: Event) => {
      state.drafts.set(key, (event.target as HTMLInputElement).value);
    },
  };
  const control = options.multiline ? h("textarea", { ...attrs, rows: 5 }) : h("input", { ...attrs, type: "text" });
  (control as HTMLInputElement).value = draft(key);
  return h(
    "div",
    { class: "field" },
    h("label", { for: key }, label),
    options.hint ? h("p", { class: "hint", id: `${key}-hint` }, options.hint) : null,
    control,
    error ? h("p", { class: "field-error", id: `${key}-error`, role: "alert" }, error) : null,
  );
}

function button(
  label: string,
  onclick: () => unknown,
  options: { busyKey?: string; kind?: string; id?: string; disabled?: boolean } = {},
): HTMLElement {
  const busy = options.busyKey ? state.busy.has(options.busyKey) : false;
  return h(
    "button",
    {
      type: "button",
      class: options.kind ?? "secondary",
      id: options.id,
      disabled: busy || options.disabled,
      "aria-busy": busy ? "true" : undefined,
      onclick: () => void onclick(),
    },
    label,
  );
}

function renderHeader(): void {
  const config = state.config!;
  const account = state.account;
  const status = $("wallet-status");
  status.replaceChildren();
  const connectButton = $("connect") as HTMLButtonElement;
  connectButton.textContent = account ? "Reconnect" : "Connect wallet";
  if (!account) {
    status.append(`Not connected. This Console works with chain ${config.chainId}.`);
    return;
  }
  status.append(
    h("span", { class: "account" }, "Account ", h("code", { id: "account" }, account)),
    " ",
    h(
      "span",
      { class: chainOk() ? "chain-ok" : "chain-bad", id: "wallet-chain" },
      `wallet on chain ${state.walletChainId}${chainOk() ? "" : ` (this Console needs chain ${config.chainId})`}`,
    ),
  );
}

function renderNotice(): HTMLElement | null {
  const config = state.config!;
  if (state.account && state.walletChainId !== undefined && !chainOk()) {
    return h(
      "div",
      { class: "notice notice-error", role: "alert", id: "wrong-chain" },
      h(
        "p",
        {},
        `Wrong network: your wallet is on chain ${state.walletChainId}, but this Console works only with chain ${config.chainId}, where the Edge contracts are deployed. Nothing is read or sent until you switch.`,
      ),
      button(`Switch wallet to chain ${config.chainId}`, switchChain, { kind: "primary", id: "switch-chain" }),
    );
  }
  if (!state.notice) return null;
  return h(
    "div",
    { class: `notice notice-${state.notice.kind}`, role: state.notice.kind === "error" ? "alert" : "status" },
    h("p", {}, state.notice.text),
  );
}

function renderWallet(o: Overview): HTMLElement {
  return h(
    "section",
    { "aria-labelledby": "h-wallet", class: "card" },
    h("h2", { id: "h-wallet" }, "Wallet"),
    h(
      "dl",
      {},
      row("Token balance", h("span", { id: "wallet-balance" }, formatTokens(o.walletBalance))),
      o.epoch
        ? row(
            "Current epoch",
            `${o.epoch.current} (ends ${formatTime(o.epoch.end)}, in ${formatDuration(o.epoch.end - o.blockTime)})`,
          )
        : null,
      row("Chain time", formatTime(o.blockTime)),
    ),
    h(
      "div",
      { class: "actions" },
      button(state.loading ? "Refreshing…" : "Refresh", refresh, { id: "refresh", disabled: state.loading }),
    ),
  );
}

function renderCreate(o: Overview): HTMLElement {
  const typeIndex = Number(draft("create-type") || "0");
  const select = h(
    "select",
    {
      id: "create-type",
      name: "create-type",
      onchange: (event: Event) => {
        state.drafts.set("create-type", (event.target as HTMLSelectElement).value);
        render();
      },
    },
    ...STAKE_TYPES.map((name, i) =>
      h("option", { value: i, selected: i === typeIndex }, `${name} (minimum ${formatTokens(o.minimums[i])})`),
    ),
  );
  return h(
    "form",
    {
      class: "card",
      "aria-labelledby": "h-create",
      onsubmit: (event: Event) => {
        event.preventDefault();
        void createStake();
      },
    },
    h("h3", { id: "h-create" }, "Create a stake"),
    h(
      "p",
      { class: "hint" },
      `One transaction: you sign a permit for the tokens, then send. Unbonding takes ${formatDuration(o.unbondingPeriods[typeIndex])} after an unstake request.`,
    ),
    h("div", { class: "field" }, h("label", { for: "create-type" }, "Stake type"), select),
    field("create-amount", "Amount (EDGE)", {
      placeholder: formatTokens(o.minimums[typeIndex], "").trim(),
      inputmode: "decimal",
    }),
    field("create-consent", "Device consent (optional)", {
      multiline: true,
      hint: "Paste the JSON the device operator gives you (stake:consent or edge-node) to assign the device in the same transaction.",
    }),
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          type: "submit",
          class: "primary",
          id: "create-submit",
          disabled: state.busy.has("create"),
          "aria-busy": state.busy.has("create") ? "true" : undefined,
        },
        "Stake",
      ),
    ),
    txLine("create"),
  );
}

function statusBadge(status: number): HTMLElement {
  const name = statusName(status) as StatusName;
  return h("span", { class: `status status-${name}`, title: STATUS_HELP[name] }, name);
}

function renderStake(stake: StakeRow, o: Overview): HTMLElement {
  const name = statusName(stake.status);
  const active = name === "assigned" || name === "unassigned";
  const unlocking = name === "unlocking";
  const actions: HTMLElement[] = [];
  const busyKey = `stake-${stake.id}`;
  if (active) {
    if (name === "assigned")
      actions.push(
        button("Unassign device", () => stakeCall(stake, "Unassign the device", "unassignDevice"), { busyKey }),
      );
    actions.push(button("Request unstake", () => stakeCall(stake, "Request unstake", "requestUnstake"), { busyKey }));
  }
  if (unlocking) {
    actions.push(button("Cancel unstake", () => stakeCall(stake, "Cancel unstake", "cancelUnstake"), { busyKey }));
    actions.push(button("Release", () => stakeCall(stake, "Release", "release"), { busyKey }));
    if (o.blockTime < stake.unlockAt)
      actions.push(
        button(
          "Express release…",
          () => {
            state.expressOpen.add(String(stake.id));
            render();
          },
          { busyKey },
        ),
      );
  }
  if (name === "unlocked")
    actions.push(button("Release", () => stakeCall(stake, "Release", "release"), { busyKey, kind: "primary" }));

  const fee = (stake.amount * o.expressReleaseFeeBps) / 10_000n;
  const express =
    unlocking && state.expressOpen.has(String(stake.id))
      ? h(
          "div",
          { class: "confirm", role: "group", "aria-labelledby": `express-${stake.id}-title` },
          h("p", { id: `express-${stake.id}-title` }, h("strong", {}, "Express release before the unlock time")),
          h(
            "p",
            { id: `express-${stake.id}-fee` },
            `Fee: ${formatTokens(fee)} (${formatBps(o.expressReleaseFeeBps)}) goes to the treasury. You receive ${formatTokens(stake.amount - fee)} now instead of ${formatTokens(stake.amount)} at ${formatTime(stake.unlockAt)}.`,
          ),
          h(
            "div",
            { class: "actions" },
            button(
              `Confirm express release (fee ${formatTokens(fee)})`,
              async () => {
                if (await stakeCall(stake, "Express release", "expressRelease"))
                  state.expressOpen.delete(String(stake.id));
                render();
              },
              { busyKey, kind: "danger" },
            ),
            button("Keep waiting", () => {
              state.expressOpen.delete(String(stake.id));
              render();
            }),
          ),
        )
      : null;

  const assign =
    name === "unassigned"
      ? h(
          "div",
          { class: "assign" },
          field(`assign-${stake.id}`, `Device consent for stake ${stake.id}`, {
            multiline: true,
            hint: "Paste the device's signed consent (JSON from stake:consent or edge-node).",
          }),
          button("Assign device", () => assignDevice(stake), { busyKey, kind: "primary" }),
        )
      : null;

  const e = stake.earnings;
  const earnings = e
    ? h(
        "div",
        { class: "earnings", "aria-labelledby": `earn-${stake.id}` },
        h("h4", { id: `earn-${stake.id}` }, "Earnings"),
        h(
          "dl",
          {},
          row("Accrued yield", h("span", { class: "accrued" }, formatTokens(e.accrued))),
          row(
            "Last scored epoch",
            h(
              "span",
              { class: "last-epoch" },
              e.lastScoredEpoch === null ? "not scored yet" : String(e.lastScoredEpoch),
            ),
          ),
          row(
            e.score === null ? "APR at an average score" : "APR at the current score",
            h(
              "span",
              { class: "apr" },
              `${formatBps(e.aprBps)}${e.score === null ? "" : ` (score ${e.score}, ${formatBps(e.score)} of the peer average)`}`,
            ),
          ),
          active ? row("Per epoch at this APR", formatTokens(e.perEpoch)) : null,
        ),
        h(
          "div",
          { class: "actions" },
          button("Claim", () => rewardsCall(stake, "Claim yield", "claim"), {
            busyKey,
            kind: "primary",
            disabled: e.accrued === 0n,
          }),
          active
            ? button("Compound", () => rewardsCall(stake, "Compound yield", "compound"), {
                busyKey,
                disabled: e.accrued === 0n,
              })
            : null,
        ),
      )
    : null;

  const unlockText =
    stake.unlockAt === 0n
      ? "-"
      : `${formatTime(stake.unlockAt)}${stake.unlockAt > o.blockTime ? ` (in ${formatDuration(stake.unlockAt - o.blockTime)})` : " (passed)"}`;

  return h(
    "article",
    { class: "stake card", id: `stake-${stake.id}`, "aria-labelledby": `stake-${stake.id}-title`, "data-status": name },
    h(
      "h3",
      { id: `stake-${stake.id}-title` },
      `Stake ${stake.id} `,
      h("span", { class: "type" }, stakeTypeName(stake.type)),
      " ",
      statusBadge(stake.status),
    ),
    h(
      "dl",
      {},
      row("Status", h("span", { class: "status-text" }, `${name}: ${STATUS_HELP[name as StatusName]}`)),
      row("Amount", h("span", { class: "amount" }, formatTokens(stake.amount))),
      row(
        "Minimum met",
        h(
          "span",
          { class: "minimum" },
          name === "released"
            ? "-"
            : `${stake.minimumMet ? "yes" : "no"} (minimum ${formatTokens(stake.minimumStake)})`,
        ),
      ),
      row(
        "Device",
        stake.device ? h("code", { class: "device" }, stake.device) : "none",
        stake.device
          ? h(
              "span",
              { class: stake.admitted ? "admitted yes" : "admitted no" },
              stake.admitted ? " admitted" : " not admitted",
            )
          : null,
      ),
      row("Unlock time", h("span", { class: "unlock" }, unlockText)),
      stake.releasedAt > 0n ? row("Released", formatTime(stake.releasedAt)) : null,
    ),
    assign,
    actions.length ? h("div", { class: "actions" }, ...actions) : null,
    express,
    earnings,
    txLine(`stake-${stake.id}`),
  );
}

function renderStakes(o: Overview): HTMLElement {
  const visible = o.stakes;
  return h(
    "section",
    { "aria-labelledby": "h-stakes" },
    h("h2", { id: "h-stakes" }, "Stakes"),
    h("p", { class: "hint" }, `Statuses: ${STATUS_NAMES.map((n) => `${n} (${STATUS_HELP[n]})`).join("; ")}.`),
    renderCreate(o),
    h(
      "div",
      { id: "stake-list", class: "stake-list" },
      visible.length === 0 ? h("p", { id: "no-stakes" }, "No stakes yet.") : visible.map((s) => renderStake(s, o)),
    ),
  );
}

function renderCustomer(o: Overview): HTMLElement | null {
  const c = o.customer;
  if (!c) return null;
  const pending = c.pendingWithdrawal;
  const form = (id: string, title: string, onsubmit: () => unknown, ...children: Array<HTMLElement | null>) =>
    h(
      "form",
      {
        class: "subform",
        id,
        "aria-labelledby": `${id}-title`,
        onsubmit: (event: Event) => {
          event.preventDefault();
          void onsubmit();
        },
      },
      h("h4", { id: `${id}-title` }, title),
      ...children,
    );
  const submit = (label: string, key: string) =>
    h(
      "button",
      {
        type: "submit",
        class: "primary",
        disabled: state.busy.has(key),
        "aria-busy": state.busy.has(key) ? "true" : undefined,
      },
      label,
    );
  return h(
    "section",
    { "aria-labelledby": "h-customer", class: "card", id: "customer" },
    h("h2", { id: "h-customer" }, "Payments (customers)"),
    h(
      "dl",
      {},
      row("Prepaid balance", h("span", { id: "customer-balance" }, formatTokens(c.balance))),
      row(
        "Standing",
        h(
          "span",
          { id: "customer-standing" },
          c.goodStanding ? "in good standing" : "not in good standing: gateways will not serve you",
        ),
      ),
      row(
        "Spending cap",
        h("span", { id: "customer-cap" }, c.spendingCap === 0n ? "none" : `${formatTokens(c.spendingCap)} per period`),
      ),
      row("Outstanding debt", formatTokens(c.outstanding)),
      row("Referrer", c.referrer ? h("code", { id: "customer-referrer" }, c.referrer) : "none"),
      row("Referral credit", h("span", { id: "customer-credit" }, formatTokens(c.referralCredit))),
      row(
        "Pending withdrawal",
        h(
          "span",
          { id: "customer-withdrawal" },
          pending ? `${formatTokens(pending.amount)}, executable from ${formatTime(pending.executableAt)}` : "none",
        ),
      ),
      row("Last settled period", c.lastSettledPeriod === null ? "none" : String(c.lastSettledPeriod)),
    ),
    h(
      "div",
      { class: "subforms" },
      form(
        "deposit",
        "Deposit",
        deposit,
        field("deposit-amount", "Amount to deposit (EDGE)", {
          inputmode: "decimal",
          hint: "One transaction with a permit.",
        }),
        submit("Deposit", "deposit"),
        txLine("deposit"),
      ),
      form(
        "cap",
        "Spending cap",
        setCap,
        field("cap-amount", "Cap per billing period (EDGE, 0 for none)", { inputmode: "decimal" }),
        submit("Set cap", "cap"),
        txLine("cap"),
      ),
      c.referrer
        ? form(
            "referrer",
            "Referrer",
            setReferrer,
            h("p", { class: "hint" }, "Set once: it earns a share of your charges."),
            txLine("referrer"),
          )
        : form(
            "referrer",
            "Referrer",
            setReferrer,
            field("referrer-address", "Referrer address (set once)", { placeholder: "0x…" }),
            submit("Set referrer", "referrer"),
            txLine("referrer"),
          ),
      form(
        "withdraw",
        "Withdrawal",
        requestWithdrawal,
        pending
          ? h(
              "div",
              { class: "actions" },
              button("Execute withdrawal", () => vaultCall("withdraw", "Execute the withdrawal", "executeWithdrawal"), {
                busyKey: "withdraw",
                kind: "primary",
                disabled: o.blockTime < pending.executableAt,
              }),
              button("Cancel withdrawal", () => vaultCall("withdraw", "Cancel the withdrawal", "cancelWithdrawal"), {
                busyKey: "withdraw",
              }),
            )
          : null,
        pending
          ? null
          : field("withdraw-amount", "Amount to withdraw (EDGE)", {
              inputmode: "decimal",
              hint: "Paid out after the notice period; bills can still be settled until then.",
            }),
        pending ? null : submit("Request withdrawal", "withdraw"),
        txLine("withdraw"),
      ),
      // Kept after a claim empties the credit, so its confirmation stays in view.
      c.referralCredit > 0n || state.tx.has("referral")
        ? h(
            "div",
            { class: "subform" },
            c.referralCredit > 0n
              ? button(
                  "Claim referral credit",
                  () => vaultCall("referral", "Claim referral credit", "claimReferral", [state.account]),
                  { busyKey: "referral", kind: "primary" },
                )
              : null,
            txLine("referral"),
          )
        : null,
    ),
  );
}

function renderDeployment(): HTMLElement {
  const config = state.config!;
  const contracts = contractsOf(config.addresses);
  const entries: Array<[string, string | undefined]> = [
    ["EdgeToken", contracts.token],
    ["StakeManager", contracts.staking],
    ["RewardsManager", contracts.rewards],
    ["PaymentVault", contracts.vault],
  ];
  return h(
    "details",
    { class: "deployment" },
    h("summary", {}, `Deployment on chain ${config.chainId}`),
    h("dl", {}, ...entries.filter(([, a]) => a).map(([n, a]) => row(n, h("code", {}, a!)))),
  );
}

function render(): void {
  if (!state.config) return;
  const focusedId = document.activeElement instanceof HTMLElement ? document.activeElement.id : "";
  renderHeader();
  const main = $("app");
  const parts: Array<HTMLElement | null> = [renderNotice()];
  const o = state.overview;
  if (state.chain && o) parts.push(renderWallet(o), renderStakes(o), renderCustomer(o));
  else if (state.chain && state.loading)
    parts.push(h("p", { role: "status" }, "Reading your stakes from the contracts…"));
  else if (!state.account)
    parts.push(
      h(
        "p",
        { class: "intro" },
        "Connect your wallet to see and manage your stakes, devices and earnings, and your prepaid balance as a customer. Transactions are signed in your wallet; this page holds no keys.",
      ),
    );
  parts.push(renderDeployment());
  main.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
  main.setAttribute("aria-busy", state.loading ? "true" : "false");
  if (focusedId) {
    const again = document.getElementById(focusedId);
    if (again && again !== document.activeElement) again.focus();
  }
}

async function start(): Promise<void> {
  $("connect").addEventListener("click", () => void connect());
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
    state.config = (await response.json()) as ConsoleConfig;
  } catch (error) {
    $("app").replaceChildren(
      h(
        "p",
        { class: "notice notice-error", role: "alert" },
        `The Console cannot load its configuration: ${(error as Error).message}`,
      ),
    );
    return;
  }
  ($("connect") as HTMLButtonElement).disabled = false;
  render();
}

void start();
