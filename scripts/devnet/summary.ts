/** What the devnet prints at the end: what happened and what was checked, and with --keep-running every endpoint. */
import { FAST_CAPACITY, SITE, capacityOf } from "./cdn";
import type { CdnOutcome } from "./cdnChecks";
import type { Outcome } from "./checks";
import { LIVE_LATENCY_MS } from "./origin";
import { type TracedPath, describePath } from "./trace";
import type { Accounts } from "./common";
import type { JobCounts } from "./customers";
import type { Node, Services } from "./daemons";
import type { HttpsShown } from "./https";

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

/** Content delivery: Newton's figures per gateway, the fast host's spread, the site owner's cdn lines. */
export function printCdn(
  cdn: CdnOutcome,
  hosts: number,
  traces: { paths: TracedPath[]; spans: Array<{ traceId: string }> },
  nodes: Node[],
): void {
  const { newton, served, billed, spread } = cdn;
  console.log(
    `\ncontent delivery: ${SITE.hostname} through 2 gateways and ${hosts} hosts; Newton (open loop; latency and ` +
      "TTFB from each request's planned start):",
  );
  console.table(
    newton.map((row) => ({
      gateway: row.gateway,
      paths: row.class === "live" ? "/live/ (no-store)" : "/static/ (cached)",
      requests: row.planned,
      statuses: Object.entries(row.statuses)
        .map(([status, n]) => `${status}: ${n}`)
        .join(", "),
      errors: Object.values(row.errors).reduce((sum, n) => sum + (n ?? 0), 0) + row.dropped,
      "latency p50/p99 ms": `${row.latencyMs.p50.toFixed(1)} / ${row.latencyMs.p99.toFixed(1)}`,
      "TTFB p50/p99 ms": `${row.ttfbMs.p50.toFixed(1)} / ${row.ttfbMs.p99.toFixed(1)}`,
    })),
  );
  const busy = cdn.busy.map((b) => {
    const slots = (b.rate * LIVE_LATENCY_MS) / 1000;
    return `${b.gateway} ${b.rate}/s x ${LIVE_LATENCY_MS} ms = ${slots} of ${b.slots} slots (${Math.round((100 * slots) / b.slots)}%)`;
  });
  console.log(`no-store jobs offered (once host-1 left): ${busy.join(", ")}`);
  const jobs = Object.entries(cdn.hostJobs)
    .sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }))
    .map(([host, n]) => `${host} ${n}`);
  const waits = Object.entries(cdn.queueWaitMs).map(([g, ms]) => `${g} ${ms.toFixed(1)} ms`);
  const cache = Object.entries(cdn.byCache).map(([outcome, n]) => `${outcome} ${n}`);
  console.log(
    `site jobs per host: ${jobs.join(", ")}; hosts' cache: ${cache.join(", ")}; mean queue wait: ${waits.join(", ")}`,
  );
  for (const e of spread.epochs) {
    const peers = spread.peers.map((p, i) => `${p} (capacity ${capacityOf(p)}) ${e.peers[i]}`).join(", ");
    console.log(
      `epoch ${e.epoch}: ${spread.fast} (capacity ${FAST_CAPACITY}): score ${e.fast} = ${e.ratio.toFixed(2)}x ` +
        `its peers' mean on ${spread.gateway} (${peers})`,
    );
  }
  console.log(
    `${spread.fast}'s accrued yield ${tokens(spread.fastYield)} = ${spread.yieldRatio.toFixed(2)}x its peers' mean ` +
      `(${spread.peersYield.map(tokens).join(", ")}; equal stakes): the faster host earns more`,
  );
  console.log(
    `customer A's bill for period 0: cdn requests ${billed.p0.requests} (${tokens(billed.p0Amounts.requests)} tokens), ` +
      `cdn egressBytes ${billed.p0.egressBytes} (${tokens(billed.p0Amounts.egressBytes)} tokens); period 1 so far ` +
      `${billed.p1.requests} requests, ${billed.p1.egressBytes} bytes: together exactly what the gateways served ` +
      `(${served.requests} requests, ${served.egressBytes} bytes), and Newton's responses 200 (and the 2 traced` +
      `${cdn.httpsRequests > 0 ? ` and the ${cdn.httpsRequests} HTTPS checks` : ""})`,
  );
  console.log(
    `customer A's dns queries billed: ${cdn.dnsQueries} (the stargate's answers to its zone customer-a.test, sent ` +
      "to billing as the stargate's signed usage)",
  );
  const names = new Map(nodes.map((n) => [n.address.toLowerCase(), n.name]));
  const traceIds = new Set(traces.spans.map((span) => span.traceId)).size;
  console.log(
    `one site request's path from its trace (the OTLP receiver got ${traces.spans.length} spans of ${traceIds} ` +
      "traces from the gateways and hosts: 1% of the load's requests and the traced ones):",
  );
  for (const path of traces.paths) for (const line of describePath(path, "gateway-1", names)) console.log(`  ${line}`);
}

/** HTTPS at every gateway (issue 19): the URLs, what curl got verifying against Pebble's root, days to expiry. */
export function printHttps(https: HttpsShown): void {
  if (!https.on) {
    console.log(`\nHTTPS: off, ${https.reason}`);
    return;
  }
  console.log(`\nHTTPS at every gateway (certificate from Pebble through the certificate service):`);
  for (const g of https.gateways)
    console.log(
      `  ${g.name} ${g.url} at ${g.ip}: ${g.status} verified against Pebble's root (curl --cacert ${https.rootFile} ` +
        `--resolve ${new URL(g.url).host}:${g.ip} ${g.url}); orders issued ${g.ordersIssued}, challenge requests ` +
        `answered ${g.challengesServed}`,
    );
  console.log(
    `  edge_cert_days_to_expiry ${https.daysToExpiry.toFixed(2)} at the certificate service; orders issued ` +
      `${https.issued}; issuer ${https.gateways[0]?.issuer}`,
  );
}

const tokens = (amount: bigint) => (Number(amount) / 1e18).toFixed(6);

export function printEndpoints(rpc: string, services: Services): void {
  const { oracleUrl, billingUrl, consoleUrl, nodes, originUrl, frontDoors } = services;
  console.log("\nthe network keeps running (Ctrl-C stops it):");
  console.log(`  chain   ${rpc}`);
  console.log(`  oracle  ${oracleUrl} (metrics ${oracleUrl}/metrics)`);
  console.log(`  billing ${billingUrl} (metrics ${billingUrl}/metrics)`);
  console.log(`  console ${consoleUrl}`);
  for (const n of nodes) console.log(`  ${n.name.padEnd(9)} ${n.url} (metrics ${n.url}/metrics)`);
  for (const [name, url] of Object.entries(frontDoors))
    console.log(
      `  site      ${url} with Host: ${SITE.hostname} (${name}'s front door; curl -H 'host: ${SITE.hostname}')`,
    );
  if (services.certs.on) {
    const { certs } = services;
    console.log(`  certs     ${certs.url} (metrics ${certs.url}/metrics; Pebble ${certs.directory})`);
    for (const n of nodes.filter((g) => g.role === "gateway")) {
      const ip = new URL(n.url).hostname;
      console.log(
        `  https     https://${SITE.hostname}:${certs.tlsPort}/ at ${ip} (${n.name}; curl --cacert ${certs.rootFile} ` +
          `--resolve ${SITE.hostname}:${certs.tlsPort}:${ip})`,
      );
    }
  } else console.log(`  https     off: ${services.certs.reason}`);
  console.log(`  origin    ${originUrl} (/static/1k, /static/16k, /static/256k cacheable; /live/* no-store)`);
}
