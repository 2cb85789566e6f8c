/**
 * The account as a PaymentVault customer: prepaid balance, standing, spending cap, debt, referrer, referral
 * credit, pending withdrawal and last settled period; and its forms: deposit with a permit (one transaction),
 * set the spending cap (0: none), name a referrer (once), request, execute or cancel a withdrawal, and claim
 * referral credit.
 */
import { paymentVaultAbi } from "../../offchain/common/generated/abis";
import { button, field, onSubmit, submitButton } from "./controls";
import { h, row } from "./dom";
import { amountField, otherAddressField } from "./fieldValidation";
import { formatTime, formatTokens } from "./format";
import type { Overview } from "./readOverview";
import type { CustomerView } from "./readCustomer";
import { render, state } from "./state";
import { runTx, txLine } from "./txStatus";

// ------------------------------------------------------------------------------------------ actions

function vaultCall(key: string, label: string, functionName: string, args: readonly unknown[] = []): Promise<boolean> {
  const chain = state.chain!;
  return runTx(key, label, async () => ({ address: chain.contracts.vault!, abi: paymentVaultAbi, functionName, args }));
}

/** Sends a vault call for a form whose field `draftKey` is cleared once it is confirmed. */
async function submitVaultCall(draftKey: string, ...call: Parameters<typeof vaultCall>): Promise<void> {
  if (await vaultCall(...call)) state.drafts.delete(draftKey);
  render();
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
  const label = cap === 0n ? "Remove the spending cap" : "Set the spending cap";
  await submitVaultCall("cap-amount", "cap", label, "setSpendingCap", [cap]);
}

async function setReferrer(): Promise<void> {
  const referrer = otherAddressField("referrer-address");
  if (!referrer) return;
  await submitVaultCall("referrer-address", "referrer", "Set the referrer", "setReferrer", [referrer]);
}

async function requestWithdrawal(): Promise<void> {
  const balance = state.overview!.customer!.balance;
  const amount = amountField("withdraw-amount", { max: balance, maxWhat: "the prepaid balance" });
  if (amount === undefined) return;
  await submitVaultCall("withdraw-amount", "withdraw", "Request a withdrawal", "requestWithdrawal", [amount]);
}

// ------------------------------------------------------------------------------------------ rendering

/** One of the customer's forms: `id` is also its transaction key. */
function subform(id: string, title: string, action: () => unknown, ...children: Array<HTMLElement | null>) {
  return h(
    "form",
    { class: "subform", id, "aria-labelledby": `${id}-title`, onsubmit: onSubmit(action) },
    h("h4", { id: `${id}-title` }, title),
    ...children,
    txLine(id),
  );
}

function customerDetails(c: CustomerView): HTMLElement {
  const pending = c.pendingWithdrawal;
  return h(
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
  );
}

function referrerForm(c: CustomerView): HTMLElement {
  if (c.referrer)
    return subform(
      "referrer",
      "Referrer",
      setReferrer,
      h("p", { class: "hint" }, "Set once: it earns a share of your charges."),
    );
  return subform(
    "referrer",
    "Referrer",
    setReferrer,
    field("referrer-address", "Referrer address (set once)", { placeholder: "0x…" }),
    submitButton("Set referrer", "referrer"),
  );
}

/** Request a withdrawal, or, while one is pending, execute it (after the notice) or cancel it. */
function withdrawalForm(c: CustomerView, o: Overview): HTMLElement {
  const pending = c.pendingWithdrawal;
  if (!pending)
    return subform(
      "withdraw",
      "Withdrawal",
      requestWithdrawal,
      field("withdraw-amount", "Amount to withdraw (EDGE)", {
        inputmode: "decimal",
        hint: "Paid out after the notice period; bills can still be settled until then.",
      }),
      submitButton("Request withdrawal", "withdraw"),
    );
  return subform(
    "withdraw",
    "Withdrawal",
    requestWithdrawal,
    h(
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
    ),
  );
}

/** Claim referral credit; kept after a claim empties the credit, so its confirmation stays in view. */
function referralClaim(c: CustomerView): HTMLElement | null {
  if (c.referralCredit <= 0n && !state.tx.has("referral")) return null;
  const claim = () => vaultCall("referral", "Claim referral credit", "claimReferral", [state.account]);
  return h(
    "div",
    { class: "subform" },
    c.referralCredit > 0n ? button("Claim referral credit", claim, { busyKey: "referral", kind: "primary" }) : null,
    txLine("referral"),
  );
}

/** The payments section, when PaymentVault is deployed. */
export function renderCustomer(o: Overview): HTMLElement | null {
  const c = o.customer;
  if (!c) return null;
  return h(
    "section",
    { "aria-labelledby": "h-customer", class: "card", id: "customer" },
    h("h2", { id: "h-customer" }, "Payments (customers)"),
    customerDetails(c),
    h(
      "div",
      { class: "subforms" },
      subform(
        "deposit",
        "Deposit",
        deposit,
        field("deposit-amount", "Amount to deposit (EDGE)", {
          inputmode: "decimal",
          hint: "One transaction with a permit.",
        }),
        submitButton("Deposit", "deposit"),
      ),
      subform(
        "cap",
        "Spending cap",
        setCap,
        field("cap-amount", "Cap per billing period (EDGE, 0 for none)", { inputmode: "decimal" }),
        submitButton("Set cap", "cap"),
      ),
      referrerForm(c),
      withdrawalForm(c, o),
      referralClaim(c),
    ),
  );
}
