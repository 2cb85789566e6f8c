/**
 * Edge Storage's repair at the gateway that placed the objects (issue 21, D75; docs/storage.md "Repair"): a
 * fragment whose host is gone (unlinked for `graceMs`: evicted, unhealthy, stopped), lost (in the host's lost
 * list, or answered 404/410/mismatch to a get) is rebuilt from k others and placed on another host, before the
 * object drops below k + 2 healthy fragments: every round repairs the objects with the fewest healthy fragments
 * first, and a round runs every few seconds, so an object is repaired at its first loss, not its fourth.
 *
 * Rebuilding needs no key: fragments are ciphertext. The gateway reads k fragments (each checked against the
 * owner-signed sha256), decodes the padded payload, encodes all n again (the codec is deterministic: a golden test
 * pins it) and checks every rebuilt fragment against the manifest's sha256 before it is stored; a mismatch stops
 * that object's repair (logged, counted) and nothing is written. The old host, if it ever links again, is asked to
 * delete its copy (the index's `deletes`).
 */
import { createHash } from "node:crypto";

import { decodeFragments, encodeFragments } from "../../../offchain/common/erasure";
import { regionKey } from "../../../offchain/common/protocol/regions";
import { listLostFragments, putFragment } from "./fragmentClient";
import type { GatewayStorage, StorageParts } from "./storage";
import type { StorageIndex } from "./storageIndex";
import { placeFragment } from "./storagePlacement";

export interface RepairOptions {
  /** A host unlinked this long has lost its fragments (for repair). */
  graceMs: number;
  /** Objects repaired in one round at most (the most damaged first). */
  maxObjects: number;
  callTimeoutMs: number;
}

export interface RepairStats {
  rounds: number;
  /** Fragments rebuilt and stored elsewhere. */
  repaired: number;
  /** Objects whose repair failed (too few fragments readable, no host to take one, a rebuilt hash mismatch). */
  failed: number;
  /** Objects found below k + 2 healthy fragments when a round started (each time). */
  belowMargin: number;
  /** Objects with fewer than k fragments left: unreadable until a host comes back. */
  unreadable: number;
}

