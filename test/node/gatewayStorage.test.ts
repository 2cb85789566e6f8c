/**
 * Edge Storage's API at a real gateway (issue 21, D75; node/roles/gateway/storage*.ts): six hosts linked over real
 * HTTP/2 links run the real fragment jobs over real stores (test/shared/storageNetwork.ts); owners sign their
 * requests as the protocol says. Round trip, placement, and the abuse the API must refuse without changing
 * anything: forged and borrowed identities, replays, tampered and malformed uploads, oversized bodies, quotas.
 */
import { expect } from "chai";
import { privateKeyToAccount } from "viem/accounts";

import { MAX_UPLOAD_BYTES } from "../../node/roles/gateway/storageRoutes";
import {
  STORAGE_OBJECT_TYPE,
  decodeObjectDownload,
  encodeObjectUpload,
  signStorageRequest,
  storageListBody,
  unixSeconds,
} from "../../offchain/common/protocol";
import { openObject } from "../../offchain/storage/object";
import { CHAIN } from "../shared/gatewayHarness";
import {
  type StorageNetwork,
  sealedUpload,
  startStorageNetwork,
  storageCall,
  storageKey,
} from "../../scripts/lib/storageNetwork";

const alice = privateKeyToAccount(`0x${"a1".repeat(32)}`);
const bob = privateKeyToAccount(`0x${"b2".repeat(32)}`);
const bytes = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

async function expectRefused(response: Response, status: number, code: string): Promise<void> {
  const body = (await response.json()) as { code?: string; error?: string };
  expect([response.status, body.code], body.error).to.deep.equal([status, code]);
  expect(body.error).to.be.a("string").and.not.equal("");
}

/** Fragments held by every host, in all. */
const held = (net: StorageNetwork) => net.hosts.reduce((sum, h) => sum + h.store.stats().fragments, 0);

