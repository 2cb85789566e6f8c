/**
 * Transactions and their status lines: `runTx` runs one and records its stages under a control's key (waiting
 * for the wallet, pending with its hash, confirmed with the block and hash, or failed with the contract's error in
 * words); `txLine` shows them next to the control, in an aria-live region.
 */
import type { ContractRequest } from "./chain";
import { h } from "./dom";
import { describeFailure } from "./errors";
import { refresh } from "./session";
import { render, state } from "./state";

let txSeq = 0;

/** The key of a stake card's transactions (and of its status line, `tx-stake-<id>`). */
export const stakeTxKey = (stakeId: bigint) => `stake-${stakeId}`;

/**
 * Runs one transaction and records its stages under `key`: waiting for the wallet, pending (hash), confirmed
 * (block and hash) or failed (the contract's error in words). `prepare` may ask the wallet for signatures first.
 * After a confirmation the page re-reads the contracts. True when it was confirmed.
 */
export async function runTx(key: string, label: string, prepare: () => Promise<ContractRequest>): Promise<boolean> {
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

/** The status line of the transactions under `key` (`tx-<key>`): empty until one starts. */
export function txLine(key: string): HTMLElement {
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