const sha256 = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`;

export class StorageRepair {
  /** When each host that holds fragments was first seen unlinked. */
  private readonly unlinkedSince = new Map<string, number>();
  /** Fragments a get or a host's lost list reported bad: `${objectId}/${index}` -> the host that failed. */
  private readonly bad = new Map<string, string>();
  readonly stats: RepairStats = { rounds: 0, repaired: 0, failed: 0, belowMargin: 0, unreadable: 0 };
  private running: Promise<void> | undefined;

  constructor(
    private readonly parts: Pick<StorageParts, "index" | "hosts" | "log"> & { index: StorageIndex },
    private readonly storage: Pick<GatewayStorage, "fetch">,
    private readonly options: RepairOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** A get found fragment `index` of `objectId` missing or wrong on `host`. */
  reportBad(objectId: string, index: number, host: string): void {
    if (this.bad.size < 100_000) this.bad.set(`${objectId}/${index}`, host.toLowerCase());
  }

  /** One round (rounds never overlap: a call during one waits for it). */
  round(): Promise<void> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<void> {
    this.stats.rounds++;
    const now = this.now();
    const linked = this.parts.hosts();
    const linkedSet = new Set(linked.map((h) => h.host));
    await this.collectLost(linked);
    const gone = new Set<string>();
    const holding = this.parts.index.hosts(); // one scan of the placement a round
    for (const host of holding.keys()) {
      if (linkedSet.has(host)) this.unlinkedSince.delete(host);
      else if (now - (this.unlinkedSince.get(host) ?? (this.unlinkedSince.set(host, now), now)) >= this.options.graceMs)
        gone.add(host);
    }
    for (const host of this.unlinkedSince.keys()) if (!holding.has(host)) this.unlinkedSince.delete(host);
    // Every object with a fragment on a gone host or reported bad, with the fragments it misses.
    const damaged = new Map<string, Set<number>>();
    const add = (objectId: string, fragment: number) => {
      const set = damaged.get(objectId) ?? new Set<number>();
      set.add(fragment);
      damaged.set(objectId, set);
    };
    for (const host of gone)
      for (const { objectId, fragment } of this.parts.index.onHost(host)) add(objectId, fragment);
    for (const [key, host] of this.bad) {
      const [objectId, index] = key.split("/");
      const object = this.parts.index.get(objectId);
      const placed = object?.manifest.placement.find((p) => p.fragment === Number(index));
      if (placed && placed.host.toLowerCase() === host) add(objectId, Number(index));
      else this.bad.delete(key); // already moved, or the object is gone
    }
    const work = [...damaged]
      .map(([objectId, missing]) => ({ object: this.parts.index.get(objectId), missing }))
      .filter((w) => w.object !== undefined)
      .sort((a, b) => b.missing.size - a.missing.size)
      .slice(0, this.options.maxObjects);
    for (const { object, missing } of work) {
      const healthy = object!.manifest.n - missing.size;
      if (healthy < object!.manifest.k + 2) this.stats.belowMargin++;
      if (healthy < object!.manifest.k) this.stats.unreadable++;
      await this.repair(object!.objectId, missing, gone, linked);
    }
  }

  /** Asks every linked host holding fragments for its lost list (a page each). */
  private async collectLost(linked: ReturnType<StorageParts["hosts"]>): Promise<void> {
    const holding = this.parts.index.hosts();
    await Promise.all(
      linked
        .filter((h) => holding.has(h.host))
        .map(async (h) => {
          try {
            const { lost } = await listLostFragments(h.link, { timeoutMs: this.options.callTimeoutMs });
            for (const { objectId, index } of lost) this.reportBad(objectId, index, h.host);
          } catch (error) {
            this.parts.log.warn({ host: h.host, err: (error as Error).message }, "could not read a host's lost list");
          }
        }),
    );
  }

  private async repair(
    objectId: string,
    missing: Set<number>,
    gone: ReadonlySet<string>,
    linked: ReturnType<StorageParts["hosts"]>,
  ): Promise<void> {
    const object = this.parts.index.get(objectId);
    if (!object) return; // deleted since the round began
    const { manifest } = object;
    const { k, n, fragmentSize } = manifest;
    try {
      const have = await this.storage.fetch(manifest, k, missing);
      const padded = await decodeFragments(
        Array.from({ length: n }, (_, i) => have.get(i)),
        k,
        n,
        fragmentSize,
        k * fragmentSize,
      );
      const { fragments } = await encodeFragments(padded, k, n);
      const regions = new Map(linked.map((h) => [h.host, h.region ? regionKey(h.region) : undefined]));
      const links = new Map(linked.map((h) => [h.host, h.link]));
      const load = this.parts.index.hosts();
      const candidates = linked.map((h) => ({
        host: h.host,
        region: regions.get(h.host),
        load: load.get(h.host) ?? 0,
      }));
      for (const fragment of [...missing].sort((a, b) => a - b)) {
        const data = fragments[fragment];
        if (sha256(data) !== manifest.fragments[fragment])
          throw new Error(`rebuilt fragment ${fragment} does not match the manifest's sha256`);
        const now = this.parts.index.get(objectId);
        if (!now) return; // deleted meanwhile: what was moved is in `deletes` (StorageIndex.move)
        // Every placed fragment but this one counts against its host's limit, other missing ones too (R21-7).
        const current = now.manifest.placement
          .filter((p) => p.fragment !== fragment && !gone.has(p.host.toLowerCase()))
          .map((p) => ({ host: p.host, region: regions.get(p.host.toLowerCase()) }));
        const avoid = new Set([...gone, ...manifest.placement.filter((p) => p.fragment === fragment).map((p) => p.host)]); // prettier-ignore
        const host = placeFragment(k, n, current, candidates, avoid);
        if (host === undefined) throw new Error(`no linked host can take fragment ${fragment}`);
        const sha = manifest.fragments[fragment];
        this.parts.index.stage(objectId, fragment, host); // deleted there if it is not placed (R21-3)
        try {
          const call = { timeoutMs: this.options.callTimeoutMs };
          await putFragment(links.get(host)!, { objectId, index: fragment, sha256: sha, data }, call);
        } catch (error) {
          this.parts.index.abandon(objectId, fragment);
          throw error;
        }
        this.parts.index.move(objectId, fragment, host);
        missing.delete(fragment);
        this.bad.delete(`${objectId}/${fragment}`);
        this.stats.repaired++;
      }
    } catch (error) {
      this.stats.failed++;
      this.parts.log.warn({ objectId, missing: [...missing], err: (error as Error).message }, "storage repair failed");
    }
  }
}
