/**
 * Edge Storage at a gateway (issue 21, D75; docs/storage.md "The API"): an owner's put, get, list and delete of
 * encrypted, erasure-coded objects, whose fragments this gateway places on its linked hosts.
 *
 * - Every request is the owner's signed `StorageRequest` (storageAuth.ts): the signature covers the body, so it
 *   is checked once the (bounded) body is read, and before any other work.
 * - put: the frame's manifest must be the owner's (signed, canonical, its id derived from owner and nonce, the
 *   id in the path), every fragment must match its signed sha256, and the owner's quota (bytes and objects) must
 *   hold; then the price of one request is reserved (credit.ts, D43), the fragments are placed
 *   (storagePlacement.ts) and written to their hosts over the links (fragmentClient.ts), a failed host retried on
 *   another, and the object is indexed (storageIndex.ts) only when all n are stored. A put that fails deletes
 *   what it wrote. The same object put again answers 200; another manifest under a stored id is 409.
 * - get: any k fragments whose bytes match the manifest (data fragments first, parity for what fails), framed
 *   with the manifest; the owner's client decrypts. Someone else's object is 404 (no oracle of ids).
 * - delete: unindexed at once (its bytes stop counting); its fragments are deleted on their hosts, those that
 *   could not be are kept in the index's `deletes` and retried (`sweepDeletes`).
 * - Usage (node/usage.ts): `storage.requests` 1 per request served, and `storage.byteHours` as the index accrues
 *   them (`accrueUsage`, on the gateway's usage loop): stored bytes are n * fragmentSize, what the hosts hold.
 */
import type { Address, Hex } from "viem";

import {
  type StorageManifest,
  type StorageRequestHeaders,
  NO_OBJECT,
  StorageFrameError,
  checkStorageManifest,
  decodeObjectUpload,
  encodeObjectDownload,
  storageListBody,
} from "../../../offchain/common/protocol";
import { type Region, regionKey } from "../../../offchain/common/protocol/regions";
import { isEdgeError } from "../../../offchain/common/errors";
import { nodeError } from "../../errors";
import { FRAGMENT_WIRE_MAX_BYTES } from "../fragmentWire";
import type { CreditLimiter } from "./credit";
import { deleteFragment, getFragment, putFragment } from "./fragmentClient";
import type { HostLink } from "./links";
import type { StorageAuth } from "./storageAuth";
import type { StorageIndex, StoredObject } from "./storageIndex";
import { StorageQuota } from "./storageQuota";
import { type PlacementCandidate, placeFragment, placeObject } from "./storagePlacement";
import { createHash } from "node:crypto";

/** The owner's limits at this gateway. */
export interface StorageLimits {
  quotaBytes: number;
  maxObjects: number;
  /** Each fragment operation on a host. */
  callTimeoutMs: number;
}

export const DEFAULT_MAX_OBJECTS = 10_000;
/** Puts being stored at once (each holds its upload, up to 6 MiB, until its hosts answer): more are 503 (R21-1). */
export const MAX_PUTTING = 32;
const LIST_MAX = 1_000;
const REQUEST = [{ service: "storage", metric: "requests", quantity: 1n }];

export interface StorageParts {
  index: StorageIndex;
  auth: Pick<StorageAuth, "admit">;
  /** The linked, routable hosts now, with their links and declared regions. */
  hosts(): Array<{ host: string; link: HostLink; region: Region | undefined }>;
  usage: { addAll(customer: string, service: string, lines: ReadonlyArray<readonly [string, bigint]>): void };
  credit?: Pick<CreditLimiter, "reserve" | "complete" | "release">;
  log: { warn(obj: object, msg: string): void };
  /** A get found a fragment missing (404), lost (410) or wrong (mismatch) on its host: repair rebuilds it. */
  onBadFragment?(objectId: string, index: number, host: string): void;
}

/** What a host answers about a fragment it should hold and does not (or holds wrong). */
const BAD_FRAGMENT = new Set([
  "EDGE_NODE_FRAGMENT_NOT_FOUND",
  "EDGE_NODE_FRAGMENT_LOST",
  "EDGE_NODE_FRAGMENT_MISMATCH",
]);

export interface ListedObject {
  objectId: string;
  size: number;
  storedBytes: number;
  createdAt: number;
  fragments: number;
  healthy: number;
}

