/**
 * Edge Storage's repair at a real gateway (issue 21, D75; node/roles/gateway/storageRepair.ts): hosts are killed one
 * by one (their links close) and every object stays readable, its lost fragments rebuilt on the hosts left before
 * the next kill; without repair, an object is readable exactly while k of its fragments are on linked hosts; a
 * fragment a host no longer holds is rebuilt elsewhere once a get finds it missing.
 */
import { expect } from "chai";
import { privateKeyToAccount } from "viem/accounts";

import { decodeObjectDownload } from "../../offchain/common/protocol";
import { openObject } from "../../offchain/storage/object";
import { CHAIN, waitUntil } from "../shared/gatewayHarness";
import {
  type StorageNetwork,
  sealedUpload,
  startStorageNetwork,
  storageCall,
  storageKey,
} from "../../scripts/lib/storageNetwork";

const owner = privateKeyToAccount(`0x${"c3".repeat(32)}`);
const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 17 + seed) & 0xff));

interface Stored {
  objectId: string;
  plaintext: Buffer;
}

async function storeObjects(net: StorageNetwork, count: number): Promise<Stored[]> {
  const stored: Stored[] = [];
  for (let i = 0; i < count; i++) {
    const plaintext = bytes(20_000 + i * 1_000, i);
    const { manifest, body } = await sealedUpload(owner, plaintext);
    const put = await storageCall(net.gateway, owner, "put", { objectId: manifest.objectId, body });
    expect(put.status).to.equal(201);
    stored.push({ objectId: manifest.objectId, plaintext });
  }
  return stored;
}

/** Whether the gateway returns `object` and it opens to its plaintext. */
async function readable(net: StorageNetwork, object: Stored): Promise<boolean> {
  const got = await storageCall(net.gateway, owner, "get", { objectId: object.objectId });
  if (got.status !== 200) {
    await got.body?.cancel();
    return false;
  }
  const frame = decodeObjectDownload(Buffer.from(await got.arrayBuffer()));
  const fragments = Array.from({ length: frame.manifest.n }, (_, i) => frame.fragments.get(i));
  const { plaintext } = await openObject(storageKey, CHAIN, frame.manifest, fragments, { owner: owner.address });
  return plaintext.equals(object.plaintext);
}

/** Each object's fragments on linked hosts, from the owner's listing. */
async function healthy(net: StorageNetwork): Promise<number[]> {
  const listed = await storageCall(net.gateway, owner, "list", {});
  return ((await listed.json()) as { objects: Array<{ healthy: number }> }).objects.map((o) => o.healthy);
}

describe("Edge Storage repair (issue 21)", function () {
  this.timeout(120_000);
  let net: StorageNetwork | undefined;
  afterEach(async () => {
    await net?.close();
    net = undefined;
  });

  it("kills hosts one by one: every object stays readable and is repaired to n fragments before the next", async function () {
    net = await startStorageNetwork(8, { storageRepairGraceMs: 100, storageRepairMs: 100 });
    const objects = await storeObjects(net, 6);
    // Down to 4 hosts, the fewest that hold 16 fragments at most 4 on one (k = 10 of 16).
    for (const victim of net.hosts.slice(0, 4)) {
      await victim.link.leave();
      for (const object of objects) expect(await readable(net, object)).to.equal(true);
      await waitUntil("every object back to 16 fragments on linked hosts", async () =>
        (await healthy(net!)).every((h) => h === 16),
      15_000); // prettier-ignore
      for (const object of objects) expect(await readable(net, object)).to.equal(true);
    }
    const status = net.gateway.status() as unknown as { storage: { repair: { repaired: number; failed: number; unreadable: number } } }; // prettier-ignore
    expect(status.storage.repair.repaired).to.be.greaterThan(0);
    expect(status.storage.repair.unreadable).to.equal(0);
    // The survivors hold every fragment: 6 objects x 16.
    const held = net.hosts.slice(4).reduce((sum, h) => sum + h.store.stats().fragments, 0);
    expect(held).to.equal(6 * 16);
  });

  it("without repair, an object is readable exactly while k of its fragments are on linked hosts", async function () {
    net = await startStorageNetwork(6, { storageRepairGraceMs: 3_600_000 });
    const objects = await storeObjects(net, 3);
    for (const victim of net.hosts) {
      await victim.link.leave();
      const counts = await healthy(net);
      for (const [i, object] of objects.entries()) expect(await readable(net, object)).to.equal(counts[i] >= 10);
      if (counts.every((c) => c < 10)) break;
    }
    expect((await healthy(net)).every((c) => c < 10)).to.equal(true);
  });

  it("rebuilds a fragment a host no longer holds on another host, once a get finds it missing", async function () {
    net = await startStorageNetwork(6, { storageRepairMs: 100 });
    const [object] = await storeObjects(net, 1);
    const listed = await storageCall(net.gateway, owner, "get", { objectId: object.objectId });
    const { manifest } = decodeObjectDownload(Buffer.from(await listed.arrayBuffer()));
    // Fragment 0's host drops it (a disk lost, say); the next get reads parity instead and reports it.
    const holder = net.hosts.find((h) => h.account.address.toLowerCase() === manifest.placement[0].host)!;
    expect(await holder.store.delete(object.objectId, 0)).to.equal(true);
    expect(await readable(net, object)).to.equal(true);
    await waitUntil("fragment 0 rebuilt on another host", async () => {
      const got = await storageCall(net!.gateway, owner, "get", { objectId: object.objectId });
      const frame = decodeObjectDownload(Buffer.from(await got.arrayBuffer()));
      return frame.manifest.placement[0].host !== holder.account.address.toLowerCase();
    }, 10_000); // prettier-ignore
    const moved = net.hosts.filter((h) => h !== holder).some((h) => h.store.has(object.objectId, 0));
    expect(moved).to.equal(true);
    expect(await readable(net, object)).to.equal(true);
  });
});
