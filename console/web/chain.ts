/**
 * What the Console reads from and sends to the contracts, through the user's wallet (EIP-1193): no DOM here.
 * Reads are eth_call / eth_getLogs through the wallet's provider; every write is simulated first (so a revert
 * is shown in words before the wallet asks to sign), then sent, then awaited to its receipt.
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
  decodeFunctionData,
  defineChain,
  parseSignature,
  recoverTypedDataAddress,
  zeroAddress,
} from "viem";

import { edgeTokenAbi, paymentVaultAbi, rewardsManagerAbi, stakeManagerAbi } from "../../offchain/common/generated/abis";
import { DEVICE_CONSENT_TYPES, type SignedDeviceConsent } from "../../offchain/common/consent";
import { PERMIT_TYPES } from "../../offchain/common/permit";
import { unpackEntries } from "../../offchain/common/scoreBatch";
import { StakeType } from "../../offchain/common/stakeMap";
import { epochReward } from "../../offchain/common/yield";

/**
 * The address book as the page receives it (the shape of offchain/common/addressBook.ts, which reads files and
 * so cannot be bundled for the browser; the server validated it with parseAddressBook).
 */
export interface PageAddressBook {
  chainId: number;
  contracts: Partial<
    Record<"EdgeToken" | "TokenMigration" | "StakeManager" | "RewardsManager" | "PaymentVault", ContractEntry>
  >;
}

interface ContractEntry {
  address: string;
  blockNumber: number;
}

/** What the server hands the page at /config.json. */
export interface ConsoleConfig {
  chainId: number;
  rpcUrl: string;
  addresses: PageAddressBook;
}

export interface Contracts {
  token: Address;
  staking: Address;
  rewards?: Address;
  vault?: Address;
  stakingFromBlock: bigint;
  rewardsFromBlock: bigint;
}

export function contractsOf(book: PageAddressBook): Contracts {
  const c = book.contracts;
  if (!c.EdgeToken || !c.StakeManager) throw new Error("the address book has no EdgeToken or StakeManager");
  return {
    token: c.EdgeToken.address as Address,
    staking: c.StakeManager.address as Address,
    rewards: c.RewardsManager?.address as Address | undefined,
    vault: c.PaymentVault?.address as Address | undefined,
    stakingFromBlock: BigInt(c.StakeManager.blockNumber),
    rewardsFromBlock: BigInt(c.RewardsManager?.blockNumber ?? c.StakeManager.blockNumber),
  };
}

export interface StakeRow {
  id: bigint;
  type: number;
  status: number;
  amount: bigint;
  device: Address | null;
  admitted: boolean;
  minimumMet: boolean;
  minimumStake: bigint;
  createdAt: bigint;
  activeSince: bigint;
  unlockAt: bigint;
  releasedAt: bigint;
  earnings?: Earnings;
}

export interface Earnings {
  accrued: bigint;
  lastScoredEpoch: bigint | null;
  /** The score of the last scored epoch (basis points of the peer average), when it can be read. */
  score: bigint | null;
  /** APR at `score` (or at the average score when there is none), with the stake's tenure now. */
  aprBps: bigint;
  scoreUsed: bigint;
  /** The yield one epoch at `scoreUsed` would earn the stake at its current amount. */
  perEpoch: bigint;
}

export interface CustomerView {
  balance: bigint;
  spendingCap: bigint;
  referrer: Address | null;
  outstanding: bigint;
  goodStanding: boolean;
  referralCredit: bigint;
  pendingWithdrawal: { amount: bigint; executableAt: bigint } | null;
  lastSettledPeriod: bigint | null;
}

export interface Overview {
  blockTime: bigint;
  walletBalance: bigint;
  expressReleaseFeeBps: bigint;
  minimums: bigint[];
  unbondingPeriods: bigint[];
  stakes: StakeRow[];
  epoch?: { current: bigint; start: bigint; end: bigint; duration: bigint };
  customer?: CustomerView;
}

export type TxStage = { stage: "signing" } | { stage: "pending"; hash: Hex };

