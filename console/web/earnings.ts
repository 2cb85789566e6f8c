/**
 * A stake's earnings panel: accrued yield, last scored epoch, the APR at its current score (or at an average
 * score before any) and what one epoch at that rate earns; and its actions, claim (to the wallet) and compound
 * (active stakes only).
 */
import { rewardsManagerAbi } from "../../offchain/common/generated/abis";
import { button } from "./controls";
import { h, row } from "./dom";
import { formatBps, formatTokens } from "./format";
import type { StakeRow } from "./readStakes";
import { state } from "./state";
import { runTx, stakeTxKey } from "./txStatus";

function rewardsCall(stake: StakeRow, label: string, functionName: "claim" | "compound"): Promise<boolean> {
  const chain = state.chain!;
  return runTx(stakeTxKey(stake.id), label, async () => ({
    address: chain.contracts.rewards!,
    abi: rewardsManagerAbi,
    functionName,
    args: functionName === "claim" ? [stake.id, chain.account] : [stake.id],
  }));
}

/** The panel, when RewardsManager is deployed; `active`: the stake is assigned or unassigned. */
export function renderEarnings(stake: StakeRow, active: boolean): HTMLElement | null {
  const e = stake.earnings;
  if (!e) return null;
  const busyKey = stakeTxKey(stake.id);
  return h(
    "div",
    { class: "earnings", "aria-labelledby": `earn-${stake.id}` },
    h("h4", { id: `earn-${stake.id}` }, "Earnings"),
    h(
      "dl",
      {},
      row("Accrued yield", h("span", { class: "accrued" }, formatTokens(e.accrued))),
      row(
        "Last scored epoch",
        h("span", { class: "last-epoch" }, e.lastScoredEpoch === null ? "not scored yet" : String(e.lastScoredEpoch)),
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
  );
}
