/**
 * What the page shows about the wallet and the chain it is on: the header's connect button and account line,
 * the wrong-network notice (with its switch button) or the current notice, the wallet card (token balance,
 * epoch, chain time, refresh) and the deployment's contracts.
 */
import { byId, h, row } from "./dom";
import { button } from "./controls";
import { formatDuration, formatTime, formatTokens } from "./format";
import { contractsOf } from "./pageConfig";
import type { Overview } from "./readOverview";
import { chainOk, refresh, switchChain } from "./session";
import { state } from "./state";

/** The header (outside <main>): the connect button's text and the account and chain line. */
export function renderHeader(): void {
  const config = state.config!;
  const account = state.account;
  const status = byId("wallet-status");
  status.replaceChildren();
  const connectButton = byId("connect") as HTMLButtonElement;
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

/** The wrong-network alert while the wallet is on another chain, else the current notice, if any. */
export function renderNotice(): HTMLElement | null {
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

export function renderWallet(o: Overview): HTMLElement {
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

/** The deployment's contracts, folded. */
export function renderDeployment(): HTMLElement {
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
