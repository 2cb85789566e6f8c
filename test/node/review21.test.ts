/**
 * An attacker's review of Edge Storage's network part (issue 21, D75): each test is one finding's regression,
 * titled with its id. The gateway runs for real where the finding is about the API (scripts/lib/storageNetwork.ts);
 * the index and the storage service alone where it is about what they keep.
 */
import { expect } from "chai";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { type Socket, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { privateKeyToAccount } from "viem/accounts";

import { GatewayStorage, MAX_PUTTING } from "../../node/roles/gateway/storage";
import { StorageAuth } from "../../node/roles/gateway/storageAuth";
import { StorageIndex, type StoredObject } from "../../node/roles/gateway/storageIndex";
import { MAX_UPLOADS, registerStorageRoutes } from "../../node/roles/gateway/storageRoutes";
import { createTypedApp, errorHandler } from "../../offchain/common/http";
import { isEdgeError } from "../../offchain/common/errors";
import {
  NO_OBJECT,
  type StorageManifest,
  signStorageRequest,
  storageListBody,
  unixSeconds,
} from "../../offchain/common/protocol";
import { nodeError } from "../../node/errors";
import { type StorageNetwork, sealedUpload, startStorageNetwork, storageCall } from "../../scripts/lib/storageNetwork";

const CHAIN = 31337;
const alice = privateKeyToAccount(`0x${"a1".repeat(32)}`);
const gatewayAccount = privateKeyToAccount(`0x${"6a".repeat(32)}`);
const bytes = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
const sha256hex = (b: Buffer) => `0x${createHash("sha256").update(b).digest("hex")}`;
const host = (i: number) => `0x${i.toString(16).padStart(40, "0")}`;
const owner = "0x00000000000000000000000000000000000000a1";

function object(id: number, hosts: string[]): StoredObject {
  const objectId = `0x${id.toString(16).padStart(64, "0")}`;
  const placement = hosts.map((h, fragment) => ({ fragment, host: h }));
  return { objectId, owner, manifest: { objectId, placement } as unknown as StorageManifest, storedBytes: 10, createdAt: 0 }; // prettier-ignore
}

/** A storage service over a real index, with the given auth and credit, and no linked host. */
function service(dir: string, parts: Partial<ConstructorParameters<typeof GatewayStorage>[0]>) {
  const index = new StorageIndex(join(dir, "index.db"));
  const storage = new GatewayStorage(
    {
      index,
      auth: { admit: async () => ({ owner: alice.address, release() {} }) },
      hosts: () => [],
      usage: { addAll() {} },
      log: { warn() {} },
      ...parts,
    },
    CHAIN,
    { quotaBytes: 1 << 30, maxObjects: 10_000, callTimeoutMs: 1_000 },
  );
  return { index, storage };
}

async function refusal(work: Promise<unknown>): Promise<[number, string]> {
  try {
    await work;
  } catch (error) {
    if (isEdgeError(error)) return [error.status, error.code];
    throw error;
  }
  throw new Error("not refused");
}

describe("review of Edge Storage's network part (issue 21)", function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "review21-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe("at a real gateway", function () {
    let net: StorageNetwork;
    before(async () => (net = await startStorageNetwork(6, { storageQuotaMb: 2 })));
    after(async () => net?.close());

    it("R21-1: one owner's concurrent puts of different objects cannot pass the quota together", async function () {
      // 2 MiB quota; each object stores 16 fragments of 70 kB (1.12 MB): one fits, not two.
      const uploads = await Promise.all([1, 2, 3, 4].map((seed) => sealedUpload(alice, bytes(700_000, seed))));
      const answers = await Promise.all(
        uploads.map((u) => storageCall(net.gateway, alice, "put", { objectId: u.manifest.objectId, body: u.body })),
      );
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses).to.deep.equal([201, 403, 403, 403]);
      const listed = (await (await storageCall(net.gateway, alice, "list", {})).json()) as { objects: unknown[] };
      expect(listed.objects).to.have.length(1);
    });
  });

  it("R21-9: a put's retries count the writes in flight: a full host's fragments never take another over the per-host limit", async function () {
    const net = await startStorageNetwork(5, {}, 2 << 20);
    try {
      // One host's store is full: every fragment placed there fails (507) and is retried on another host.
      const full = net.hosts[0];
      for (let i = 0; i < 2; i++) {
        const junk = Buffer.alloc(1 << 20, i + 1);
        await full.store.put(`0x${"ee".repeat(32)}`, i, sha256hex(junk), junk);
      }
      const upload = await sealedUpload(alice, bytes(300_000, 5));
      const put = await storageCall(net.gateway, alice, "put", { objectId: upload.manifest.objectId, body: upload.body }); // prettier-ignore
      expect(put.status).to.equal(201);
      const { placement } = (await put.json()) as { placement: Array<{ fragment: number; host: string }> };
      const perHost = new Map<string, number>();
      for (const p of placement) perHost.set(p.host, (perHost.get(p.host) ?? 0) + 1);
      expect(perHost.has(full.account.address.toLowerCase())).to.equal(false);
      expect([...perHost.values()]).to.deep.equal([4, 4, 4, 4]); // n - k - 2 = 4 on each of the 4 others
    } finally {
      await net.close();
    }
  });

  it("R21-1: puts in flight are bounded (each holds its upload): past MAX_PUTTING they are 503, and free their digest", async function () {
    let released = 0;
    const { index, storage } = service(dir, {
      auth: { admit: async () => ({ owner: alice.address, release: () => void released++ }) },
      // Credit that never answers: every admitted put stays in flight.
      credit: { reserve: () => new Promise(() => {}), complete() {}, release() {} },
    });
    const uploads = await Promise.all(
      Array.from({ length: MAX_PUTTING + 1 }, (_, i) => sealedUpload(alice, bytes(100, i))),
    );
    const headers = {} as never;
    for (const u of uploads.slice(0, MAX_PUTTING)) void storage.put(headers, u.manifest.objectId, u.body);
    await new Promise((resolve) => setImmediate(resolve));
    const last = uploads[MAX_PUTTING];
    expect(await refusal(storage.put(headers, last.manifest.objectId, last.body))).to.deep.equal([
      503,
      "EDGE_NODE_STORAGE_BUSY",
    ]);
    expect(released).to.equal(1);
    index.close();
  });

  it("R21-6: requests refused for credit or for an object not held free their replay digest: unfunded keys cannot fill the replay guard", async function () {
    const auth = new StorageAuth({ account: gatewayAccount, chainId: CHAIN }, 2);
    const { index, storage } = service(dir, {
      auth,
      credit: {
        reserve: () => Promise.reject(nodeError("EDGE_NODE_CREDIT_UNKNOWN", "no credit")),
        complete() {},
        release() {},
      },
    });
    for (let i = 0; i < 5; i++) {
      const request = { gateway: gatewayAccount.address, action: "list" as const, objectId: NO_OBJECT };
      const headers = await signStorageRequest(alice, CHAIN, { ...request, body: storageListBody() });
      expect(await refusal(storage.list(headers, undefined, undefined))).to.deep.equal([402, "EDGE_NODE_CREDIT_UNKNOWN"]); // prettier-ignore
    }
    // Nor can gets and deletes of objects the key does not hold (404 before any charge).
    for (const action of ["get", "delete"] as const) {
      const objectId = `0x${"ab".repeat(32)}` as const;
      const headers = await signStorageRequest(alice, CHAIN, { gateway: gatewayAccount.address, action, objectId });
      const work = action === "get" ? storage.get(headers, objectId) : storage.remove(headers, objectId);
      expect(await refusal(work)).to.deep.equal([404, "EDGE_NODE_STORAGE_NOT_FOUND"]);
    }
    expect(auth.replayEntries).to.equal(0);
    index.close();
  });

  it("R21-10: a put of an object already stored (200) is charged and counted as a request, like any served", async function () {
    const lines: Array<readonly [string, bigint]> = [];
    let reserved = 0;
    const { index, storage } = service(dir, {
      usage: { addAll: (_owner, _service, added) => void lines.push(...added) },
      credit: { reserve: async () => (reserved++, {}) as never, complete() {}, release() {} },
    });
    const upload = await sealedUpload(alice, bytes(100, 3));
    const manifest = { ...upload.manifest, placement: [] };
    index.insert({ objectId: manifest.objectId, owner: alice.address.toLowerCase(), manifest, storedBytes: 1, createdAt: 0 }, 0); // prettier-ignore
    const answer = await storage.put({} as never, manifest.objectId, upload.body);
    expect(answer.status).to.equal(200);
    expect([reserved, lines]).to.deep.equal([1, [["requests", 1n]]]);
    index.close();
  });

  it("R21-2: a delete still owed on a host never deletes a fragment placed there again (re-put, repair moving back)", function () {
    const index = new StorageIndex(join(dir, "index.db"));
    const x = object(1, [host(1), host(2)]);
    index.insert(x, 0);
    index.remove(x.objectId, 1); // both hosts unreachable: two deletes owed
    index.insert(x, 2); // the owner puts it again, on the same hosts
    expect(index.pendingDeletes(10)).to.deep.equal([]);
    const y = object(2, [host(1), host(2)]);
    index.insert(y, 3);
    index.move(y.objectId, 1, host(3)); // host 2 gone: its copy is owed a delete
    index.move(y.objectId, 1, host(2)); // host 3 gone, host 2 back: fragment 1 placed on host 2 again
    expect(index.pendingDeletes(10)).to.deep.equal([{ objectId: y.objectId, fragment: 1, host: host(3) }]);
    index.close();
  });

  it("R21-3: fragments written for a put that was never indexed (gateway stopped, host failed) are deleted later", function () {
    const file = join(dir, "index.db");
    let index = new StorageIndex(file);
    const x = object(1, [host(1), host(2)]);
    // A put wrote fragment 0 to host 9, which then failed; the retry went to host 1.
    index.stage(x.objectId, 0, host(9));
    index.stage(x.objectId, 0, host(1));
    index.stage(x.objectId, 1, host(2));
    index.insert(x, 0);
    expect(index.pendingDeletes(10)).to.deep.equal([{ objectId: x.objectId, fragment: 0, host: host(9) }]);
    // The gateway stops in the middle of another put: its written fragments are owed deletes at the next start.
    index.stage(object(2, []).objectId, 0, host(1));
    index.stage(object(2, []).objectId, 1, host(2));
    index.close();
    index = new StorageIndex(file);
    expect(index.pendingDeletes(10).filter((d) => d.objectId === object(2, []).objectId)).to.have.length(2);
    index.close();
  });

  it("R21-4: a fragment repair wrote for an object deleted meanwhile is deleted too", function () {
    const index = new StorageIndex(join(dir, "index.db"));
    const x = object(1, [host(1), host(2)]);
    index.insert(x, 0);
    index.stage(x.objectId, 1, host(3)); // repair writes fragment 1 to host 3 ...
    index.remove(x.objectId, 1); // ... the owner deletes the object ...
    index.move(x.objectId, 1, host(3)); // ... and the write completes
    expect(index.pendingDeletes(10).map((d) => d.host)).to.have.members([host(1), host(2), host(3)]);
    index.close();
  });

  it("R21-5: deletes owed to an unlinked host do not starve the sweep of the others", function () {
    const index = new StorageIndex(join(dir, "index.db"));
    for (let i = 1; i <= 300; i++) {
      index.insert(object(i, [host(9)]), 0);
      index.remove(object(i, []).objectId, 1);
    }
    const live = object(1000, [host(1)]);
    index.insert(live, 0);
    index.remove(live.objectId, 1);
    expect(index.pendingDeletes(256, { hosts: [host(1)] })).to.deep.equal([
      { objectId: live.objectId, fragment: 0, host: host(1) },
    ]);
    expect(index.pendingDeletes(256, { hosts: [host(1)], objectId: object(5, []).objectId })).to.deep.equal([]);
    index.close();
  });

  it("R21-8: stalled upload bodies (unsigned, from anyone) are cut after the body deadline and free their slots", async function () {
    const app = createTypedApp({ logger: false });
    app.setErrorHandler(errorHandler({ codePrefix: "EDGE_NODE" }));
    const storage = { put: async () => ({ status: 201, reply: {} }) } as never;
    registerStorageRoutes(app, storage, { bodyTimeoutMs: 300 });
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = new URL(url);
    const path = `/storage/v1/objects/0x${"cd".repeat(32)}`;
    const headers = {
      "x-edge-owner": alice.address,
      "x-edge-timestamp": unixSeconds().toString(),
      "x-edge-nonce": `0x${"00".repeat(32)}`,
      "x-edge-signature": `0x${"11".repeat(65)}`,
      "content-type": "application/octet-stream",
    };
    const stalled: Socket[] = [];
    const closed: Array<Promise<void>> = [];
    for (let i = 0; i < MAX_UPLOADS; i++) {
      const socket = connect(Number(port), "127.0.0.1");
      socket.on("error", () => {});
      closed.push(new Promise((resolve) => socket.on("close", () => resolve())));
      const head = Object.entries({ ...headers, "content-length": "1000" }).map(([k, v]) => `${k}: ${v}\r\n`);
      socket.write(`PUT ${path} HTTP/1.1\r\nhost: x\r\n${head.join("")}\r\n0123456789`);
      stalled.push(socket);
    }
    const put = () => fetch(`${url}${path}`, { method: "PUT", headers, body: Buffer.alloc(1000) });
    // Every slot is held: an upload now is 503 ...
    for (let tries = 0; ; tries++) {
      const busy = await put();
      if (busy.status === 503) break;
      if (tries > 50) throw new Error(`never busy: ${busy.status}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // ... until the stalled bodies pass the deadline: their connections are closed and uploads go through again.
    await Promise.all(closed);
    expect((await put()).status).to.equal(201);
    stalled.forEach((s) => s.destroy());
    await app.close();
  });
});
