/**
 * A test EIP-1193 wallet injected into a Playwright page: `window.ethereum.request` crosses into Node
 * (page.exposeFunction), where a development key signs eth_sendTransaction, eth_signTypedData_v4 and
 * personal_sign, and every other request is forwarded to the chain's JSON-RPC URL. It answers eth_chainId with
 * whatever chain the test sets (to test the wrong-chain refusal) and emits accountsChanged / chainChanged.
 */
import type { Page } from "playwright-core";
import {
  type Address,
  type Hex,
  createWalletClient,
  defineChain,
  hexToBigInt,
  http,
  type TypedDataDefinition,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { findRevertData } from "../../console/web/errors";

type Reply = { result?: unknown; error?: { code: number; message: string; data?: unknown }; emit?: [string, unknown] };

const INIT_SCRIPT = `(() => {
  const listeners = {};
  const provider = {
    isEdgeTestWallet: true,
    async request({ method, params }) {
      const reply = await window.__edgeWalletRequest(method, params === undefined ? [] : params);
      if (reply.emit) setTimeout(() => provider.__emit(reply.emit[0], reply.emit[1]), 0);
      if (reply.error) {
        const error = new Error(reply.error.message);
        error.code = reply.error.code;
        if (reply.error.data !== undefined) error.data = reply.error.data;
        throw error;
      }
      return reply.result;
    },
    on(event, listener) {
      (listeners[event] = listeners[event] || []).push(listener);
      return provider;
    },
    removeListener(event, listener) {
      listeners[event] = (listeners[event] || []).filter((l) => l !== listener);
      return provider;
    },
    __emit(event, data) {
      for (const listener of listeners[event] || []) listener(data);
    },
  };
  window.ethereum = provider;
})();`;

export class TestWallet {
  readonly account;
  /** Every method the page asked for, in order. */
  readonly calls: string[] = [];
  private readonly wallet;

  constructor(
    key: Hex,
    private readonly rpcUrl: string,
    /** The chain the wallet says it is on (eth_chainId); the real chain is always the RPC's. */
    public chainId: number,
    private readonly realChainId: number,
  ) {
    this.account = privateKeyToAccount(key);
    const chain = defineChain({
      id: realChainId,
      name: "test",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [rpcUrl] } },
    });
    this.wallet = createWalletClient({ account: this.account, chain, transport: http(rpcUrl, { retryCount: 0 }) });
  }

  get address(): Address {
    return this.account.address;
  }

  count(method: string): number {
    return this.calls.filter((m) => m === method).length;
  }

  async install(page: Page): Promise<void> {
    await page.exposeFunction("__edgeWalletRequest", (method: string, params: unknown[]) =>
      this.handle(method, params),
    );
    await page.addInitScript(INIT_SCRIPT);
  }

  /** Emits an EIP-1193 event in the page, as a wallet does when the user switches account or chain. */
  async emit(page: Page, event: string, data: unknown): Promise<void> {
    await page.evaluate(([e, d]) => (globalThis as any).ethereum.__emit(e, d), [event, data] as const);
  }

  private async handle(method: string, params: unknown[]): Promise<Reply> {
    this.calls.push(method);
    try {
      return { ...(await this.answer(method, params)) };
    } catch (error) {
      const e = error as { code?: number; message?: string; shortMessage?: string };
      return {
        error: {
          code: typeof e.code === "number" ? e.code : -32603,
          message: e.shortMessage ?? e.message ?? String(error),
          data: findRevertData(error),
        },
      };
    }
  }

  private async answer(method: string, params: unknown[]): Promise<Reply> {
    switch (method) {
      case "eth_requestAccounts":
      case "eth_accounts":
        return { result: [this.address] };
      case "eth_chainId":
        return { result: `0x${this.chainId.toString(16)}` };
      case "wallet_switchEthereumChain": {
        const wanted = Number((params[0] as { chainId: string }).chainId);
        if (wanted !== this.realChainId) return { error: { code: 4902, message: `unknown chain ${wanted}` } };
        this.chainId = wanted;
        return { result: null, emit: ["chainChanged", `0x${wanted.toString(16)}`] };
      }
      case "eth_sendTransaction": {
        const tx = params[0] as { from: Address; to: Address; data?: Hex; value?: Hex; gas?: Hex };
        if (tx.from.toLowerCase() !== this.address.toLowerCase())
          throw Object.assign(new Error("unknown account"), { code: 4100 });
        const hash = await this.wallet.sendTransaction({
          to: tx.to,
          data: tx.data,
          value: tx.value ? hexToBigInt(tx.value) : undefined,
          gas: tx.gas ? hexToBigInt(tx.gas) : undefined,
        });
        return { result: hash };
      }
      case "eth_signTypedData_v4": {
        const [from, json] = params as [Address, string];
        if (from.toLowerCase() !== this.address.toLowerCase())
          throw Object.assign(new Error("unknown account"), { code: 4100 });
        const typed = JSON.parse(json) as TypedDataDefinition;
        return { result: await this.account.signTypedData(typed) };
      }
      case "personal_sign": {
        const [message] = params as [Hex];
        return { result: await this.account.signMessage({ message: { raw: message } }) };
      }
      default:
        return this.forward(method, params);
    }
  }

  private async forward(method: string, params: unknown[]): Promise<Reply> {
    const response = await fetch(this.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    const body = (await response.json()) as Reply;
    return body.error ? { error: body.error } : { result: body.result };
  }
}
