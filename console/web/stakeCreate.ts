/**
 * The "Create a stake" form and the transaction it sends: one ERC-2612 permit signature (skipped when an
 * allowance already covers the amount) and one transaction, `stakeWithPermit`, or `stakeAndAssignWithPermit`
 * when a device consent is pasted too.
 */
import { stakeManagerAbi } from "../../offchain/common/generated/abis";
import { field, onSubmit, submitButton } from "./controls";
import { h } from "./dom";
import { amountField, consentField } from "./fieldValidation";
import { STAKE_TYPES, formatDuration, formatTokens } from "./format";
import type { Overview } from "./readOverview";
import { draft, render, state } from "./state";
import { runTx, txLine } from "./txStatus";

/** The stake type chosen in the form (an index of STAKE_TYPES). */
const chosenType = () => Number(draft("create-type") || "0");

async function createStake(): Promise<void> {
  const chain = state.chain!;
  const overview = state.overview!;
  const typeIndex = chosenType();
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

export function renderCreate(o: Overview): HTMLElement {
  const typeIndex = chosenType();
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
    { class: "card", "aria-labelledby": "h-create", onsubmit: onSubmit(createStake) },
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
    h("div", { class: "actions" }, submitButton("Stake", "create", "create-submit")),
    txLine("create"),
  );
}
