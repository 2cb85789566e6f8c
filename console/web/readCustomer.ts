/** The connected account as a PaymentVault customer: prepaid balance, standing, cap, debt, referral, withdrawal. */
import { zeroAddress, type Address } from "viem";

import { paymentVaultAbi } from "../../offchain/common/generated/abis";
import type { ChainReader } from "./chainReader";

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

export async function readCustomer(reader: ChainReader): Promise<CustomerView> {
  const vault = reader.contracts.vault!;
  const read = reader.publicClient.readContract.bind(reader.publicClient);
  const who = reader.account;
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
