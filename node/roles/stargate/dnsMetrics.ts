/**
 * Edge DNS metrics (D57), on the node's registry: queries by rcode and kind (zone, site, refused, malformed),
 * truncations, drops by reason (rate: a client over its budget; tcp_cap: a connection over the caps; tcp_evicted:
 * an idle connection closed at the cap for a new one; tcp_deadline: a message not whole in time; rrl: an answer
 * over the response rate limit; unreadable: shorter than a header or not a query), RRL's truncated answers,
 * queries answered but not billed (a zone over its billed rate), whether the stargate is in its serving group, zones by state
 * and the time to answer.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

import type { Kind } from "./dnsAnswer";

const RCODES: Record<number, string> = {
  0: "NOERROR",
  1: "FORMERR",
  2: "SERVFAIL",
  3: "NXDOMAIN",
  4: "NOTIMP",
  5: "REFUSED",
  16: "BADVERS",
};

export type DropReason = "rate" | "tcp_cap" | "tcp_evicted" | "tcp_deadline" | "rrl" | "unreadable";
const REASONS: DropReason[] = ["rate", "tcp_cap", "tcp_evicted", "tcp_deadline", "rrl", "unreadable"];

export interface DnsMetrics {
  answered(rcode: number, kind: Kind, seconds: number, truncated: boolean): void;
  dropped(reason: DropReason): void;
  /** An answer over the response rate limit sent truncated (R18-6). */
  slipped(): void;
  /** A zone's query answered but not billed: the zone is over its billed rate (R18-6). */
  unbilled(): void;
}

export interface DnsGauges {
  inGroup(): boolean;
  zones(): { served: number; invalid: number };
}

export function createDnsMetrics(registry: Registry, gauges: DnsGauges): DnsMetrics {
  const queries = new Counter({
    name: "edge_dns_queries_total",
    help: "DNS queries answered, by response code and kind (zone, site, refused, malformed)",
    labelNames: ["rcode", "kind"] as const,
    registers: [registry],
  });
  const truncated = new Counter({
    name: "edge_dns_truncated_total",
    help: "UDP answers sent truncated (TC) for being over 512 bytes or the client's EDNS size",
    registers: [registry],
  });
  const dropped = new Counter({
    name: "edge_dns_dropped_total",
    help: "DNS messages or TCP connections dropped, by reason (rate, tcp_cap, tcp_evicted, tcp_deadline, rrl, unreadable)",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const slipped = new Counter({
    name: "edge_dns_rrl_slipped_total",
    help: "Answers over the response rate limit sent truncated (TC) so a real client retries over TCP",
    registers: [registry],
  });
  const unbilled = new Counter({
    name: "edge_dns_unbilled_total",
    help: "Zones' queries answered but not billed: the zone was over its billed queries a second",
    registers: [registry],
  });
  const seconds = new Histogram({
    name: "edge_dns_answer_seconds",
    help: "Time to build and encode a DNS answer",
    buckets: [0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01],
    registers: [registry],
  });
  new Gauge({
    name: "edge_dns_in_group",
    help: "1 while the stargate is announced in its DNS serving group",
    registers: [registry],
    collect() {
      this.set(gauges.inGroup() ? 1 : 0);
    },
  });
  new Gauge({
    name: "edge_dns_zones",
    help: "Customers' zones in the configuration, by state (served, invalid: not served)",
    labelNames: ["state"] as const,
    registers: [registry],
    collect() {
      const { served, invalid } = gauges.zones();
      this.set({ state: "served" }, served);
      this.set({ state: "invalid" }, invalid);
    },
  });
  for (const reason of REASONS) dropped.inc({ reason }, 0);
  return {
    answered(rcode, kind, s, tc) {
      queries.inc({ rcode: RCODES[rcode] ?? String(rcode), kind });
      seconds.observe(s);
      if (tc) truncated.inc();
    },
    dropped: (reason) => dropped.inc({ reason }),
    slipped: () => slipped.inc(),
    unbilled: () => unbilled.inc(),
  };
}
