/**
 * Where a DNS client is (issue 20, D69): the network configuration's regions table maps address ranges to region
 * keys ("DE/eu-central"); a query's EDNS client subnet (RFC 7871), else the resolver's own address, is looked up
 * longest prefix first. No geo database: the table is the network's, anchored like the rest of the configuration.
 *
 * - Lookup: one Map per prefix length present, probed from the longest down: O(distinct prefix lengths), at most
 *   33 for IPv4 and 129 for IPv6, whatever the table's size. An address or subnet of the wrong family, or one no
 *   range covers, has no region (answers then prefer none).
 * - A client subnet shorter than a range's prefix cannot be placed inside that range (the resolver did not say
 *   which part of its subnet the client is in): only ranges of that prefix or shorter match it.
 * - Order of regions from a client's: its own, then by the latency table ascending, then the rest by name (a
 *   stable order, so answers do not churn).
 */
import ipaddr from "ipaddr.js";

import type { RegionsConfig } from "../../../offchain/common/protocol";

interface Family {
  bits: number;
  /** prefix length -> masked address (as a bigint's hex) -> region key, the longest lengths first */
  byLength: Array<{ length: number; ranges: Map<bigint, string> }>;
}

/** The address as an unsigned integer of its family's width (IPv4-mapped IPv6 as IPv4), or undefined. */
export function addressBits(address: string): { bits: number; value: bigint } | undefined {
  if (!ipaddr.isValid(address)) return undefined;
  const parsed = ipaddr.process(address);
  let value = 0n;
  for (const byte of parsed.toByteArray()) value = (value << 8n) | BigInt(byte);
  return { bits: parsed.kind() === "ipv4" ? 32 : 128, value };
}

const mask = (value: bigint, bits: number, length: number): bigint =>
  length === 0 ? 0n : (value >> BigInt(bits - length)) << BigInt(bits - length);

export class ClientRegions {
  private readonly v4: Family = { bits: 32, byLength: [] };
  private readonly v6: Family = { bits: 128, byLength: [] };
  private readonly latency = new Map<string, Map<string, number>>();
  private readonly orders = new Map<string, readonly string[]>();

  constructor(table: RegionsConfig | undefined) {
    const lengths = { 32: new Map<number, Map<bigint, string>>(), 128: new Map<number, Map<bigint, string>>() };
    for (const { range, region } of table?.clients ?? []) {
      const [address, prefix] = range.split("/");
      const parsed = addressBits(address);
      if (!parsed) continue;
      const length = prefix === undefined ? parsed.bits : Number(prefix);
      if (!(length >= 0 && length <= parsed.bits)) continue;
      const byLength = lengths[parsed.bits as 32 | 128];
      let ranges = byLength.get(length);
      if (!ranges) byLength.set(length, (ranges = new Map()));
      const key = mask(parsed.value, parsed.bits, length);
      if (!ranges.has(key)) ranges.set(key, region); // the first listed wins a range given twice
    }
    for (const [family, byLength] of [
      [this.v4, lengths[32]],
      [this.v6, lengths[128]],
    ] as const)
      family.byLength = [...byLength].sort((a, b) => b[0] - a[0]).map(([length, ranges]) => ({ length, ranges }));
    for (const { from, to, ms } of table?.latency ?? []) {
      let row = this.latency.get(from);
      if (!row) this.latency.set(from, (row = new Map()));
      if (!row.has(to)) row.set(to, ms);
    }
  }

  /** Whether the table maps any address at all (no table: answers ignore regions). */
  get empty(): boolean {
    return this.v4.byLength.length === 0 && this.v6.byLength.length === 0;
  }

  /**
   * The region of `address`, or of a client subnet `address`/`sourceLength` (EDNS client subnet); with the prefix
   * length of the range that matched (the scope to echo), or undefined.
   */
  regionOf(address: string, sourceLength?: number): { region: string; scope: number } | undefined {
    const parsed = addressBits(address);
    if (!parsed) return undefined;
    const family = parsed.bits === 32 ? this.v4 : this.v6;
    const known = sourceLength ?? parsed.bits;
    for (const { length, ranges } of family.byLength) {
      if (length > known) continue;
      const region = ranges.get(mask(parsed.value, parsed.bits, length));
      if (region !== undefined) return { region, scope: length };
    }
    return undefined;
  }

  /** `regions` ordered from `from` outwards: `from` first, then by latency, then by name. Memoised per `from`. */
  orderFrom(from: string, regions: readonly string[]): readonly string[] {
    const key = `${from}|${regions.join(",")}`;
    const known = this.orders.get(key);
    if (known) return known;
    const row = this.latency.get(from);
    const distance = (r: string) => (r === from ? -1 : (row?.get(r) ?? Number.MAX_SAFE_INTEGER));
    const order = [...regions].sort((a, b) => distance(a) - distance(b) || (a < b ? -1 : a > b ? 1 : 0));
    if (this.orders.size >= 10_000) this.orders.clear();
    this.orders.set(key, order);
    return order;
  }
}
