/**
 * The hosts a gateway can place jobs on, indexed by region key and by country (D69), each with its free slots
 * (capacity - inflight) and health. A region's hosts with a free slot sit in a heap (heap.ts), best first, so a
 * placement decision reads one heap top per eligible region: O(regions), never O(hosts).
 *
 * Costs: join, leave (or eviction), capacity and health changes, started and finished are O(1) map work plus one
 * heap sift, O(log n) in the region's hosts. A region's bucket is created the first time a host declares it and is
 * kept (a network has tens of regions), so decisions can cache orders of regions; `version` says when one was
 * added. Hosts that declared no region go to the `undeclared` bucket: only sites without a policy use them.
 *
 * Pure: no timers, no I/O. The caller (the gateway's queue) tells it what happens: a job `started` on a host it
 * was given, `finished` when the job ended (a finish for a host that has left since is ignored).
 */
import { type Region, regionKey } from "../../offchain/common/protocol/regions";
import { HostHeap, type HeapMember } from "./heap";

export interface RegionBucket {
  /** `DE/eu-central`, or "" for the hosts that declared no region. */
  readonly key: string;
  readonly region: Region | undefined;
  /** Hosts joined in it (healthy or not, free or not). */
  hosts: number;
  /** Of those, hosts that are healthy (may take jobs once a slot frees). */
  healthy: number;
  /** Healthy hosts with a free slot, best first. */
  readonly free: HostHeap<HostEntry>;
}

export interface HostEntry extends HeapMember {
  capacity: number;
  inflight: number;
  healthy: boolean;
  bucket: RegionBucket;
}

/** What a gateway knows of a host when it joins (its link's capacity, its signed region). */
export interface HostInfo {
  region?: Region;
  capacity: number;
}

const newBucket = (key: string, region: Region | undefined): RegionBucket => ({
  key,
  region,
  hosts: 0,
  healthy: 0,
  free: new HostHeap<HostEntry>(),
});

function checkCapacity(capacity: number): void {
  if (!Number.isSafeInteger(capacity) || capacity < 0)
    throw new RangeError(`a host's capacity is an integer >= 0 (not ${capacity})`);
}

export class HostIndex {
  private readonly entries = new Map<string, HostEntry>();
  private readonly regions = new Map<string, RegionBucket>();
  private readonly countries = new Map<string, RegionBucket[]>();
  private readonly declared: RegionBucket[] = [];
  readonly undeclared = newBucket("", undefined);
  private starts = 0;
  /** Bumped whenever a region's bucket is added. */
  version = 0;

  get size(): number {
    return this.entries.size;
  }

  /** A host joined (or changed its capacity or region): it starts healthy, jobs in flight are kept on a change. */
  join(id: string, info: HostInfo): void {
    checkCapacity(info.capacity);
    const bucket = info.region ? this.bucketFor(info.region) : this.undeclared;
    let entry = this.entries.get(id);
    if (entry === undefined) {
      entry = { id, free: 0, seq: 0, pos: -1, capacity: info.capacity, inflight: 0, healthy: true, bucket };
      this.entries.set(id, entry);
      bucket.hosts += 1;
      bucket.healthy += 1;
    } else if (entry.bucket !== bucket) {
      this.detach(entry);
      entry.bucket = bucket;
      bucket.hosts += 1;
      if (entry.healthy) bucket.healthy += 1;
    }
    entry.capacity = info.capacity;
    this.refresh(entry);
  }

  /** A host left, was evicted or banned: it is forgotten (its jobs' finishes are then ignored). */
  leave(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    this.detach(entry);
    this.entries.delete(id);
  }

  setCapacity(id: string, capacity: number): void {
    checkCapacity(capacity);
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    entry.capacity = capacity;
    this.refresh(entry);
  }

  /** A host's health (the queue's breaker, a failed check): an unhealthy host takes no jobs but still exists. */
  setHealthy(id: string, healthy: boolean): void {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.healthy === healthy) return;
    entry.healthy = healthy;
    entry.bucket.healthy += healthy ? 1 : -1;
    this.refresh(entry);
  }

  /** A job started on host `id` (one the caller was given); throws for a host not joined. */
  started(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) throw new RangeError(`no host ${id} is indexed`);
    entry.inflight += 1;
    entry.seq = ++this.starts;
    this.refresh(entry);
  }

  /** A job on host `id` ended. */
  finished(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.inflight === 0) return;
    entry.inflight -= 1;
    this.refresh(entry);
  }

  host(id: string): Readonly<HostEntry> | undefined {
    return this.entries.get(id);
  }

  /** The bucket of region key `key` ("DE/eu-central"), if a host ever declared it. */
  region(key: string): RegionBucket | undefined {
    return this.regions.get(key);
  }

  /** The buckets of regions in `country`. */
  country(country: string): readonly RegionBucket[] | undefined {
    return this.countries.get(country);
  }

  /** Every declared region's bucket, in the order they were first seen. */
  allDeclared(): readonly RegionBucket[] {
    return this.declared;
  }

  private bucketFor(region: Region): RegionBucket {
    const key = regionKey(region);
    let bucket = this.regions.get(key);
    if (bucket === undefined) {
      bucket = newBucket(key, { country: region.country, region: region.region });
      this.regions.set(key, bucket);
      this.declared.push(bucket);
      const list = this.countries.get(region.country);
      if (list) list.push(bucket);
      else this.countries.set(region.country, [bucket]);
      this.version += 1;
    }
    return bucket;
  }

  private detach(entry: HostEntry): void {
    entry.bucket.free.remove(entry);
    entry.bucket.hosts -= 1;
    if (entry.healthy) entry.bucket.healthy -= 1;
  }

  /** Puts `entry` in its region's heap (healthy with a free slot) or out of it, at its new place. */
  private refresh(entry: HostEntry): void {
    entry.free = Math.max(0, entry.capacity - entry.inflight);
    const heap = entry.bucket.free;
    const want = entry.healthy && entry.free > 0;
    if (!want) heap.remove(entry);
    else if (heap.has(entry)) heap.update(entry);
    else heap.push(entry);
  }
}