describe("Edge Storage API at a gateway (issue 21)", function () {
  this.timeout(60_000);
  let net: StorageNetwork;

  before(async function () {
    net = await startStorageNetwork(6, { storageQuotaMb: 2 });
  });
  after(async () => net?.close());

  it("puts an object on six distinct hosts (at most n - k - 2 on one), gets it back, lists and deletes it", async function () {
    const plaintext = bytes(300_000);
    const { manifest, body } = await sealedUpload(alice, plaintext);
    const put = await storageCall(net.gateway, alice, "put", { objectId: manifest.objectId, body });
    expect(put.status).to.equal(201);
    const reply = (await put.json()) as { objectId: string; storedBytes: number; placement: Array<{ fragment: number; host: string }> }; // prettier-ignore
    expect(reply.objectId).to.equal(manifest.objectId);
    expect(reply.storedBytes).to.equal(16 * manifest.fragmentSize);
    expect(reply.placement.map((p) => p.fragment)).to.deep.equal([...Array(16).keys()]);
    const perHost = new Map<string, number>();
    for (const p of reply.placement) perHost.set(p.host, (perHost.get(p.host) ?? 0) + 1);
    expect(perHost.size).to.equal(6);
    expect(Math.max(...perHost.values())).to.be.at.most(4);
    expect(held(net)).to.equal(16);

    const got = await storageCall(net.gateway, alice, "get", { objectId: manifest.objectId });
    expect([got.status, got.headers.get("content-type")]).to.deep.equal([200, STORAGE_OBJECT_TYPE]);
    const frame = decodeObjectDownload(Buffer.from(await got.arrayBuffer()));
    expect(frame.fragments.size).to.equal(10);
    expect(frame.manifest.placement).to.deep.equal(reply.placement);
    const fragments = Array.from({ length: 16 }, (_, i) => frame.fragments.get(i));
    const opened = await openObject(storageKey, CHAIN, frame.manifest, fragments, { owner: alice.address });
    expect(opened.plaintext.equals(plaintext)).to.equal(true);

    const listed = await storageCall(net.gateway, alice, "list", {});
    expect(listed.status).to.equal(200);
    const list = (await listed.json()) as { objects: Array<Record<string, unknown>> };
    expect(list.objects).to.deep.equal([
      { objectId: manifest.objectId, size: 300_000, storedBytes: reply.storedBytes, createdAt: list.objects[0].createdAt, fragments: 16, healthy: 16 }, // prettier-ignore
    ]);

    const removed = await storageCall(net.gateway, alice, "delete", { objectId: manifest.objectId });
    expect([removed.status, await removed.json()]).to.deep.equal([200, { objectId: manifest.objectId, deleted: true }]);
    expect(held(net)).to.equal(0);
    await expectRefused(await storageCall(net.gateway, alice, "get", { objectId: manifest.objectId }), 404, "EDGE_NODE_STORAGE_NOT_FOUND"); // prettier-ignore
  });

  it("answers a repeated put of the same object 200, refuses a replayed request and another manifest under the id", async function () {
    const { manifest, body } = await sealedUpload(alice, bytes(5_000, 2));
    const signed = await signStorageRequest(alice, CHAIN, {
      gateway: net.gateway.account.address,
      action: "put",
      objectId: manifest.objectId as `0x${string}`,
      body,
    });
    const send = () =>
      fetch(`${net.gateway.url}/storage/v1/objects/${manifest.objectId}`, {
        method: "PUT",
        headers: { ...signed, "content-type": STORAGE_OBJECT_TYPE },
        body,
      });
    expect((await send()).status).to.equal(201);
    await expectRefused(await send(), 409, "EDGE_NODE_REPLAYED");
    expect((await storageCall(net.gateway, alice, "put", { objectId: manifest.objectId, body })).status).to.equal(200);
    // The same id and nonce re-sealed: other fragments, another signature.
    const nonce = Buffer.from(manifest.nonce.slice(2), "hex");
    const twin = await sealedUpload(alice, bytes(5_000, 3), { nonce });
    expect(twin.manifest.objectId).to.equal(manifest.objectId);
    const before = held(net);
    await expectRefused(
      await storageCall(net.gateway, alice, "put", { objectId: manifest.objectId, body: twin.body }),
      409,
      "EDGE_NODE_STORAGE_CONFLICT",
    );
    expect(held(net)).to.equal(before);
    await storageCall(net.gateway, alice, "delete", { objectId: manifest.objectId });
  });

  it("refuses forged and borrowed identities: another signer, another owner's manifest, another owner's object", async function () {
    const { manifest, body } = await sealedUpload(alice, bytes(2_000, 4));
    // Bob signs the request but names Alice as the owner.
    const forged = await signStorageRequest(bob, CHAIN, { gateway: net.gateway.account.address, action: "put", objectId: manifest.objectId as `0x${string}`, body }); // prettier-ignore
    const response = await fetch(`${net.gateway.url}/storage/v1/objects/${manifest.objectId}`, {
      method: "PUT",
      headers: { ...forged, "x-edge-owner": alice.address, "content-type": STORAGE_OBJECT_TYPE },
      body,
    });
    await expectRefused(response, 401, "EDGE_NODE_BAD_SIGNATURE");
    // Bob uploads Alice's manifest as his own request: refused (the manifest is not his).
    await expectRefused(await storageCall(net.gateway, bob, "put", { objectId: manifest.objectId, body }), 400, "EDGE_NODE_STORAGE_BAD_OBJECT"); // prettier-ignore
    expect(held(net)).to.equal(0);
    // Alice's object is not Bob's to read or delete, and the answer does not say it exists.
    expect((await storageCall(net.gateway, alice, "put", { objectId: manifest.objectId, body })).status).to.equal(201);
    await expectRefused(await storageCall(net.gateway, bob, "get", { objectId: manifest.objectId }), 404, "EDGE_NODE_STORAGE_NOT_FOUND"); // prettier-ignore
    await expectRefused(await storageCall(net.gateway, bob, "delete", { objectId: manifest.objectId }), 404, "EDGE_NODE_STORAGE_NOT_FOUND"); // prettier-ignore
    expect(((await (await storageCall(net.gateway, bob, "list", {})).json()) as { objects: unknown[] }).objects).to.deep.equal([]); // prettier-ignore
    // A request signed for another gateway is not this one's.
    const elsewhere = await signStorageRequest(alice, CHAIN, { gateway: bob.address, action: "get", objectId: manifest.objectId as `0x${string}` }); // prettier-ignore
    await expectRefused(await fetch(`${net.gateway.url}/storage/v1/objects/${manifest.objectId}`, { headers: elsewhere }), 401, "EDGE_NODE_BAD_SIGNATURE"); // prettier-ignore
    // A listing signed for one page size cannot be sent with another (its query is signed as its body).
    const listing = await signStorageRequest(alice, CHAIN, { gateway: net.gateway.account.address, action: "list", body: storageListBody(undefined, 5) }); // prettier-ignore
    await expectRefused(await fetch(`${net.gateway.url}/storage/v1/objects?limit=6`, { headers: listing }), 401, "EDGE_NODE_BAD_SIGNATURE"); // prettier-ignore
    expect((await fetch(`${net.gateway.url}/storage/v1/objects?limit=5`, { headers: listing })).status).to.equal(200);
    await storageCall(net.gateway, alice, "delete", { objectId: manifest.objectId });
  });

  it("refuses tampered, malformed, stale and oversized uploads before storing anything", async function () {
    const { manifest, fragments } = await sealedUpload(alice, bytes(50_000, 5));
    const tampered = fragments.map((f, i) => (i === 3 ? Buffer.from(f.map((b) => b ^ 1)) : f));
    const body = encodeObjectUpload(manifest, tampered);
    await expectRefused(await storageCall(net.gateway, alice, "put", { objectId: manifest.objectId, body }), 422, "EDGE_NODE_FRAGMENT_HASH"); // prettier-ignore
    const truncated = encodeObjectUpload(manifest, fragments).subarray(0, 1000);
    await expectRefused(await storageCall(net.gateway, alice, "put", { objectId: manifest.objectId, body: truncated }), 400, "EDGE_NODE_STORAGE_BAD_OBJECT"); // prettier-ignore
    const other = await sealedUpload(alice, bytes(10, 6));
    await expectRefused(await storageCall(net.gateway, alice, "put", { objectId: manifest.objectId, body: other.body }), 400, "EDGE_NODE_STORAGE_BAD_OBJECT"); // prettier-ignore
    const stale = unixSeconds() - 3_600n;
    await expectRefused(await storageCall(net.gateway, alice, "put", { objectId: manifest.objectId, body: encodeObjectUpload(manifest, fragments), timestamp: stale }), 401, "EDGE_NODE_SIGNATURE_EXPIRED"); // prettier-ignore
    const huge = Buffer.alloc(MAX_UPLOAD_BYTES + 1);
    await expectRefused(await storageCall(net.gateway, alice, "put", { objectId: manifest.objectId, body: huge }), 413, "EDGE_NODE_STORAGE_TOO_LARGE"); // prettier-ignore
    expect(held(net)).to.equal(0);
  });

  it("holds each owner to its quota of stored bytes", async function () {
    // 2 MiB quota: an object of 700 kB stores 16 fragments of 70 kB (1.12 MB); the second would pass 2 MiB.
    const first = await sealedUpload(alice, bytes(700_000, 7));
    expect((await storageCall(net.gateway, alice, "put", { objectId: first.manifest.objectId, body: first.body })).status).to.equal(201); // prettier-ignore
    const second = await sealedUpload(alice, bytes(700_000, 8));
    const refused = await storageCall(net.gateway, alice, "put", { objectId: second.manifest.objectId, body: second.body }); // prettier-ignore
    await expectRefused(refused, 403, "EDGE_NODE_STORAGE_QUOTA");
    // Bob has his own quota.
    const bobs = await sealedUpload(bob, bytes(700_000, 9));
    expect((await storageCall(net.gateway, bob, "put", { objectId: bobs.manifest.objectId, body: bobs.body })).status).to.equal(201); // prettier-ignore
    for (const [owner, id] of [
      [alice, first.manifest.objectId],
      [bob, bobs.manifest.objectId],
    ] as const)
      expect((await storageCall(net.gateway, owner, "delete", { objectId: id })).status).to.equal(200);
  });

  it("reads an object while two of its six hosts are gone, from the fragments left", async function () {
    const plaintext = bytes(120_000, 10);
    const { manifest, body } = await sealedUpload(alice, plaintext);
    const put = (await (await storageCall(net.gateway, alice, "put", { objectId: manifest.objectId, body })).json()) as { placement: Array<{ fragment: number; host: string }> }; // prettier-ignore
    // Two hosts leave (their links close): up to 8 of the 16 fragments are out of reach.
    const gone = net.hosts.slice(0, 2);
    await Promise.all(gone.map((h) => h.link.leave()));
    const lost = put.placement.filter((p) => gone.some((h) => h.account.address.toLowerCase() === p.host)).length;
    expect(lost).to.be.within(5, 8);
    const got = await storageCall(net.gateway, alice, "get", { objectId: manifest.objectId });
    expect(got.status).to.equal(200);
    const frame = decodeObjectDownload(Buffer.from(await got.arrayBuffer()));
    const fragments = Array.from({ length: 16 }, (_, i) => frame.fragments.get(i));
    expect((await openObject(storageKey, CHAIN, frame.manifest, fragments)).plaintext.equals(plaintext)).to.equal(true);
    const listed = (await (await storageCall(net.gateway, alice, "list", {})).json()) as { objects: Array<{ healthy: number }> }; // prettier-ignore
    expect(listed.objects[0].healthy).to.equal(16 - lost);
  });
});
