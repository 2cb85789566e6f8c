/**
 * The gateway's storage index and placement (D75): byte-hours accrue exactly (nothing lost to rounding, nothing
 * counted twice) across inserts, deletes and restarts; placement spreads fragments over regions and hosts and never
 * puts more than n - k - 2 of an object on one host (fast-check, fixed seed).
 */
import { expect } from "chai";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { StorageIndex, type StoredObject } from "../../node/roles/gateway/storageIndex";
import {
  type PlacementCandidate,
  hostsNeeded,
  perHostLimit,
  placeFragment,
  placeObject,
} from "../../node/roles/gateway/storagePlacement";
import { isEdgeError } from "../../offchain/common/errors";
import type { StorageManifest } from "../../offchain/common/protocol";

const HOUR = 3_600_000;
const owner = "0x00000000000000000000000000000000000000a1";
const host = (i: number) => `0x${i.toString(16).padStart(40, "0")}`;

function object(id: number, storedBytes: number, hosts: string[] = [host(1)]): StoredObject {
  const objectId = `0x${id.toString(16).padStart(64, "0")}`;
  const placement = hosts.map((h, fragment) => ({ fragment, host: h }));
  return {
    objectId,
    owner,
    manifest: { objectId, placement } as unknown as StorageManifest,
    storedBytes,
    createdAt: 0,
  };
}

describe("gateway storage index: byte-hours (D75)", function () {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "storage-index-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("accrues bytes x time exactly, carrying the part below one byte-hour, and stops at the delete", function () {
    const index = new StorageIndex(join(dir, "index.db"));
    index.insert(object(1, 1000), 0);
    expect(index.accrue(HOUR / 2)).to.deep.equal([{ owner, byteHours: 500n }]);
    // 1,000 bytes for 1 ms is 1/3600 of a byte-hour: carried, not lost.
    for (let t = HOUR / 2 + 1; t <= HOUR / 2 + 36; t++) expect(index.accrue(t)).to.deep.equal([]);
    expect(index.accrue(HOUR / 2 + 3_600)).to.deep.equal([{ owner, byteHours: 1n }]);
    index.insert(object(2, 3000), HOUR);
    // From 0.5 h + 3.6 s to 1 h: 1,000 bytes; then 4,000 bytes for an hour.
    const total = index.accrue(2 * HOUR)[0].byteHours;
    expect(total).to.equal(BigInt(Math.floor((1000 * (HOUR / 2 - 3_600)) / HOUR)) + 4000n);
    expect(index.remove(object(1, 0).objectId, 2 * HOUR)?.storedBytes).to.equal(1000);
    expect(index.accrue(3 * HOUR)).to.deep.equal([{ owner, byteHours: 3000n }]);
    expect(index.totals(owner)).to.deep.equal({ bytes: 3000, objects: 1 });
    index.close();
  });

  it("keeps objects, totals, placement and the carry across a restart", function () {
    const file = join(dir, "index.db");
    let index = new StorageIndex(file);
    index.insert(object(1, 7, [host(1), host(2)]), 0);
    index.accrue(HOUR / 3); // 7 * 1/3 h: 2 byte-hours, 1/3 carried
    index.close();
    index = new StorageIndex(file);
    expect(index.totals(owner)).to.deep.equal({ bytes: 7, objects: 1 });
    expect(index.onHost(host(2))).to.deep.equal([{ objectId: object(1, 0).objectId, fragment: 1 }]);
    expect(index.accrue(HOUR)).to.deep.equal([{ owner, byteHours: 5n }]); // 7 - 2, the carry kept
    index.move(object(1, 0).objectId, 1, host(3));
    expect(index.get(object(1, 0).objectId)!.manifest.placement).to.deep.equal([
      { fragment: 0, host: host(1) },
      { fragment: 1, host: host(3) },
    ]);
    expect(index.onHost(host(2))).to.deep.equal([]);
    // The moved fragment's old copy is to be deleted, then the whole object's.
    expect(index.pendingDeletes(10)).to.deep.equal([{ objectId: object(1, 0).objectId, fragment: 1, host: host(2) }]);
    expect(index.remove(object(1, 0).objectId, HOUR)).to.not.equal(undefined);
    expect(index.pendingDeletes(10).map((d) => d.host)).to.have.members([host(1), host(2), host(3)]);
    index.close();
  });
});

describe("gateway storage placement (D75)", function () {
  const candidate = (i: number, region?: string, load = 0): PlacementCandidate => ({ host: host(i), region, load });

  it("needs n / (n - k - 2) hosts: 4 for 10 of 16, and says so", function () {
    expect([perHostLimit(10, 16), hostsNeeded(10, 16)]).to.deep.equal([4, 4]);
    expect([perHostLimit(10, 12), hostsNeeded(10, 12)]).to.deep.equal([1, 12]);
    try {
      placeObject(10, 16, [candidate(1), candidate(2), candidate(3)]);
      expect.fail("placed on 3 hosts");
    } catch (error) {
      expect(isEdgeError(error) && [error.code, error.status]).to.deep.equal(["EDGE_NODE_STORAGE_NO_HOSTS", 503]);
    }
  });

  it("spreads over regions before hosts, least loaded first", function () {
    const hosts = [candidate(1, "DE", 5), candidate(2, "DE", 0), candidate(3, "US", 9), candidate(4, "FR", 0)];
    const placed = placeObject(2, 4, hosts); // one per host (limit max(1, 0) = 1)
    expect(placed.slice(0, 3).map((h) => Number(h))).to.have.members([2, 3, 4]);
    expect(Number(placed[3])).to.equal(1);
  });

  it("never puts more than n - k - 2 fragments of an object on one host, and uses every region it can (fast-check)", function () {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.tuple(fc.constantFrom("DE", "US", "FR", undefined), fc.nat(50)), { minLength: 1, maxLength: 40 }),
        (k, parity, specs) => {
          const n = k + parity;
          const hosts = specs.map(([region, load], i) => candidate(i + 1, region, load));
          let placed: string[];
          try {
            placed = placeObject(k, n, hosts);
          } catch (error) {
            expect(hosts.length).to.be.below(hostsNeeded(k, n));
            return;
          }
          expect(placed).to.have.length(n);
          const perHost = new Map<string, number>();
          for (const h of placed) perHost.set(h, (perHost.get(h) ?? 0) + 1);
          expect(Math.max(...perHost.values())).to.be.at.most(perHostLimit(k, n));
          const regions = new Set(hosts.map((h) => h.region ?? ""));
          const used = new Set(placed.map((h) => hosts.find((c) => c.host === h)!.region ?? ""));
          expect(used.size).to.equal(Math.min(regions.size, n));
          // One more fragment for a repair: never on an avoided host nor over the limit.
          const current = placed.slice(1).map((h) => ({ host: h, region: hosts.find((c) => c.host === h)!.region }));
          const extra = placeFragment(k, n, current, hosts, new Set([placed[0]]));
          if (extra !== undefined) {
            expect(extra).to.not.equal(placed[0]);
            expect(current.filter((c) => c.host === extra).length).to.be.below(perHostLimit(k, n));
          }
        },
      ),
      { seed: 2121, numRuns: 500 },
    );
  });
});
