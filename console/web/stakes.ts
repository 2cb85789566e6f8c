/**
 * The account's stakes: the list and each stake's card (status in the network's vocabulary, amount, minimum,
 * device and admission, unlock time), with what the stake can do in its status: assign a device from its pasted
 * consent, unassign it, request or cancel an unstake, release, or express release after confirming the fee.
 */
import { stakeManagerAbi } from "../../offchain/common/generated/abis";
import { button, field } from "./controls";
import { h, row } from "./dom";
import { renderEarnings } from "./earnings";
import { consentField } from "./fieldValidation";
import {
  STATUS_HELP,
  STATUS_NAMES,
  type StatusName,
  formatBps,
  formatDuration,
  formatTime,
  formatTokens,
  stakeTypeName,
  statusName,
} from "./format";
import type { Overview } from "./readOverview";
import type { StakeRow } from "./readStakes";
import { renderCreate } from "./stakeCreate";
import { render, state } from "./state";
import { runTx, stakeTxKey, txLine } from "./txStatus";

// ------------------------------------------------------------------------------------------ actions

async function assignDevice(stake: StakeRow): Promise<void> {
  const key = `assign-${stake.id}`;
  const { consent, ok } = await consentField(key);
  if (!ok || !consent) return;
  const chain = state.chain!;
  const done = await runTx(stakeTxKey(stake.id), `Assign device ${consent.device}`, async () => ({
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

/** A StakeManager call that takes only the stake's id. */
function stakeCall(stake: StakeRow, label: string, functionName: string): Promise<boolean> {
  const chain = state.chain!;
  return runTx(stakeTxKey(stake.id), label, async () => ({
    address: chain.contracts.staking,
    abi: stakeManagerAbi,
    functionName,
    args: [stake.id],
  }));
}

function setExpressOpen(stake: StakeRow, open: boolean): void {
  if (open) state.expressOpen.add(String(stake.id));
  else state.expressOpen.delete(String(stake.id));
  render();
}

// ------------------------------------------------------------------------------------------ rendering

function statusBadge(status: number): HTMLElement {
  const name = statusName(status) as StatusName;
  return h("span", { class: `status status-${name}`, title: STATUS_HELP[name] }, name);
}

/** The buttons of what the stake can do in its status. */
function stakeActions(stake: StakeRow, name: string, o: Overview): HTMLElement[] {
  const busyKey = stakeTxKey(stake.id);
  const call = (label: string, text: string, functionName: string, kind?: string) =>
    button(label, () => stakeCall(stake, text, functionName), { busyKey, kind });
  const actions: HTMLElement[] = [];
  if (name === "assigned") actions.push(call("Unassign device", "Unassign the device", "unassignDevice"));
  if (name === "assigned" || name === "unassigned")
    actions.push(call("Request unstake", "Request unstake", "requestUnstake"));
  if (name === "unlocking") {
    actions.push(call("Cancel unstake", "Cancel unstake", "cancelUnstake"), call("Release", "Release", "release"));
    if (o.blockTime < stake.unlockAt)
      actions.push(button("Express release…", () => setExpressOpen(stake, true), { busyKey }));
  }
  if (name === "unlocked") actions.push(call("Release", "Release", "release", "primary"));
  return actions;
}

/** The express release confirmation: the fee, what the owner receives now, and confirm or keep waiting. */
function expressConfirm(stake: StakeRow, o: Overview): HTMLElement {
  const fee = (stake.amount * o.expressReleaseFeeBps) / 10_000n;
  const confirm = async () => {
    if (await stakeCall(stake, "Express release", "expressRelease")) state.expressOpen.delete(String(stake.id));
    render();
  };
  return h(
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
      button(`Confirm express release (fee ${formatTokens(fee)})`, confirm, {
        busyKey: stakeTxKey(stake.id),
        kind: "danger",
      }),
      button("Keep waiting", () => setExpressOpen(stake, false)),
    ),
  );
}

function assignForm(stake: StakeRow): HTMLElement {
  return h(
    "div",
    { class: "assign" },
    field(`assign-${stake.id}`, `Device consent for stake ${stake.id}`, {
      multiline: true,
      hint: "Paste the device's signed consent (JSON from stake:consent or edge-node).",
    }),
    button("Assign device", () => assignDevice(stake), { busyKey: stakeTxKey(stake.id), kind: "primary" }),
  );
}

/** The stake's facts: status, amount, minimum, device and admission, unlock and release times. */
function stakeDetails(stake: StakeRow, name: string, o: Overview): HTMLElement {
  const unlockText =
    stake.unlockAt === 0n
      ? "-"
      : `${formatTime(stake.unlockAt)}${stake.unlockAt > o.blockTime ? ` (in ${formatDuration(stake.unlockAt - o.blockTime)})` : " (passed)"}`;
  const admitted = stake.admitted ? "admitted yes" : "admitted no";
  return h(
    "dl",
    {},
    row("Status", h("span", { class: "status-text" }, `${name}: ${STATUS_HELP[name as StatusName]}`)),
    row("Amount", h("span", { class: "amount" }, formatTokens(stake.amount))),
    row(
      "Minimum met",
      h(
        "span",
        { class: "minimum" },
        name === "released" ? "-" : `${stake.minimumMet ? "yes" : "no"} (minimum ${formatTokens(stake.minimumStake)})`,
      ),
    ),
    row(
      "Device",
      stake.device ? h("code", { class: "device" }, stake.device) : "none",
      stake.device ? h("span", { class: admitted }, stake.admitted ? " admitted" : " not admitted") : null,
    ),
    row("Unlock time", h("span", { class: "unlock" }, unlockText)),
    stake.releasedAt > 0n ? row("Released", formatTime(stake.releasedAt)) : null,
  );
}

function renderStake(stake: StakeRow, o: Overview): HTMLElement {
  const name = statusName(stake.status);
  const actions = stakeActions(stake, name, o);
  const expressOpen = name === "unlocking" && state.expressOpen.has(String(stake.id));
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
    stakeDetails(stake, name, o),
    name === "unassigned" ? assignForm(stake) : null,
    actions.length ? h("div", { class: "actions" }, ...actions) : null,
    expressOpen ? expressConfirm(stake, o) : null,
    renderEarnings(stake, name === "assigned" || name === "unassigned"),
    txLine(stakeTxKey(stake.id)),
  );
}

/** The stakes section: the statuses' meanings, the create form and every stake, newest first. */
export function renderStakes(o: Overview): HTMLElement {
  return h(
    "section",
    { "aria-labelledby": "h-stakes" },
    h("h2", { id: "h-stakes" }, "Stakes"),
    h("p", { class: "hint" }, `Statuses: ${STATUS_NAMES.map((n) => `${n} (${STATUS_HELP[n]})`).join("; ")}.`),
    renderCreate(o),
    h(
      "div",
      { id: "stake-list", class: "stake-list" },
      o.stakes.length === 0 ? h("p", { id: "no-stakes" }, "No stakes yet.") : o.stakes.map((s) => renderStake(s, o)),
    ),
  );
}
