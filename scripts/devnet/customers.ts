/**
 * The customers: A (referred by R) and B deposit 500 tokens, C only 3 and runs out; then each sends signed jobs,
 * round robin over the gateways, until told to stop, counting what was done, refused (402) and failed, and of
 * the refusals those for used-up credit (EDGE_NODE_CREDIT_EXHAUSTED, decision D43).
 */
import { edgeTokenAbi, paymentVaultAbi } from "../../offchain/common/generated/abis";
import { submitJob } from "../../offchain/common/jobClient";
import type { Chain } from "./chain";
import { type Accounts, CHAIN_ID, type StepLog, TOKEN } from "./common";
import type { Node } from "./daemons";

export async function depositCustomers(chain: Chain, accounts: Accounts, log: StepLog): Promise<void> {
  const { customers, deployer, referrer } = accounts;
  const owner = chain.wallet(deployer);
  const deposits = [500n * TOKEN, 500n * TOKEN, 3n * TOKEN];
  for (const [i, customer] of customers.entries()) {
    await chain.send(
      owner.writeContract({
        address: chain.address("EdgeToken"),
        abi: edgeTokenAbi,
        functionName: "transfer",
        args: [customer.address, deposits[i]],
      }),
    );
    const w = chain.wallet(customer);
    await chain.send(
      w.writeContract({
        address: chain.address("EdgeToken"),
        abi: edgeTokenAbi,
        functionName: "approve",
        args: [chain.address("PaymentVault"), deposits[i]],
      }),
    );
    await chain.send(
      w.writeContract({
        address: chain.address("PaymentVault"),
        abi: paymentVaultAbi,
        functionName: "deposit",
        args: [deposits[i]],
      }),
    );
  }
  await chain.send(
    chain.wallet(customers[0]).writeContract({
      address: chain.address("PaymentVault"),
      abi: paymentVaultAbi,
      functionName: "setReferrer",
      args: [referrer.address],
    }),
  );
  log.step("customers A (referred), B and C (3 tokens only) deposited");
}

export type JobCounts = { ok: number; refused: number; failed: number; creditExhausted: number };

/** Starts each customer's jobs; `stop` lets the jobs in flight finish and resolves when every customer stopped. */
export function startTraffic(customers: Accounts["customers"], nodes: Node[]) {
  const gateways = nodes.filter((n) => n.role === "gateway");
  const jobs: JobCounts[] = customers.map(() => ({ ok: 0, refused: 0, failed: 0, creditExhausted: 0 }));
  let running = true;
  const loops = customers.map(async (customer, c) => {
    for (let k = 0; running; k++) {
      try {
        // Round robin over the gateways; one without an admitted host (503) sends the customer to the next.
        let result: Awaited<ReturnType<typeof submitJob>> | undefined;
        for (let attempt = 0; attempt < gateways.length && (!result || result.status === 503); attempt++) {
          const gateway = gateways[(c + k + attempt) % gateways.length];
          result = await submitJob(gateway.url, customer, CHAIN_ID, gateway.address, {
            payload: `customer ${c} job ${k}`,
            rounds: 500,
          });
        }
        if (result!.status === 200) jobs[c].ok++;
        else if (result!.status === 402) {
          jobs[c].refused++;
          if (result!.body.code === "EDGE_NODE_CREDIT_EXHAUSTED") jobs[c].creditExhausted++;
        } else jobs[c].failed++;
      } catch {
        jobs[c].failed++;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  });
  return {
    jobs,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}
