/**
 * The page's client of the contracts, through the user's wallet (EIP-1193): no DOM here. Reads are eth_call /
 * eth_getLogs through the wallet's provider (readOverview and the modules it uses, checkConsent); the writes are
 * here: an ERC-2612 permit signed in the wallet, and contract calls, each simulated first (so a revert is shown
 * in words before the wallet asks to sign), then sent, then awaited to its receipt.
 */
import {
  type Address,
  type Chain,
  type EIP1193Provider,
  type Hex,
  type PublicClient,
  type WalletClient,
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  parseSignature,
} from "viem";

import { edgeTokenAbi } from "../../offchain/common/generated/abis";
import type { SignedDeviceConsent } from "../../offchain/common/consent";
import { PERMIT_TYPES } from "../../offchain/common/permit";
import { PostedScores } from "../../offchain/common/postedScores";
import { type ChainReader, eip712DomainOf } from "./chainReader";
import { checkConsent } from "./checkConsent";
import { type ConsoleConfig, type Contracts, NATIVE_CURRENCY, chainName, contractsOf } from "./pageConfig";
import { type Overview, readOverview } from "./readOverview";

export type TxStage = { stage: "signing" } | { stage: "pending"; hash: Hex };

/** One contract call, chosen at run time. */
export interface ContractRequest {
  address: Address;
  abi: readonly unknown[];
  functionName: string;
  args?: readonly unknown[];
}

export class EdgeChain implements ChainReader {
  readonly publicClient: PublicClient;
  readonly walletClient: WalletClient;
  readonly chain: Chain;
  readonly postedScores?: PostedScores;

  constructor(
    readonly provider: EIP1193Provider,
    readonly config: ConsoleConfig,
    readonly account: Address,
  ) {
    this.chain = defineChain({
      id: config.chainId,
      name: chainName(config.chainId),
      nativeCurrency: NATIVE_CURRENCY,
      rpcUrls: { default: { http: [config.rpcUrl] } },
    });
    const transport = custom(provider, { retryCount: 0 });
    this.publicClient = createPublicClient({ chain: this.chain, transport, pollingInterval: 250 }) as PublicClient;
    this.walletClient = createWalletClient({ chain: this.chain, transport, account });
    const { rewards, rewardsFromBlock } = this.contracts;
    if (rewards) this.postedScores = new PostedScores(this.publicClient, rewards, rewardsFromBlock);
  }

  get contracts(): Contracts {
    return contractsOf(this.config.addresses);
  }

  /** Everything the page shows (readOverview.ts). */
  overview(): Promise<Overview> {
    return readOverview(this);
  }

  /** A sentence for the consent field when a pasted consent cannot be used, or undefined (checkConsent.ts). */
  checkConsent(consent: SignedDeviceConsent): Promise<string | undefined> {
    return checkConsent(this, consent);
  }

  /** An ERC-2612 permit for `spender`, signed in the wallet (eth_signTypedData_v4); undefined if not needed. */
  async permitFor(
    spender: Address,
    value: bigint,
  ): Promise<{ deadline: bigint; v: number; r: Hex; s: Hex } | undefined> {
    const token = this.contracts.token;
    const read = this.publicClient.readContract.bind(this.publicClient);
    const [allowance, nonce, block, domain] = await Promise.all([
      read({ address: token, abi: edgeTokenAbi, functionName: "allowance", args: [this.account, spender] }),
      read({ address: token, abi: edgeTokenAbi, functionName: "nonces", args: [this.account] }),
      this.publicClient.getBlock({ blockTag: "latest" }),
      eip712DomainOf(this, token, edgeTokenAbi),
    ]);
    if (allowance >= value) return undefined;
    const deadline = block.timestamp + 3600n;
    const signature = await this.walletClient.signTypedData({
      account: this.account,
      domain,
      types: PERMIT_TYPES,
      primaryType: "Permit",
      message: { owner: this.account, spender, value, nonce, deadline },
    });
    const { r, s, v, yParity } = parseSignature(signature);
    return { deadline, v: Number(v ?? BigInt(yParity + 27)), r, s };
  }

  /**
   * Simulates, sends and awaits one contract call. `onStage` hears "signing" (the wallet is asked) and
   * "pending" (with the hash). Throws on a revert (simulated or mined) with the revert data attached.
   */
  async send(request: ContractRequest, onStage: (stage: TxStage) => void): Promise<{ hash: Hex; blockNumber: bigint }> {
    // The ABI and function are chosen at run time, so viem's per-function typing cannot apply here.
    const { request: simulated } = await this.publicClient.simulateContract({
      ...request,
      account: this.account,
    } as never);
    onStage({ stage: "signing" });
    const hash = await this.walletClient.writeContract(simulated as never);
    onStage({ stage: "pending", hash });
    const receipt = await this.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 250 });
    if (receipt.status !== "success") {
      // Mined but reverted (the chain moved since the simulation): replay it at that block for the reason.
      await this.publicClient.simulateContract({
        ...request,
        account: this.account,
        blockNumber: receipt.blockNumber,
      } as never);
      throw new Error(`the transaction ${hash} reverted in block ${receipt.blockNumber}`);
    }
    return { hash, blockNumber: receipt.blockNumber };
  }
}
