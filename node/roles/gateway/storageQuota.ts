/**
 * An owner's quota at this gateway (D75): the bytes (n * fragmentSize) and objects it stores, counting its puts
 * still in flight. An object is indexed only once all its fragments are stored, so a quota read from the index
 * alone would let one owner's concurrent puts of different objects all pass it (R21-1).
 */
import type { StorageManifest } from "../../../offchain/common/protocol";
import { nodeError } from "../../errors";
import type { OwnerTotals } from "./storageIndex";

export class StorageQuota {
  /** Bytes and objects of each owner's puts in flight (an owner is here only while one is). */
  private readonly inFlight = new Map<string, OwnerTotals>();

  constructor(
    private readonly limits: { quotaBytes: number; maxObjects: number },
    private readonly stored: (owner: string) => OwnerTotals,
  ) {}

  /** Owners with a put in flight. */
  get owners(): number {
    return this.inFlight.size;
  }

  /** Takes the object's room in the owner's quota (413 if there is none): `done` gives it back. */
  take(owner: string, manifest: StorageManifest): { done(): void } {
    const key = owner.toLowerCase();
    const stored = this.stored(key);
    const flying = this.inFlight.get(key) ?? { bytes: 0, objects: 0 };
    const totals = { bytes: stored.bytes + flying.bytes, objects: stored.objects + flying.objects };
    const bytes = manifest.n * manifest.fragmentSize;
    if (totals.objects + 1 > this.limits.maxObjects)
      throw nodeError("EDGE_NODE_STORAGE_QUOTA", `the owner stores ${totals.objects} objects, the most allowed`, {
        details: { objects: totals.objects, maxObjects: this.limits.maxObjects },
      });
    if (totals.bytes + bytes > this.limits.quotaBytes)
      throw nodeError("EDGE_NODE_STORAGE_QUOTA", "the object would take the owner over its storage quota", {
        details: { storedBytes: totals.bytes, objectBytes: bytes, quotaBytes: this.limits.quotaBytes },
      });
    this.add(key, bytes, 1);
    let given = false;
    return {
      done: () => {
        if (!given) this.add(key, -bytes, -1);
        given = true;
      },
    };
  }

  private add(owner: string, bytes: number, objects: number): void {
    const now = this.inFlight.get(owner) ?? { bytes: 0, objects: 0 };
    const next = { bytes: now.bytes + bytes, objects: now.objects + objects };
    if (next.objects <= 0) this.inFlight.delete(owner);
    else this.inFlight.set(owner, next);
  }
}