const regionName = (r: Region | undefined) => (r ? regionKey(r) : undefined);
const sha256 = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`;

export class GatewayStorage {
  /** Object ids being put now: a second put of the same id waits for none (409). */
  private readonly putting = new Set<string>();
  private readonly quota: StorageQuota;
  private served = 0;

  constructor(
    private readonly parts: StorageParts,
    private readonly chainId: number,
    private readonly limits: StorageLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.quota = new StorageQuota(limits, (owner) => parts.index.totals(owner));
  }

  get requestsServed(): number {
    return this.served;
  }

  async put(headers: StorageRequestHeaders, objectId: string, body: Buffer) {
    const id = objectId.toLowerCase() as Hex;
    const caller = await this.parts.auth.admit(headers, { action: "put", objectId: id, body });
    let manifest: StorageManifest;
    let fragments: Map<number, Buffer>;
    try {
      ({ manifest, fragments } = this.checkUpload(caller.owner, id, body));
    } catch (error) {
      caller.release();
      throw error;
    }
    const existing = this.parts.index.get(id);
    if (existing) {
      if (existing.manifest.signature.toLowerCase() !== manifest.signature.toLowerCase())
        throw nodeError("EDGE_NODE_STORAGE_CONFLICT", `object ${id} is stored with another manifest`);
      // Served (the body read and hashed): charged and counted like any request (R21-10).
      return { status: 200, reply: await this.charged(caller, async () => this.putReply(existing)) };
    }
    let room: { done(): void };
    try {
      if (this.putting.has(id)) throw nodeError("EDGE_NODE_STORAGE_CONFLICT", `object ${id} is being stored now`);
      if (this.putting.size >= MAX_PUTTING)
        throw nodeError("EDGE_NODE_STORAGE_BUSY", "too many uploads being stored at once: retry shortly");
      room = this.quota.take(caller.owner, manifest);
    } catch (error) {
      caller.release(); // refused before anything changed: the owner may send it again
      throw error;
    }
    this.putting.add(id);
    try {
      const stored = await this.charged(caller, () => this.store(manifest, fragments));
      return { status: 201, reply: this.putReply(stored) };
    } finally {
      this.putting.delete(id);
      room.done();
    }
  }

  async get(headers: StorageRequestHeaders, objectId: string): Promise<Buffer> {
    const id = objectId.toLowerCase() as Hex;
    const caller = await this.parts.auth.admit(headers, { action: "get", objectId: id });
    const object = this.owned(caller, id);
    return this.charged(caller, async () => {
      const fragments = await this.fetch(object.manifest, object.manifest.k);
      return encodeObjectDownload(object.manifest, fragments);
    });
  }

  async list(headers: StorageRequestHeaders, after: string | undefined, limit: number | undefined) {
    const body = storageListBody(after, limit);
    const caller = await this.parts.auth.admit(headers, { action: "list", objectId: NO_OBJECT, body });
    const count = Math.min(LIST_MAX, Math.max(1, limit ?? 100));
    return this.charged(caller, async () => {
      const linked = new Set(this.parts.hosts().map((h) => h.host));
      const objects = this.parts.index.list(caller.owner, (after ?? "").toLowerCase(), count);
      const listed: ListedObject[] = objects.map((o) => ({
        objectId: o.objectId,
        size: o.manifest.size,
        storedBytes: o.storedBytes,
        createdAt: o.createdAt,
        fragments: o.manifest.n,
        healthy: o.manifest.placement.filter((p) => linked.has(p.host.toLowerCase())).length,
      }));
      return { objects: listed, ...(objects.length === count ? { next: objects[count - 1].objectId } : {}) };
    });
  }

  async remove(headers: StorageRequestHeaders, objectId: string) {
    const id = objectId.toLowerCase() as Hex;
    const caller = await this.parts.auth.admit(headers, { action: "delete", objectId: id });
    this.owned(caller, id);
    if (this.putting.has(id)) throw nodeError("EDGE_NODE_STORAGE_CONFLICT", `object ${id} is being stored now`);
    return this.charged(caller, async () => {
      this.parts.index.remove(id, this.now());
      await this.sweepDeletes(id);
      return { objectId: id, deleted: true };
    });
  }

  /** Byte-hours accrued since the last call, recorded as each owner's `storage.byteHours` usage. */
  accrueUsage(): number {
    const owed = this.parts.index.accrue(this.now());
    for (const { owner, byteHours } of owed) this.parts.usage.addAll(owner, "storage", [["byteHours", byteHours]]);
    return owed.length;
  }

  /** Deletes fragments of removed objects on their hosts (those of `objectId` only, or a page of any). */
  async sweepDeletes(objectId?: string): Promise<number> {
    const links = new Map(this.parts.hosts().map((h) => [h.host.toLowerCase(), h.link]));
    // Only linked hosts' rows: the others are kept, asked again when the host is linked (R21-5).
    const pending = this.parts.index.pendingDeletes(256, { hosts: [...links.keys()], objectId });
    let done = 0;
    await Promise.all(
      pending.map(async ({ objectId: id, fragment, host }) => {
        const link = links.get(host)!;
        try {
          await deleteFragment(link, { objectId: id, index: fragment }, { timeoutMs: this.limits.callTimeoutMs });
          this.parts.index.deleted(id, fragment, host);
          done++;
        } catch (error) {
          this.parts.log.warn({ host, objectId: id, fragment, err: (error as Error).message }, "fragment delete");
        }
      }),
    );
    return done;
  }

  private checkUpload(owner: Address, id: string, body: Buffer) {
    let framed: ReturnType<typeof decodeObjectUpload>;
    try {
      framed = decodeObjectUpload(body);
    } catch (error) {
      if (error instanceof StorageFrameError) throw nodeError("EDGE_NODE_STORAGE_BAD_OBJECT", error.message);
      throw error;
    }
    const { manifest, fragments } = framed;
    if (manifest.objectId !== id)
      throw nodeError("EDGE_NODE_STORAGE_BAD_OBJECT", `the manifest's object id is not the path's ${id}`);
    if (manifest.owner.toLowerCase() !== owner.toLowerCase())
      throw nodeError("EDGE_NODE_STORAGE_BAD_OBJECT", "the manifest's owner is not the request's signer");
    const check = checkStorageManifest(this.chainId, manifest);
    if (!check.ok) throw nodeError("EDGE_NODE_STORAGE_BAD_OBJECT", `the manifest is refused: ${check.message}`);
    if (manifest.fragmentSize > FRAGMENT_WIRE_MAX_BYTES)
      throw nodeError("EDGE_NODE_FRAGMENT_TOO_LARGE", `fragments are at most ${FRAGMENT_WIRE_MAX_BYTES} bytes`, {
        details: { fragmentSize: manifest.fragmentSize },
      });
    for (const [index, bytes] of fragments)
      if (sha256(bytes) !== manifest.fragments[index])
        throw nodeError("EDGE_NODE_FRAGMENT_HASH", `fragment ${index} does not match the manifest's sha256`);
    return { manifest: { ...manifest, placement: [] }, fragments };
  }

  /**
   * Runs `work` with one request's price reserved; records the request when it succeeded. A request refused for
   * credit frees its replay digest: unfunded keys cannot fill the replay guard (R21-6).
   */
  private async charged<T>(caller: { owner: Address; release(): void }, work: () => Promise<T>): Promise<T> {
    const owner = caller.owner;
    let reservation: Awaited<ReturnType<CreditLimiter["reserve"]>> | undefined;
    try {
      reservation = await this.parts.credit?.reserve(owner, REQUEST);
    } catch (error) {
      caller.release();
      throw error;
    }
    let result: T;
    try {
      result = await work();
    } catch (error) {
      if (reservation) this.parts.credit!.release(reservation);
      throw error;
    }
    this.parts.usage.addAll(owner, "storage", [["requests", 1n]]);
    if (reservation) this.parts.credit!.complete(reservation);
    this.served++;
    return result;
  }

  /** The caller's object, or 404 (its digest freed: ids it does not hold must not fill the replay guard, R21-6). */
  private owned(caller: { owner: Address; release(): void }, id: string): StoredObject {
    const { owner } = caller;
    const object = this.parts.index.get(id);
    if (!object || object.owner !== owner.toLowerCase()) caller.release();
    if (!object || object.owner !== owner.toLowerCase())
      throw nodeError("EDGE_NODE_STORAGE_NOT_FOUND", `no object ${id} of ${owner} at this gateway`);
    return object;
  }

  private candidates(): {
    candidates: PlacementCandidate[];
    links: Map<string, HostLink>;
    regions: Map<string, string | undefined>;
  } {
    const load = this.parts.index.hosts();
    const linked = this.parts.hosts();
    const candidates = linked.map((h) => ({ host: h.host, region: regionName(h.region), load: load.get(h.host) ?? 0 }));
    return {
      candidates,
      links: new Map(linked.map((h) => [h.host, h.link])),
      regions: new Map(candidates.map((c) => [c.host, c.region])),
    };
  }

  /** Writes every fragment to a host (a failed host's fragment goes to another), then indexes the object. */
  private async store(manifest: StorageManifest, fragments: Map<number, Buffer>): Promise<StoredObject> {
    const { candidates, links, regions } = this.candidates();
    const chosen = placeObject(manifest.k, manifest.n, candidates);
    const placed: Array<{ fragment: number; host: string }> = [];
    const failed = new Set<string>();
    // Where each fragment is being written: a retry counts writes in flight against the per-host limit (R21-9).
    const assigned = new Map<number, string>();
    const write = async (fragment: number, host: string | undefined): Promise<void> => {
      if (host === undefined)
        throw nodeError("EDGE_NODE_STORAGE_NO_HOSTS", `no host could take fragment ${fragment}`, {
          details: { failedHosts: [...failed] },
        });
      assigned.set(fragment, host);
      try {
        const data = fragments.get(fragment)!;
        const sha = manifest.fragments[fragment];
        this.parts.index.stage(manifest.objectId, fragment, host); // deleted there unless indexed (R21-3)
        const call = { timeoutMs: this.limits.callTimeoutMs };
        await putFragment(links.get(host)!, { objectId: manifest.objectId, index: fragment, sha256: sha, data }, call);
        placed.push({ fragment, host });
      } catch (error) {
        if (isEdgeError(error) && error.code === "EDGE_NODE_FRAGMENT_HASH") throw error;
        failed.add(host);
        assigned.delete(fragment);
        const current = [...assigned.values()].map((h) => ({ host: h, region: regions.get(h) }));
        return write(fragment, placeFragment(manifest.k, manifest.n, current, candidates, failed));
      }
    };
    // Every write settles before a failure is undone: none lands after the undo (R21-3).
    const results = await Promise.allSettled(chosen.map((host, fragment) => write(fragment, host)));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) {
      this.parts.index.abandon(manifest.objectId); // every staged write joins `deletes`: kept until done
      await this.undo(manifest.objectId, placed, links);
      throw failure.reason;
    }
    const placement = placed.sort((a, b) => a.fragment - b.fragment);
    const object: StoredObject = {
      objectId: manifest.objectId,
      owner: manifest.owner.toLowerCase(),
      manifest: { ...manifest, placement },
      storedBytes: manifest.n * manifest.fragmentSize,
      createdAt: this.now(),
    };
    this.parts.index.insert(object, this.now());
    return object;
  }

  private async undo(
    objectId: string,
    placed: Array<{ fragment: number; host: string }>,
    links: Map<string, HostLink>,
  ) {
    await Promise.all(
      placed.map(({ fragment, host }) =>
        deleteFragment(links.get(host)!, { objectId, index: fragment }, { timeoutMs: this.limits.callTimeoutMs }).then(
          () => this.parts.index.deleted(objectId, fragment, host),
          () => this.parts.log.warn({ host, objectId, fragment }, "could not delete a fragment of a failed put"),
        ),
      ),
    );
  }

  /** `want` fragments whose bytes match the manifest: data fragments first, then parity for each that fails. */
  async fetch(
    manifest: StorageManifest,
    want: number,
    skip: ReadonlySet<number> = new Set(),
  ): Promise<Map<number, Buffer>> {
    const links = new Map(this.parts.hosts().map((h) => [h.host, h.link]));
    const order = manifest.placement.filter((p) => !skip.has(p.fragment) && links.has(p.host.toLowerCase()));
    const got = new Map<number, Buffer>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (got.size < want && next < order.length) {
        const { fragment, host } = order[next++];
        try {
          const bytes = await getFragment(
            links.get(host.toLowerCase())!,
            { objectId: manifest.objectId, index: fragment, sha256: manifest.fragments[fragment] },
            { timeoutMs: this.limits.callTimeoutMs },
          );
          if (got.size < want) got.set(fragment, bytes);
        } catch (error) {
          if (isEdgeError(error) && BAD_FRAGMENT.has(error.code))
            this.parts.onBadFragment?.(manifest.objectId, fragment, host.toLowerCase());
          this.parts.log.warn(
            { host, objectId: manifest.objectId, fragment, err: (error as Error).message },
            "fragment get",
          );
        }
      }
    };
    await Promise.all(Array.from({ length: want }, worker));
    if (got.size < want)
      throw nodeError("EDGE_NODE_STORAGE_UNREADABLE", `${got.size} of the ${want} fragments needed could be read`, {
        details: { objectId: manifest.objectId, read: got.size, needed: want },
      });
    return got;
  }

  private putReply(object: StoredObject) {
    return { objectId: object.objectId, storedBytes: object.storedBytes, placement: object.manifest.placement };
  }
}
