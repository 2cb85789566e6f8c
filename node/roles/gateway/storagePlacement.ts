/**
 * Where an object's fragments go (issue 21, D75): on distinct hosts and spread over regions, never so many on one
 * host that losing it leaves the object below k + 2 fragments.
 *
 * - At most `perHostLimit(k, n)` = max(1, n - k - 2) fragments of an object on one host (k = 10 of 16: 4). With
 *   fewer hosts than `n / that` the object is refused (503 EDGE_NODE_STORAGE_NO_HOSTS): its promise could not hold.
 * - Hosts are taken one per region in turn (regions with the fewest fragments of the object first), and within a
 *   region the least loaded first (fragments the index holds there), so fragments spread over every region and
 *   host before any host takes a second. Ties go by address: placement is deterministic for a given view.
 */
import { nodeError } from "../../errors";

export interface PlacementCandidate {
  host: string;
  /** The host's declared region (D68), or undefined. */
  region: string | undefined;
  /** Fragments this gateway has placed on it (all objects). */
  load: number;
}

/** The most fragments of one object a host may hold. */
export const perHostLimit = (k: number, n: number): number => Math.max(1, n - k - 2);

/** The fewest hosts an object of k of n may be placed on. */
export const hostsNeeded = (k: number, n: number): number => Math.ceil(n / perHostLimit(k, n));

const regionOf = (c: PlacementCandidate) => c.region ?? "";
const byLoad = (a: PlacementCandidate, b: PlacementCandidate) =>
  a.load - b.load || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0);

/** Candidates in placement order: round robin over regions, least loaded first within each. */
function spread(candidates: readonly PlacementCandidate[]): PlacementCandidate[] {
  const regions = new Map<string, PlacementCandidate[]>();
  for (const c of candidates) {
    const list = regions.get(regionOf(c)) ?? [];
    list.push(c);
    regions.set(regionOf(c), list);
  }
  const queues = [...regions.entries()].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1));
  for (const [, list] of queues) list.sort(byLoad);
  const order: PlacementCandidate[] = [];
  for (let round = 0; order.length < candidates.length; round++)
    for (const [, list] of queues) if (round < list.length) order.push(list[round]);
  return order;
}

/** Hosts for fragments 0..n-1 of a new object (one entry per fragment), or 503 when too few hosts are linked. */
export function placeObject(k: number, n: number, candidates: readonly PlacementCandidate[]): string[] {
  const unique = [...new Map(candidates.map((c) => [c.host.toLowerCase(), { ...c, host: c.host.toLowerCase() }]))];
  const needed = hostsNeeded(k, n);
  if (unique.length < needed)
    throw nodeError(
      "EDGE_NODE_STORAGE_NO_HOSTS",
      `an object of ${k} of ${n} fragments needs ${needed} hosts (at most ${perHostLimit(k, n)} fragments on one); ` +
        `${unique.length} linked`,
    );
  const order = spread(unique.map(([, c]) => c)).slice(0, n);
  return Array.from({ length: n }, (_, i) => order[i % order.length].host);
}

/**
 * A host for one more fragment of an object (a retry or a repair): not in `avoid`, holding fewer than the limit of
 * the object's fragments, in a region holding the fewest of them, then the least loaded. Undefined: none fits.
 */
export function placeFragment(
  k: number,
  n: number,
  current: ReadonlyArray<{ host: string; region: string | undefined }>,
  candidates: readonly PlacementCandidate[],
  avoid: ReadonlySet<string> = new Set(),
): string | undefined {
  const perHost = new Map<string, number>();
  const perRegion = new Map<string, number>();
  for (const p of current) {
    perHost.set(p.host.toLowerCase(), (perHost.get(p.host.toLowerCase()) ?? 0) + 1);
    perRegion.set(p.region ?? "", (perRegion.get(p.region ?? "") ?? 0) + 1);
  }
  const limit = perHostLimit(k, n);
  const fits = candidates.filter(
    (c) => !avoid.has(c.host.toLowerCase()) && (perHost.get(c.host.toLowerCase()) ?? 0) < limit,
  );
  fits.sort(
    (a, b) =>
      (perRegion.get(regionOf(a)) ?? 0) - (perRegion.get(regionOf(b)) ?? 0) ||
      (perHost.get(a.host.toLowerCase()) ?? 0) - (perHost.get(b.host.toLowerCase()) ?? 0) ||
      byLoad(a, b),
  );
  return fits[0]?.host.toLowerCase();
}
