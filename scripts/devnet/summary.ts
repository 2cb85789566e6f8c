/** What the devnet prints at the end: what happened and what was checked, and with --keep-running every endpoint. */
import type { Outcome } from "./checks";
import type { Accounts } from "./common";
import type { JobCounts } from "./customers";
import type { Services } from "./daemons";

export function printSummary(
  outcome: Outcome,
  run: { customers: Accounts["customers"]; jobs: JobCounts[]; evictionMs: number; dir: string },
): void {
  const { yieldRows, claimable, bills, period, referral } = outcome;
  const { customers, jobs } = run;
  console.log("\ndevnet summary");
  console.table(
    yieldRows.map((row) => ({
      node: row.node,
      ...row.scores,
      "accrued before claim": (Number(row.accrued) / 1e18).toFixed(6),
      "formula (PROTOCOL.md)": (Number(row.expected) / 1e18).toFixed(6),
    })),
  );
  console.log("every stake's accrued yield equals the formula applied to its published scores, to the base unit");
  console.log(`yield claimed for host-2's stake: ${(Number(claimable) / 1e18).toFixed(6)} tokens`);
  console.table(
    bills.map((b) => ({
      customer: "ABC"[customers.findIndex((c) => c.address === b.args.customer)],
      billHash: b.args.billHash,
      amount: (Number(b.args.amount) / 1e18).toFixed(3),
      charged: (Number(b.args.charged) / 1e18).toFixed(3),
      shortfall: (Number(b.args.shortfall) / 1e18).toFixed(3),
    })),
  );
  console.log(`billing period 0: ${period.settled} bills settled, charged ${Number(period.charged) / 1e18} tokens`);
  console.log(`referral credit of customer A's referrer: ${(Number(referral) / 1e18).toFixed(3)} tokens`);
  console.log(`host-1 evicted itself ${run.evictionMs} ms after its unstake and ran no job after`);
  console.log(
    `customers' jobs (ok / refused / failed): ${jobs.map((j, i) => `${"ABC"[i]} ${j.ok}/${j.refused}/${j.failed}`).join(", ")}`,
  );
  const c = bills.find((b) => b.args.customer === customers[2].address);
  console.log(
    `customer C refused (402) once its 3-token deposit was used up: ${jobs[2].ok} jobs served, ` +
      `${jobs[2].creditExhausted} refused for credit; billed ${c ? (Number(c.args.amount) / 1e18).toFixed(3) : "?"} ` +
      `tokens (3 deposited + 1 free), short ${c ? (Number(c.args.shortfall) / 1e18).toFixed(3) : "?"}`,
  );
  console.log(`tokens conserved: ${outcome.holders} holders hold exactly the supply; billing's bills match the chain`);
  console.log(`logs: ${run.dir}`);
}

export function printEndpoints(rpc: string, services: Services): void {
  const { oracleUrl, billingUrl, consoleUrl, nodes } = services;
  console.log("\nthe network keeps running (Ctrl-C stops it):");
  console.log(`  chain   ${rpc}`);
  console.log(`  oracle  ${oracleUrl} (metrics ${oracleUrl}/metrics)`);
  console.log(`  billing ${billingUrl} (metrics ${billingUrl}/metrics)`);
  console.log(`  console ${consoleUrl}`);
  for (const n of nodes) console.log(`  ${n.name.padEnd(9)} ${n.url} (metrics ${n.url}/metrics)`);
}
