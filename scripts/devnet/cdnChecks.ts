/**
 * What content delivery must show at the end of the devnet (issue 16), gathered by `cdnOutcome`, printed by the
 * summary, then held by `checkCdn` (a DevnetError names the broken promise):
 * - Newton: every request through both front doors answered 200: no error, timeout, drop or 5xx;
 * - the gateways served exactly the requests Newton (and the devnet's two traced requests) got 200 for (their
 *   edge_cdn_requests_total for the site);
 * - customer A's bills carry `cdn` `requests` and `egressBytes` lines, and period 0's bill plus the usage billing
 *   holds for period 1 so far equal, exactly, what the gateways served (edge_cdn_requests_total and
 *   edge_cdn_egress_bytes_total for the site), once neither gateway holds unsent usage;
 * - the fast host's score is above each of its same-gateway peers' in every epoch;
 * - customer A's `dns` `queries` lines equal the queries of its zone the stargate answered (dns.ts's digs).
 */
import { DevnetError, waitFor } from "./common";
import { EVICTED, FAST_CAPACITY, FAST_HOST, SITE, capacityOf, gatewayOf } from "./cdn";
import type { Node } from "./daemons";
import type { LoadPlan, LoadRow } from "./load";
import type { Probe } from "./trace";
import { type ViewCustomer, type YieldRow, billingSession, getJson } from "./observe";

interface Quantities {
  requests: bigint;
  egressBytes: bigint;
}

export interface CdnOutcome {
  newton: LoadRow[];
  /** The devnet's own traced requests (trace.ts): served and billed too. */
  probes: Probe[];
  /** The devnet's HTTPS checks' requests (https.ts), every one answered 200: served and billed too. */
  httpsRequests: number;
  /** Per gateway: its no-store rate and its hosts' slots once host-1 left. */
  busy: Array<{ gateway: string; rate: number; slots: number }>;
  /** What the gateways served for the site, summed over both (their metrics). */
  served: Quantities;
  /** The site's requests the gateways served, by the hosts' cache outcome (hit, miss, ...). */
  byCache: Record<string, number>;
  /** Jobs each host returned for sites, by host name (its gateway's edge_cdn_host_jobs_total). */
  hostJobs: Record<string, number>;
  /** Mean wait of a site's job in each gateway's queue, ms. */
  queueWaitMs: Record<string, number>;
  /** Customer A's cdn lines: in period 0's bill, and in billing's usage of period 1 so far. */
  billed: { p0: Quantities; p1: Quantities; p0Amounts: Quantities };
  /** Customer A's `dns` `queries` (Edge DNS, its zone's answered queries), period 0's bill and period 1 so far. */
  dnsQueries: bigint;
  spread: Spread;
}

export interface Spread {
  fast: string;
  gateway: string;
  peers: string[];
  /** Per epoch: the fast host's score, its peers', and fast / the peers' mean. */
  epochs: Array<{ epoch: number; fast: number; peers: number[]; ratio: number }>;
  /** Accrued yield (equal stakes), fast / the peers' mean. */
  yieldRatio: number;
  fastYield: bigint;
  peersYield: bigint[];
}

/** The Prometheus samples of `metric` (text format), with their labels. */
async function samples(url: string, metric: string): Promise<Array<{ labels: string; value: number }>> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const out = [];
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match && match[1] === metric) out.push({ labels: match[2] ?? "", value: Number(match[3]) });
  }
  return out;
}

const sum = (xs: Array<{ value: number }>) => xs.reduce((s, x) => s + x.value, 0);
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

export async function cdnOutcome(
  network: { nodes: Node[]; epochs: number; billingUrl: string; customerA: ViewCustomer; yieldRows: YieldRow[] },
  load: { plan: LoadPlan; rows: LoadRow[]; probes: Probe[]; httpsRequests: number },
): Promise<CdnOutcome> {
  const newton = load.rows;
  const { nodes, billingUrl, customerA } = network;
  const gateways = nodes.filter((n) => n.role === "gateway");
  await waitFor(
    "the gateways to deliver their usage to billing",
    async () => {
      for (const g of gateways) {
        const status = await getJson(`${g.url}/status`);
        if (status.gateway.pendingUsage !== 0 || status.outboxPending !== 0) return false;
      }
      return true;
    },
    30_000,
  );
  const served = { requests: 0n, egressBytes: 0n };
  const hostJobs: Record<string, number> = {};
  const byCache: Record<string, number> = {};
  const queueWaitMs: Record<string, number> = {};
  const site = `site="${SITE.id}"`;
  for (const g of gateways) {
    const requests = (await samples(g.url, "edge_cdn_requests_total")).filter((s) => s.labels.includes(site));
    served.requests += BigInt(sum(requests));
    for (const { labels, value } of requests) {
      const cache = /cache="([a-z]+)"/.exec(labels)?.[1] ?? "none";
      byCache[cache] = (byCache[cache] ?? 0) + value;
    }
    served.egressBytes += BigInt(
      sum((await samples(g.url, "edge_cdn_egress_bytes_total")).filter((s) => s.labels.includes(site))),
    );
    for (const { labels, value } of await samples(g.url, "edge_cdn_host_jobs_total")) {
      const host = nodes.find((n) => labels.toLowerCase().includes(`"${n.address.toLowerCase()}"`));
      if (host) hostJobs[host.name] = (hostJobs[host.name] ?? 0) + value;
    }
    const waited = sum(await samples(g.url, "edge_cdn_queue_wait_seconds_sum"));
    const count = sum(await samples(g.url, "edge_cdn_queue_wait_seconds_count"));
    queueWaitMs[g.name] = count === 0 ? 0 : (waited / count) * 1000;
  }
  customerA.session ??= await billingSession(billingUrl, customerA.account);
  const base = `${billingUrl}/customers/${customerA.account.address}`;
  const bill = (await getJson(`${base}/bills/0`, customerA.session)).bill as { period: string; lines: Line[] };
  const draft = (await getJson(`${base}/usage`, customerA.session)) as { period: string; draft: { lines: Line[] } };
  if (draft.period === bill.period) throw new DevnetError(`billing's current period is still ${bill.period}`);
  const busy = load.plan.gateways.map((g) => ({
    gateway: g.name,
    rate: g.liveRate,
    slots: nodes
      .filter((n) => n.role === "host" && n.name !== EVICTED && gatewayOf(nodes, n.name) === g.name)
      .reduce((sum, n) => sum + capacityOf(n.name), 0),
  }));
  return {
    newton,
    probes: load.probes,
    httpsRequests: load.httpsRequests,
    busy,
    served,
    byCache,
    hostJobs,
    queueWaitMs,
    billed: {
      p0: cdnLines(bill.lines, "quantity"),
      p1: cdnLines(draft.draft.lines, "quantity"),
      p0Amounts: cdnLines(bill.lines, "amount"),
    },
    dnsQueries: dnsQueries(bill.lines) + dnsQueries(draft.draft.lines),
    spread: spreadOf(nodes, network.epochs, network.yieldRows),
  };
}

