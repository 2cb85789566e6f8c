/**
 * A node's load, as it reports it in its /ready answer's `x-edge-load` header (issue 20, D71) and the stargates'
 * health probes read it: jobs in flight, the capacity it offers (a host: the jobs it runs at once; a gateway: its
 * linked hosts' total), jobs waiting in its queue (a gateway's; 0 for others) and the p99 of its recent work (ms,
 * node/latencyWindow.ts). Stargates use it to spill dynamic sites between regions in DNS answers (dnsSpill.ts) and
 * to show capacity used per region. Self-reported and unsigned, like the readiness it travels with: a node can
 * only misstate its own load, which moves traffic to or away from itself, never to another node.
 *
 *   x-edge-load: inflight=3;capacity=64;queue=0;p99=12
 *
 * The parser is strict and bounded (128 characters, the four fields once each, integers up to 10^9): anything else
 * is no report at all, never an error.
 */
export interface LoadReport {
  inFlight: number;
  capacity: number;
  queueDepth: number;
  p99Ms: number;
}

export const LOAD_HEADER = "x-edge-load";
const MAX_HEADER = 128;
const MAX_VALUE = 1_000_000_000;
const FIELDS = new Map<string, keyof LoadReport>([
  ["inflight", "inFlight"],
  ["capacity", "capacity"],
  ["queue", "queueDepth"],
  ["p99", "p99Ms"],
]);

const clamp = (n: number) => Math.min(MAX_VALUE, Math.max(0, Math.round(n)));

export function formatLoadHeader(load: LoadReport): string {
  return `inflight=${clamp(load.inFlight)};capacity=${clamp(load.capacity)};queue=${clamp(load.queueDepth)};p99=${clamp(load.p99Ms)}`;
}

/** The report in a header value, or undefined when there is none or it is malformed in any way. */
export function parseLoadHeader(value: string | string[] | undefined): LoadReport | undefined {
  if (typeof value !== "string" || value.length > MAX_HEADER) return undefined;
  const out: Partial<LoadReport> = {};
  const parts = value.split(";");
  if (parts.length !== 4) return undefined;
  for (const part of parts) {
    const match = /^\s*([a-z0-9]+)=(\d{1,10})\s*$/.exec(part);
    const key = match ? FIELDS.get(match[1]) : undefined;
    if (!match || !key || out[key] !== undefined) return undefined;
    const n = Number(match[2]);
    if (n > MAX_VALUE) return undefined;
    out[key] = n;
  }
  return out as LoadReport;
}