export class EdgeChain {
  readonly publicClient: PublicClient;
  readonly walletClient: WalletClient;
  readonly chain: Chain;
  private readonly scoreCache = new Map<string, Map<bigint, bigint>>();

  constructor(
    readonly provider: EIP1193Provider,
    readonly config: ConsoleConfig,
    readonly account: Address,
  ) {
    this.chain = defineChain({
      id: config.chainId,
      name: `Edge chain ${config.chainId}`,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [config.rpcUrl] } },
    });
    const transport = custom(provider, { retryCount: 0 });
    this.publicClient = createPublicClient({ chain: this.chain, transport, pollingInterval: 250 }) as PublicClient;
    this.walletClient = createWalletClient({ chain: this.chain, transport, account });
  }

  get contracts(): Contracts {
    return contractsOf(this.config.addresses);
  }

  // ------------------------------------------------------------------------------------------ reads

  async overview(): Promise<Overview> {
    const c = this.contracts;
    const read = this.publicClient.readContract.bind(this.publicClient);
    const [block, walletBalance, expressReleaseFeeBps, ...typeParams] = await Promise.all([
      this.publicClient.getBlock({ blockTag: "latest" }),
      read({ address: c.token, abi: edgeTokenAbi, functionName: "balanceOf", args: [this.account] }),
      read({ address: c.staking, abi: stakeManagerAbi, functionName: "expressReleaseFeeBps" }),
      ...[0, 1, 2].map((t) =>
        read({ address: c.staking, abi: stakeManagerAbi, functionName: "typeParams", args: [t] }),
      ),
    ]);
    const minimums = typeParams.map((p) => BigInt(p.minimumStake));
    const unbondingPeriods = typeParams.map((p) => BigInt(p.unbondingPeriod));
    const overview: Overview = {
      blockTime: block.timestamp,
      walletBalance,
      expressReleaseFeeBps,
      minimums,
      unbondingPeriods,
      stakes: await this.stakes(block.timestamp),
    };
    if (c.rewards) {
      const [current, duration] = await Promise.all([
        read({ address: c.rewards, abi: rewardsManagerAbi, functionName: "currentEpoch" }),
        read({ address: c.rewards, abi: rewardsManagerAbi, functionName: "epochDuration" }),
      ]);
      const [start, end] = await read({
        address: c.rewards,
        abi: rewardsManagerAbi,
        functionName: "epochWindow",
        args: [current],
      });
      overview.epoch = { current, start, end, duration };
    }
    if (c.vault) overview.customer = await this.customer();
    return overview;
  }

  /** Every stake the account created (from StakeCreated logs), newest first, with its earnings. */
  async stakes(now: bigint): Promise<StakeRow[]> {
    const c = this.contracts;
    const logs = await this.publicClient.getContractEvents({
      address: c.staking,
      abi: stakeManagerAbi,
      eventName: "StakeCreated",
      args: { owner: this.account },
      fromBlock: c.stakingFromBlock,
      toBlock: "latest",
    });
    const ids = logs.map((log) => log.args.stakeId as bigint).reverse();
    return Promise.all(ids.map((stakeId) => this.stake(stakeId, now)));
  }

  async stake(stakeId: bigint, now: bigint): Promise<StakeRow> {
    const c = this.contracts;
    const s = await this.publicClient.readContract({
      address: c.staking,
      abi: stakeManagerAbi,
      functionName: "getStake",
      args: [stakeId],
    });
    const device = s.device === zeroAddress ? null : s.device;
    const [params, deviceStatus] = await Promise.all([
      this.publicClient.readContract({
        address: c.staking,
        abi: stakeManagerAbi,
        functionName: "typeParams",
        args: [s.stakeType],
      }),
      device
        ? this.publicClient.readContract({
            address: c.staking,
            abi: stakeManagerAbi,
            functionName: "deviceStatus",
            args: [device],
          })
        : undefined,
    ]);
    const row: StakeRow = {
      id: stakeId,
      type: s.stakeType,
      status: s.status,
      amount: s.amount,
      device,
      // deviceStatus answers for the device's current stake: this one only while the device is bound to it.
      admitted: Boolean(deviceStatus && deviceStatus.stakeId === stakeId && deviceStatus.admitted),
      minimumMet: s.minimumMet,
      minimumStake: BigInt(params.minimumStake),
      createdAt: s.createdAt,
      activeSince: s.activeSince,
      unlockAt: s.unlockAt,
      releasedAt: s.releasedAt,
    };
    if (c.rewards) row.earnings = await this.earnings(row, now);
    return row;
  }

  private async earnings(row: StakeRow, now: bigint): Promise<Earnings> {
    const rewards = this.contracts.rewards!;
    const read = this.publicClient.readContract.bind(this.publicClient);
    const [accrued, [scored, lastEpoch], params, duration] = await Promise.all([
      read({ address: rewards, abi: rewardsManagerAbi, functionName: "accrued", args: [row.id] }),
      read({ address: rewards, abi: rewardsManagerAbi, functionName: "lastScoredEpoch", args: [row.id] }),
      read({ address: rewards, abi: rewardsManagerAbi, functionName: "yieldParams" }),
      read({ address: rewards, abi: rewardsManagerAbi, functionName: "epochDuration" }),
    ]);
    const score = scored ? await this.postedScore(lastEpoch, row.id) : null;
    const scoreUsed = score ?? 10_000n;
    const activeTime = row.activeSince > 0n && row.activeSince <= now ? now - row.activeSince : 0n;
    const aprBps = await read({
      address: rewards,
      abi: rewardsManagerAbi,
      functionName: "aprBps",
      args: [row.type, activeTime, scoreUsed],
    });
    const perEpoch = epochReward({
      stakeType: row.type as StakeType,
      effectiveStake: row.amount,
      activeSince: row.activeSince,
      epochEnd: row.activeSince > 0n ? now : 0n,
      epochDuration: duration,
      score: scoreUsed > 20_000n ? 20_000n : scoreUsed,
      params: {
        hostBaseAprBps: BigInt(params.hostBaseAprBps),
        gatewayBaseAprBps: BigInt(params.gatewayBaseAprBps),
        stargateBaseAprBps: BigInt(params.stargateBaseAprBps),
        tenureStepBps: BigInt(params.tenureStepBps),
        maxTenureBonusBps: BigInt(params.maxTenureBonusBps),
      },
    });
    return { accrued, lastScoredEpoch: scored ? lastEpoch : null, score, aprBps, scoreUsed, perEpoch };
  }

  /**
   * The score a stake got in an epoch, read from the posted batches' calldata (the contract keeps no per-stake
   * score). Null when the batches were posted through another contract (a multisig) and cannot be decoded.
   */
  private async postedScore(epoch: bigint, stakeId: bigint): Promise<bigint | null> {
    const key = epoch.toString();
    let scores = this.scoreCache.get(key);
    if (!scores) {
      scores = new Map();
      const logs = await this.publicClient.getContractEvents({
        address: this.contracts.rewards!,
        abi: rewardsManagerAbi,
        eventName: "ScoresPosted",
        args: { epoch },
        fromBlock: this.contracts.rewardsFromBlock,
        toBlock: "latest",
      });
      for (const log of logs) {
        try {
          const tx = await this.publicClient.getTransaction({ hash: log.transactionHash });
          const call = decodeFunctionData({ abi: rewardsManagerAbi, data: tx.input });
          if (call.functionName !== "postScores") continue;
          for (const entry of unpackEntries(call.args[2])) scores.set(entry.stakeId, BigInt(entry.score));
        } catch {
          // Not a direct postScores call: the score stays unknown.
        }
      }
      this.scoreCache.set(key, scores);
    }
    return scores.get(stakeId) ?? null;
  }

  async customer(): Promise<CustomerView> {
    const vault = this.contracts.vault!;
    const read = this.publicClient.readContract.bind(this.publicClient);
    const who = this.account;
    const [balance, spendingCap, referrer, outstanding, goodStanding, referralCredit, pending, settled] =
      await Promise.all([
        read({ address: vault, abi: paymentVaultAbi, functionName: "balanceOf", args: [who] }),
        read({ address: vault, abi: paymentVaultAbi, functionName: "spendingCap", args: [who] }),
        read({ address: vault, abi: paymentVaultAbi, functionName: "referrerOf", args: [who] }),
        read({ address: vault, abi: paymentVaultAbi, functionName: "outstanding", args: [who] }),
        read({ address: vault, abi: paymentVaultAbi, functionName: "isInGoodStanding", args: [who] }),
        read({ address: vault, abi: paymentVaultAbi, functionName: "referralCredit", args: [who] }),
        read({ address: vault, abi: paymentVaultAbi, functionName: "pendingWithdrawal", args: [who] }),
        read({ address: vault, abi: paymentVaultAbi, functionName: "lastSettledPeriod", args: [who] }),
      ]);
    return {
      balance,
      spendingCap,
      referrer: referrer === zeroAddress ? null : referrer,
      outstanding,
      goodStanding,
      referralCredit,
      pendingWithdrawal: pending[0] === 0n ? null : { amount: pending[0], executableAt: pending[1] },
      lastSettledPeriod: settled[0] ? settled[1] : null,
    };
  }

  async deviceNonce(device: Address): Promise<bigint> {
    return this.publicClient.readContract({
      address: this.contracts.staking,
      abi: stakeManagerAbi,
      functionName: "deviceNonce",
      args: [device],
    });
  }

  /**
   * Checks a pasted consent before anything is sent: for this wallet, not expired, the device's current nonce,
   * and signed by the device for this chain and StakeManager. Returns a sentence for the field, or undefined.
   */
  async checkConsent(consent: SignedDeviceConsent): Promise<string | undefined> {
    if (consent.owner.toLowerCase() !== this.account.toLowerCase())
      return `This consent is for owner ${consent.owner}, not for your wallet ${this.account}: ask the operator to sign one for your address.`;
    const block = await this.publicClient.getBlock({ blockTag: "latest" });
    if (BigInt(consent.deadline) < block.timestamp)
      return `This consent expired (its deadline has passed): ask the operator for a new one.`;
    const nonce = await this.deviceNonce(consent.device as Address);
    if (BigInt(consent.nonce) !== nonce)
      return `This consent was signed for the device's nonce ${consent.nonce}, but its current nonce is ${nonce}: ask the operator for a new one.`;
    const domain = await this.domainOf(this.contracts.staking, stakeManagerAbi);
    const signer = await recoverTypedDataAddress({
      domain,
      types: DEVICE_CONSENT_TYPES,
      primaryType: "DeviceConsent",
      message: {
        device: consent.device as Address,
        owner: consent.owner as Address,
        nonce: BigInt(consent.nonce),
        deadline: BigInt(consent.deadline),
      },
      signature: consent.signature as Hex,
    }).catch(() => zeroAddress);
    if (signer.toLowerCase() !== consent.device.toLowerCase())
      return `The signature is not the device's for this network and StakeManager: ask the operator for a new consent.`;
    return undefined;
  }

  private async domainOf(address: Address, abi: typeof stakeManagerAbi | typeof edgeTokenAbi) {
    const [, name, version, chainId, verifyingContract] = await this.publicClient.readContract({
      address,
      abi: abi as typeof edgeTokenAbi,
      functionName: "eip712Domain",
    });
    return { name, version, chainId, verifyingContract };
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
      this.domainOf(token, edgeTokenAbi),
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

  // ------------------------------------------------------------------------------------------ writes

  /**
   * Simulates, sends and awaits one contract call. `onStage` hears "signing" (the wallet is asked) and
   * "pending" (with the hash). Throws on a revert (simulated or mined) with the revert data attached.
   */
  async send(
    request: { address: Address; abi: readonly unknown[]; functionName: string; args?: readonly unknown[] },
    onStage: (stage: TxStage) => void,
  ): Promise<{ hash: Hex; blockNumber: bigint }> {
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