interface Line {
  service: string;
  metric: string;
  quantity: string;
  amount: string;
}

const dnsQueries = (lines: Line[]): bigint =>
  BigInt(lines.find((l) => l.service === "dns" && l.metric === "queries")?.quantity ?? 0);

const cdnLines = (lines: Line[], field: "quantity" | "amount"): Quantities => {
  const of = (metric: string) => BigInt(lines.find((l) => l.service === "cdn" && l.metric === metric)?.[field] ?? 0);
  return { requests: of("requests"), egressBytes: of("egressBytes") };
};

function spreadOf(nodes: Node[], epochs: number, rows: YieldRow[]): Spread {
  const gateway = gatewayOf(nodes, FAST_HOST);
  const peers = nodes
    .filter((n) => n.role === "host" && n.name !== FAST_HOST && gatewayOf(nodes, n.name) === gateway)
    .map((n) => n.name);
  const row = (name: string) => rows.find((r) => r.node === name)!;
  const score = (name: string, epoch: number) => row(name).scores[`epoch ${epoch}`] ?? 0;
  const perEpoch = Array.from({ length: epochs }, (_, epoch) => {
    const fast = score(FAST_HOST, epoch);
    const peerScores = peers.map((p) => score(p, epoch));
    return { epoch, fast, peers: peerScores, ratio: fast / mean(peerScores) };
  });
  const peersYield = peers.map((p) => row(p).accrued);
  const fastYield = row(FAST_HOST).accrued;
  return {
    fast: FAST_HOST,
    gateway,
    peers,
    epochs: perEpoch,
    yieldRatio: Number(fastYield) / mean(peersYield.map(Number)),
    fastYield,
    peersYield,
  };
}

/** Throws the first broken content delivery promise. */
export function checkCdn(outcome: CdnOutcome, zoneQueries: number): void {
  const { newton, served, billed, spread } = outcome;
  for (const row of newton) {
    const errors = Object.values(row.errors).reduce((s, n) => s + (n ?? 0), 0);
    const non200 = Object.entries(row.statuses).filter(([status]) => status !== "200");
    if (errors > 0 || row.dropped > 0 || non200.length > 0)
      throw new DevnetError(
        `newton through ${row.gateway} (${row.class}): ${errors} errors ${JSON.stringify(row.errors)}, ` +
          `${row.dropped} dropped, statuses ${JSON.stringify(row.statuses)}`,
      );
  }
  for (const p of outcome.probes)
    if (p.status !== 200) throw new DevnetError(`the traced request for ${p.path} was answered ${p.status}`);
  const ok =
    newton.reduce((s, row) => s + (row.statuses["200"] ?? 0), 0) + outcome.probes.length + outcome.httpsRequests;
  if (BigInt(ok) !== served.requests)
    throw new DevnetError(
      `newton, the traced and the HTTPS requests got ${ok} responses 200 but the gateways served ${served.requests} ` +
        "requests",
    );
  if (billed.p0.requests === 0n || billed.p0.egressBytes === 0n)
    throw new DevnetError("customer A's bill for period 0 has no cdn requests or egressBytes line");
  for (const metric of ["requests", "egressBytes"] as const) {
    const total = billed.p0[metric] + billed.p1[metric];
    if (total !== served[metric])
      throw new DevnetError(
        `customer A was billed cdn ${metric} ${billed.p0[metric]} (period 0) + ${billed.p1[metric]} (period 1 so ` +
          `far) = ${total}, but the gateways served ${served[metric]}`,
      );
  }
  if (outcome.dnsQueries !== BigInt(zoneQueries))
    throw new DevnetError(
      `customer A was billed dns queries ${outcome.dnsQueries}, but the stargate answered ${zoneQueries} of its zone's`,
    );
  for (const e of spread.epochs) {
    if (!e.peers.every((peer) => e.fast > peer))
      throw new DevnetError(
        `epoch ${e.epoch}: ${spread.fast} (capacity ${FAST_CAPACITY}) scored ${e.fast}, not above its peers on ` +
          `${spread.gateway} (${spread.peers.map((p, i) => `${p} capacity ${capacityOf(p)}: ${e.peers[i]}`).join(", ")})`,
      );
  }
}
