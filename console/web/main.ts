/**
 * The Console page (the bundle's entry point): a wallet user's stakes, devices, earnings and prepaid balance.
 * Talks to the chain only through the injected EIP-1193 wallet; the server gives it the chain id and the address
 * book (/config.json).
 *
 * The page is rendered from one state object (state.ts): every change re-renders <main>, keeping what the user
 * typed (drafts) and where the keyboard focus was. The parts: the wallet connection and chain check
 * (session.ts), the header, notices and wallet card (walletView.ts), the stakes (stakes.ts, stakeCreate.ts,
 * earnings.ts), the customer's payments (payments.ts); each transaction's status line (txStatus.ts); and, with or
 * without a wallet, the map of regions (regions.ts, from the server's GET /api/regions).
 */
import { byId, h } from "./dom";
import { renderCustomer } from "./payments";
import { REFRESH_MS, loadRegions, renderRegions } from "./regions";
import type { ConsoleConfig } from "./pageConfig";
import { connect } from "./session";
import { renderStakes } from "./stakes";
import { setRenderer, state } from "./state";
import { renderDeployment, renderHeader, renderNotice, renderWallet } from "./walletView";

function render(): void {
  if (!state.config) return;
  const focusedId = document.activeElement instanceof HTMLElement ? document.activeElement.id : "";
  renderHeader();
  const main = byId("app");
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
  parts.push(renderRegions(), renderDeployment());
  main.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
  main.setAttribute("aria-busy", state.loading ? "true" : "false");
  if (focusedId) {
    const again = document.getElementById(focusedId);
    if (again && again !== document.activeElement) again.focus();
  }
}

async function start(): Promise<void> {
  setRenderer(render);
  byId("connect").addEventListener("click", () => void connect());
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
    state.config = (await response.json()) as ConsoleConfig;
  } catch (error) {
    byId("app").replaceChildren(
      h(
        "p",
        { class: "notice notice-error", role: "alert" },
        `The Console cannot load its configuration: ${(error as Error).message}`,
      ),
    );
    return;
  }
  (byId("connect") as HTMLButtonElement).disabled = false;
  render();
  void loadRegions();
  setInterval(() => void loadRegions(), REFRESH_MS);
}

void start();
