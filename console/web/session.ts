/**
 * The wallet connection and the chain check: connecting the injected wallet (window.ethereum), following its
 * account and chain changes, refusing any chain but the deployment's (nothing is read or sent while it is wrong),
 * asking the wallet to switch (or to add the chain), and re-reading the contracts.
 */
import type { Address, EIP1193Provider } from "viem";

import { EdgeChain } from "./chain";
import { describeFailure } from "./errors";
import { NATIVE_CURRENCY, chainName } from "./pageConfig";
import { render, state } from "./state";

declare global {
  interface Window {
    ethereum?: EIP1193Provider;
  }
}

/** Whether the account's events are subscribed to (once per page). */
let listening = false;

export async function connect(): Promise<void> {
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

/** Whether the wallet is on the deployment's chain. */
export function chainOk(): boolean {
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

/** Asks the wallet to switch to the deployment's chain, or to add it (with the Console's RPC URL) if unknown. */
export async function switchChain(): Promise<void> {
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
              chainName: chainName(config.chainId),
              nativeCurrency: NATIVE_CURRENCY,
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

/** Re-reads everything the page shows from the contracts. */
export async function refresh(): Promise<void> {
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
