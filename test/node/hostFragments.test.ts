import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { Counter, Registry } from "prom-client";
import { privateKeyToAccount } from "viem/accounts";

import { ConfigError, loadConfig } from "../../node/config";
import { createHost } from "../../node/roles/host";
import { FragmentStore, type FragmentStoreOptions } from "../../node/roles/host/fragments";
import { FRAGMENT_HEADER_BYTES } from "../../node/roles/host/fragmentsDisk";
import { createFragmentMetrics } from "../../node/roles/host/fragmentsMetrics";
import { WorkTracker } from "../../node/workTracker";
import { isEdgeError } from "../../offchain/common/errors";
import { initTracing } from "../../offchain/common/tracing";

const sha = (data: Uint8Array) => `0x${createHash("sha256").update(data).digest("hex")}`;
const oid = (n: number) => `0x${createHash("sha256").update(`object ${n}`).digest("hex")}`;
/** Deterministic bytes: `length` bytes derived from `seed`. */
function bytes(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0, block = 0; i < length; block++) {
    const digest = createHash("sha256").update(`${seed}/${block}`).digest();
    i += digest.copy(out, i);
  }
  return out;
}

interface Logged {
  level: string;
  msg: string;
}

async function rejects(promise: Promise<unknown>, code: string, status: number): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (!isEdgeError(error)) throw error;
    expect(error.code).to.equal(code);
    expect(error.status).to.equal(status);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe("host fragment store (issue 21)", function () {
  let root: string;
  let logged: Logged[];
  const stores: FragmentStore[] = [];

  function open(options: Partial<FragmentStoreOptions> = {}): FragmentStore {
    const log = {
      warn: (_obj: object, msg: string) => logged.push({ level: "warn", msg }),
      error: (_obj: object, msg: string) => logged.push({ level: "error", msg }),
    };
    const store = new FragmentStore({ dir: join(root, "fragments"), budgetBytes: 1 << 20, log, ...options });
    stores.push(store);
    return store;
  }
  const dir = () => join(root, "fragments");
  const files = () => readdirSync(dir()).sort();
  const fileOf = (objectId: string, index: number) => join(dir(), `${objectId.slice(2)}.${index}.frag`);

  beforeEach(function () {
    root = mkdtempSync(join(tmpdir(), "host-fragments-"));
    logged = [];
  });
  afterEach(async function () {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    rmSync(root, { recursive: true, force: true });
  });

  describe("#put, #get, #delete", function () {
    it("stores, serves and deletes fragments from memory and disk, counting bytes exactly", async function () {
      const store = open();
      const a = bytes(1, 1000);
      const b = bytes(2, 24);
      expect(await store.put(oid(1), 0, sha(a), a)).to.equal("stored");
      expect(await store.put(oid(1), 15, sha(b), b)).to.equal("stored");
      expect(await store.put(oid(2), 3, sha(b), b)).to.equal("stored");
      expect(store.stats()).to.include({ ready: true, fragments: 3, objects: 2, bytes: 1048, corrupt: 0, lost: 0 });
      expect(store.stats().freeBytes).to.equal((1 << 20) - 1048);
      expect(store.indices(oid(1))).to.deep.equal([0, 15]);
      const got = await store.get(oid(1), 0);
      expect(got.sha256).to.equal(sha(a));
      expect(got.data.equals(a)).to.equal(true);
      expect(files()).to.have.length(3);

      expect(await store.delete(oid(1), 0)).to.equal(true);
      expect(await store.delete(oid(1), 0)).to.equal(false);
      await rejects(store.get(oid(1), 0), "EDGE_NODE_FRAGMENT_NOT_FOUND", 404);
      expect(existsSync(fileOf(oid(1), 0))).to.equal(false);
      expect(await store.deleteObject(oid(2))).to.equal(1);
      expect(store.stats()).to.include({ fragments: 1, objects: 1, bytes: 24 });
      expect(files()).to.deep.equal([`${oid(1).slice(2)}.15.frag`]);
    });

    it("keeps its own copies: changing the caller's buffer or a returned one changes nothing stored", async function () {
      const store = open();
      const data = bytes(3, 64);
      const original = Buffer.from(data);
      await store.put(oid(1), 1, sha(data), data);
      data.fill(0);
      (await store.get(oid(1), 1)).data.fill(7);
      expect((await store.get(oid(1), 1)).data.equals(original)).to.equal(true);
      expect(store.stats().corrupt).to.equal(0);
    });
  });

  describe("when the budget is reached", function () {
    it("refuses the put with STORAGE_FULL (507) and evicts nothing", async function () {
      const store = open({ budgetBytes: 1000 });
      const a = bytes(1, 600);
      const b = bytes(2, 401);
      await store.put(oid(1), 0, sha(a), a);
      await rejects(store.put(oid(1), 1, sha(b), b), "EDGE_NODE_STORAGE_FULL", 507);
      expect((await store.get(oid(1), 0)).data.equals(a)).to.equal(true);
      expect(store.stats()).to.include({ fragments: 1, bytes: 600, freeBytes: 400 });
      expect(files()).to.have.length(1);
      const c = bytes(3, 400); // exactly what is left
      expect(await store.put(oid(1), 2, sha(c), c)).to.equal("stored");
      await store.delete(oid(1), 0);
      expect(await store.put(oid(1), 1, sha(b), b)).to.equal("stored");
      expect(store.stats()).to.include({ bytes: 801, freeBytes: 199 });
    });

    it("never overshoots under concurrent puts: in-flight writes reserve their bytes", async function () {
      const store = open({ budgetBytes: 1000 });
      const puts = [0, 1, 2, 3, 4].map((i) => {
        const data = bytes(10 + i, 300);
        return store.put(oid(i), i, sha(data), data);
      });
      const outcomes = await Promise.allSettled(puts);
      expect(outcomes.filter((o) => o.status === "fulfilled")).to.have.length(3);
      for (const o of outcomes) {
        if (o.status === "rejected") expect((o.reason as { code: string }).code).to.equal("EDGE_NODE_STORAGE_FULL");
      }
      expect(store.stats()).to.include({ fragments: 3, bytes: 900 });
    });

    it("refuses past the fragment cap the same way", async function () {
      const store = open({ maxFragments: 2 });
      const d = bytes(1, 8);
      await store.put(oid(1), 0, sha(d), d);
      await store.put(oid(1), 1, sha(d), d);
      await rejects(store.put(oid(1), 2, sha(d), d), "EDGE_NODE_STORAGE_FULL", 507);
      expect(await store.put(oid(1), 1, sha(d), d)).to.equal("exists"); // an idempotent put still answers
    });

    it("a budget of 0 stores nothing", async function () {
      const store = open({ budgetBytes: 0 });
      const d = bytes(1, 8);
      await rejects(store.put(oid(1), 0, sha(d), d), "EDGE_NODE_STORAGE_FULL", 507);
    });

    it("reopened over a smaller budget it keeps everything, refuses puts, and takes them again once under", async function () {
      const first = open();
      for (let i = 0; i < 4; i++) await first.put(oid(1), i, sha(bytes(i, 300)), bytes(i, 300));
      await first.close();
      const store = open({ budgetBytes: 1000 });
      await store.ready;
      expect(store.stats()).to.include({ fragments: 4, bytes: 1200, freeBytes: -200 });
      expect(logged.some((l) => /over budget/.test(l.msg))).to.equal(true);
      await rejects(store.put(oid(2), 0, sha(bytes(9, 8)), bytes(9, 8)), "EDGE_NODE_STORAGE_FULL", 507);
      await store.delete(oid(1), 0);
      await store.delete(oid(1), 1);
      expect(await store.put(oid(2), 0, sha(bytes(9, 8)), bytes(9, 8))).to.equal("stored");
    });
  });

  describe("hashes, conflicts and malformed input", function () {
    it("refuses bytes that do not match their sha256 (422) and stores nothing", async function () {
      const store = open();
      await store.ready;
      const d = bytes(1, 100);
      await rejects(store.put(oid(1), 0, sha(bytes(2, 100)), d), "EDGE_NODE_FRAGMENT_HASH", 422);
      expect(store.stats()).to.include({ fragments: 0, bytes: 0 });
      expect(files()).to.deep.equal([]);
    });

    it("a second put of the same bytes is idempotent; other bytes under the same key are a 409 until deleted", async function () {
      const store = open();
      const a = bytes(1, 100);
      const b = bytes(2, 100);
      expect(await store.put(oid(1), 4, sha(a), a)).to.equal("stored");
      expect(await store.put(oid(1), 4, sha(a), a)).to.equal("exists");
      await rejects(store.put(oid(1), 4, sha(b), b), "EDGE_NODE_FRAGMENT_CONFLICT", 409);
      expect((await store.get(oid(1), 4)).data.equals(a)).to.equal(true);
      expect(store.stats()).to.include({ fragments: 1, bytes: 100 });
      await store.delete(oid(1), 4);
      expect(await store.put(oid(1), 4, sha(b), b)).to.equal("stored");
      expect((await store.get(oid(1), 4)).data.equals(b)).to.equal(true);
    });

    it("refuses malformed ids, indices, hashes and sizes with a 4xx, before touching anything", async function () {
      const store = open();
      const d = bytes(1, 16);
      const h = sha(d);
      const badIds = [oid(1).toUpperCase(), oid(1).slice(2), oid(1).slice(0, 64), `${oid(1)}00`, "0x", 7, null];
      for (const id of badIds) await rejects(store.put(id as string, 0, h, d), "EDGE_NODE_BAD_FRAGMENT", 400);
      for (const index of [-1, 256, 1.5, NaN, "1", 2 ** 53]) {
        await rejects(store.put(oid(1), index as number, h, d), "EDGE_NODE_BAD_FRAGMENT", 400);
        await rejects(store.get(oid(1), index as number), "EDGE_NODE_BAD_FRAGMENT", 400);
        await rejects(store.delete(oid(1), index as number), "EDGE_NODE_BAD_FRAGMENT", 400);
      }
      for (const hash of [h.toUpperCase().replace("0X", "0x"), h.slice(2), "0x12", 5]) {
        await rejects(store.put(oid(1), 0, hash as string, d), "EDGE_NODE_BAD_FRAGMENT", 400);
      }
      await rejects(store.put(oid(1), 0, sha(Buffer.alloc(0)), Buffer.alloc(0)), "EDGE_NODE_BAD_FRAGMENT", 400);
      await rejects(store.put(oid(1), 0, h, "text" as unknown as Buffer), "EDGE_NODE_BAD_FRAGMENT", 400);
      const big = bytes(2, (1 << 20) + 1);
      await rejects(store.put(oid(1), 0, sha(big), big), "EDGE_NODE_FRAGMENT_TOO_LARGE", 413);
      const max = bytes(3, 1 << 20);
      expect(await store.put(oid(1), 255, sha(max), max)).to.equal("stored"); // the cap and the last index pass
      expect(store.stats()).to.include({ fragments: 1, bytes: 1 << 20 });
    });
  });

  describe("on disk", function () {
    it("a restart reloads every fragment, verified, with the same counts", async function () {
      const first = open();
      const puts = [
        [oid(1), 0, bytes(1, 500)],
        [oid(1), 9, bytes(2, 8)],
        [oid(2), 255, bytes(3, 210_000)],
      ] as const;
      for (const [id, i, d] of puts) await first.put(id, i, sha(d), d);
      await first.delete(oid(1), 9);
      await first.close();
      const store = open();
      await store.ready;
      expect(store.stats()).to.include({ fragments: 2, objects: 2, bytes: 210_500, corrupt: 0, partialDropped: 0 });
      expect((await store.get(oid(2), 255)).data.equals(puts[2][2])).to.equal(true);
      await rejects(store.get(oid(1), 9), "EDGE_NODE_FRAGMENT_NOT_FOUND", 404);
    });

    it("a file corrupt on disk is dropped at open, counted and reported lost (410), never served", async function () {
      const first = open();
      const d = [bytes(1, 300), bytes(2, 300), bytes(3, 300), bytes(4, 300)];
      for (let i = 0; i < 4; i++) await first.put(oid(1), i, sha(d[i]), d[i]);
      await first.close();
      const flipped = readFileSync(fileOf(oid(1), 0));
      flipped[FRAGMENT_HEADER_BYTES + 7] ^= 0x01; // one bit of the fragment's bytes
      writeFileSync(fileOf(oid(1), 0), flipped);
      truncateSync(fileOf(oid(1), 1), FRAGMENT_HEADER_BYTES + 100); // a copy cut short
      const wrongMagic = readFileSync(fileOf(oid(1), 2));
      wrongMagic[0] = 0;
      writeFileSync(fileOf(oid(1), 2), wrongMagic);

      const store = open();
      await store.ready;
      expect(store.stats()).to.include({ fragments: 1, bytes: 300, corrupt: 3, lost: 3 });
      for (const i of [0, 1, 2]) await rejects(store.get(oid(1), i), "EDGE_NODE_FRAGMENT_LOST", 410);
      expect(store.lostKeys()).to.have.members([0, 1, 2].map((i) => `${oid(1)}/${i}`));
      expect((await store.get(oid(1), 3)).data.equals(d[3])).to.equal(true);
      expect(files()).to.deep.equal([`${oid(1).slice(2)}.3.frag`]);
      // A repair puts it back; the key is no longer lost.
      expect(await store.put(oid(1), 0, sha(d[0]), d[0])).to.equal("stored");
      expect(store.stats().lost).to.equal(2);
      await store.delete(oid(1), 1);
      expect(store.stats().lost).to.equal(1);
    });

    it("a crash mid-write leaves nothing served: partial temp files and truncated files are dropped at open", async function () {
      const first = open();
      const whole = bytes(1, 400);
      await first.put(oid(1), 0, sha(whole), whole);
      await first.close();
      const image = readFileSync(fileOf(oid(1), 0));
      // The crash came while writing another fragment's temp file (never renamed, never acknowledged)...
      writeFileSync(join(dir(), `${oid(2).slice(2)}.5.frag.1234-1.tmp`), image.subarray(0, 90));
      // ...and a copy of a third fragment was cut short on a filesystem that reordered the rename.
      writeFileSync(fileOf(oid(3), 1), image.subarray(0, FRAGMENT_HEADER_BYTES + 10));
      writeFileSync(fileOf(oid(3), 2), Buffer.alloc(0));
      writeFileSync(join(dir(), "unrelated.txt"), "not ours"); // left alone

      const store = open();
      await store.ready;
      expect(store.stats()).to.include({ fragments: 1, bytes: 400, partialDropped: 1, corrupt: 2 });
      await rejects(store.get(oid(2), 5), "EDGE_NODE_FRAGMENT_NOT_FOUND", 404);
      await rejects(store.get(oid(3), 1), "EDGE_NODE_FRAGMENT_LOST", 410);
      expect(files()).to.deep.equal([`${oid(1).slice(2)}.0.frag`, "unrelated.txt"]);
      expect(logged.some((l) => l.level === "error" && /corrupt or partial/.test(l.msg))).to.equal(true);
    });

    it("a file under another key's name does not check (the header names its key)", async function () {
      const first = open();
      const d = bytes(1, 50);
      await first.put(oid(1), 0, sha(d), d);
      await first.close();
      writeFileSync(fileOf(oid(1), 1), readFileSync(fileOf(oid(1), 0)));
      const store = open();
      await store.ready;
      await rejects(store.get(oid(1), 1), "EDGE_NODE_FRAGMENT_LOST", 410);
      expect(store.stats()).to.include({ fragments: 1, corrupt: 1 });
    });

    it("a failed disk write stores nothing and releases its reservation (503)", async function () {
      const store = open({ budgetBytes: 100 });
      await store.ready;
      rmSync(dir(), { recursive: true });
      const d = bytes(1, 100);
      await rejects(store.put(oid(1), 0, sha(d), d), "EDGE_NODE_STORAGE_UNAVAILABLE", 503);
      expect(store.stats()).to.include({ fragments: 0, bytes: 0, freeBytes: 100 });
      await rejects(store.get(oid(1), 0), "EDGE_NODE_FRAGMENT_NOT_FOUND", 404);
    });

    it("a store that cannot open reports why and refuses every operation (503)", async function () {
      writeFileSync(join(root, "fragments"), "a file where the directory should be");
      const store = open();
      await store.ready;
      expect(store.stats().ready).to.equal(false);
      expect(store.stats().error).to.be.a("string");
      const d = bytes(1, 8);
      await rejects(store.put(oid(1), 0, sha(d), d), "EDGE_NODE_STORAGE_UNAVAILABLE", 503);
      await rejects(store.get(oid(1), 0), "EDGE_NODE_STORAGE_UNAVAILABLE", 503);
    });
  });

  describe("corruption in memory", function () {
    /** Reaches into the store's map to flip a bit, as a memory fault would. */
    function flipInMemory(store: FragmentStore, objectId: string, index: number): void {
      const objects = (store as unknown as { objects: Map<string, Map<number, { data: Buffer }>> }).objects;
      objects.get(objectId)!.get(index)!.data[0] ^= 0x80;
    }

    it("is caught on read and restored from a good disk copy", async function () {
      const store = open();
      const d = bytes(1, 256);
      await store.put(oid(1), 0, sha(d), d);
      flipInMemory(store, oid(1), 0);
      expect((await store.get(oid(1), 0)).data.equals(d)).to.equal(true);
      expect(store.stats()).to.include({ fragments: 1, bytes: 256, corrupt: 1, restoredFromDisk: 1, lost: 0 });
      expect((await store.get(oid(1), 0)).data.equals(d)).to.equal(true);
    });

    it("with a bad disk copy too, it is removed from both, counted and lost (410), never served", async function () {
      const store = open();
      const d = bytes(1, 256);
      const e = bytes(2, 64);
      await store.put(oid(1), 0, sha(d), d);
      await store.put(oid(1), 1, sha(e), e);
      flipInMemory(store, oid(1), 0);
      truncateSync(fileOf(oid(1), 0), 40);
      await rejects(store.get(oid(1), 0), "EDGE_NODE_FRAGMENT_LOST", 410);
      await rejects(store.get(oid(1), 0), "EDGE_NODE_FRAGMENT_LOST", 410);
      expect(store.stats()).to.include({ fragments: 1, bytes: 64, corrupt: 1, lost: 1 });
      expect(existsSync(fileOf(oid(1), 0))).to.equal(false);
      // A put of the right bytes replaces it; an idempotent put over a corrupt copy stores the good one.
      expect(await store.put(oid(1), 0, sha(d), d)).to.equal("stored");
      flipInMemory(store, oid(1), 1);
      rmSync(fileOf(oid(1), 1));
      expect(await store.put(oid(1), 1, sha(e), e)).to.equal("stored");
      expect((await store.get(oid(1), 1)).data.equals(e)).to.equal(true);
      expect(store.stats()).to.include({ fragments: 2, bytes: 320, lost: 0 });
    });

    it("#scrub rewrites bad disk copies from memory and restores bad memory copies from disk", async function () {
      const store = open();
      const d = [bytes(1, 100), bytes(2, 100), bytes(3, 100)];
      for (let i = 0; i < 3; i++) await store.put(oid(1), i, sha(d[i]), d[i]);
      truncateSync(fileOf(oid(1), 0), 10);
      rmSync(fileOf(oid(1), 1));
      flipInMemory(store, oid(1), 2);
      expect(await store.scrub()).to.deep.equal({ checked: 3, rewritten: 2, lost: 0 });
      await store.close();
      const reopened = open();
      await reopened.ready;
      expect(reopened.stats()).to.include({ fragments: 3, corrupt: 0 });
      for (let i = 0; i < 3; i++) expect((await reopened.get(oid(1), i)).data.equals(d[i])).to.equal(true);
    });
  });

  it("exports the store's figures as Prometheus metrics", async function () {
    const store = open({ budgetBytes: 4096 });
    const registry = new Registry();
    createFragmentMetrics(registry, () => store.stats());
    const d = bytes(1, 100);
    await store.put(oid(1), 0, sha(d), d);
    await store.put(oid(1), 1, sha(d), d);
    (store as unknown as { objects: Map<string, Map<number, { data: Buffer }>> }).objects
      .get(oid(1))!
      .get(0)!.data[0] ^= 1;
    rmSync(fileOf(oid(1), 0));
    await rejects(store.get(oid(1), 0), "EDGE_NODE_FRAGMENT_LOST", 410);
    const text = await registry.metrics();
    expect(text).to.match(/^edge_host_storage_bytes 100$/m);
    expect(text).to.match(/^edge_host_storage_fragments 1$/m);
    expect(text).to.match(/^edge_host_storage_budget_bytes 4096$/m);
    expect(text).to.match(/^edge_host_storage_corrupt_total 1$/m);
    expect(await registry.metrics()).to.match(/^edge_host_storage_corrupt_total 1$/m); // not counted twice
  });

  it("the host role opens its store under the data dir and shows it in /status and /metrics", async function () {
    const silent = { info() {}, warn() {}, error() {}, debug() {}, child: () => silent } as never;
    const account = privateKeyToAccount(`0x${"71".repeat(32)}`);
    const registry = new Registry();
    const config = loadConfig(
      ["--role", "host", "--rpc", "http://127.0.0.1:8545", "--addresses", "b.json", "--gateway", "http://127.0.0.1:1"],
      { EDGE_NODE_DEVICE_KEY: `0x${"71".repeat(32)}`, EDGE_NODE_DATA_DIR: root, EDGE_NODE_STORAGE_MEMORY_MB: "3" },
    );
    const jobs = new Counter({ name: "j", help: "j", labelNames: ["outcome"] as const, registers: [] });
    const host = createHost(
      {
        signer: { account, chainId: 31337 },
        log: silent,
        work: new WorkTracker(),
        serving: () => false,
        tracing: initTracing({ serviceName: "edge-host", env: {} }),
        metrics: { jobs, registry },
      },
      { ...config, cacheDiskMb: 0 },
    );
    await host.start();
    await host.stop(); // waits for the store to have opened
    expect(existsSync(join(root, `${account.address.toLowerCase()}-host`, "fragments"))).to.equal(true);
    expect(host.status().storage).to.deep.include({ ready: true, fragments: 0, bytes: 0, budgetBytes: 3 << 20 });
    expect(await registry.metrics()).to.match(/^edge_host_storage_budget_bytes 3145728$/m);
  });

  it("any sequence of puts, deletes, restarts and crashes keeps the store equal to a model (fixed seed)", async function () {
    this.timeout(120_000);
    const BUDGET = 200;
    const Op = fc.oneof(
      fc.record({
        op: fc.constant("put" as const),
        object: fc.nat(2),
        index: fc.nat(3),
        value: fc.nat(5),
        wrongHash: fc.boolean(),
      }),
      fc.record({ op: fc.constant("delete" as const), object: fc.nat(2), index: fc.nat(3) }),
      fc.record({ op: fc.constantFrom("restart" as const, "crash" as const), index: fc.nat(3) }),
    );
    const valueOf = (v: number) => bytes(100 + v, 8 + v * 17); // 8..93 bytes
    await fc.assert(
      fc.asyncProperty(fc.array(Op, { maxLength: 30 }), async (ops) => {
        rmSync(dir(), { recursive: true, force: true });
        const model = new Map<string, Buffer>();
        let store = open({ budgetBytes: BUDGET, fsync: false });
        await store.ready;
        for (const step of ops) {
          if (step.op === "put") {
            const key = `${oid(step.object)}/${step.index}`;
            const data = valueOf(step.value);
            const used = [...model.values()].reduce((n, b) => n + b.length, 0);
            const held = model.get(key);
            const expected = step.wrongHash
              ? "EDGE_NODE_FRAGMENT_HASH"
              : held
                ? held.equals(data)
                  ? "exists"
                  : "EDGE_NODE_FRAGMENT_CONFLICT"
                : used + data.length > BUDGET
                  ? "EDGE_NODE_STORAGE_FULL"
                  : "stored";
            const hash = step.wrongHash ? sha(valueOf(step.value + 1)) : sha(data);
            const got = await store
              .put(oid(step.object), step.index, hash, data)
              .catch((e: { code: string }) => e.code);
            if (got !== expected) return false;
            if (got === "stored") model.set(key, data);
          } else if (step.op === "delete") {
            const key = `${oid(step.object)}/${step.index}`;
            if ((await store.delete(oid(step.object), step.index)) !== model.delete(key)) return false;
          } else {
            if (step.op === "restart") await store.close();
            else writeFileSync(join(dir(), `${oid(9).slice(2)}.${step.index}.frag.1-1.tmp`), valueOf(step.index));
            store = open({ budgetBytes: BUDGET, fsync: false });
            await store.ready;
          }
          const stats = store.stats();
          const sum = [...model.values()].reduce((n, b) => n + b.length, 0);
          if (stats.bytes !== sum || stats.fragments !== model.size || stats.freeBytes !== BUDGET - sum) return false;
        }
        for (const [key, data] of model) {
          const [objectId, index] = key.split("/");
          if (!(await store.get(objectId, Number(index))).data.equals(data)) return false;
        }
        await store.close();
        return store.stats().corrupt === 0 && files().length === model.size;
      }),
      { seed: 2121, numRuns: 120 },
    );
  });

  describe("--storage-memory-mb", function () {
    const KEY = "0x" + "ab".repeat(32);
    const base = [
      "--role",
      "host",
      "--rpc",
      "http://127.0.0.1:8545",
      "--addresses",
      "book.json",
      "--gateway",
      "http://127.0.0.1:7000",
    ];
    const problems = (argv: string[], env: Record<string, string> = {}): string[] => {
      try {
        loadConfig(argv, { EDGE_NODE_DEVICE_KEY: KEY, ...env });
      } catch (error) {
        if (error instanceof ConfigError) return error.problems;
        throw error;
      }
      return [];
    };

    it("defaults to 256 MiB and comes from a flag or EDGE_NODE_STORAGE_MEMORY_MB", function () {
      expect(loadConfig(base, { EDGE_NODE_DEVICE_KEY: KEY }).storageMemoryMb).to.equal(256);
      expect(loadConfig([...base, "--storage-memory-mb", "0"], { EDGE_NODE_DEVICE_KEY: KEY }).storageMemoryMb).to.equal(
        0,
      );
      const env = { EDGE_NODE_DEVICE_KEY: KEY, EDGE_NODE_STORAGE_MEMORY_MB: "1024" };
      expect(loadConfig(base, env).storageMemoryMb).to.equal(1024);
    });

    it("refuses a value that is not a whole number of MiB from 0 to 65536", function () {
      for (const bad of ["-1", "65537", "1.5", "lots"]) {
        expect(problems([...base, "--storage-memory-mb", bad]).join("\n")).to.match(
          /storage-memory-mb|storageMemoryMb/,
        );
      }
    });

    it("edge-node exits 2 with the message for a bad --storage-memory-mb", function () {
      this.timeout(60_000);
      const run = spawnSync(
        process.execPath,
        ["-r", "ts-node/register/transpile-only", "node/cli.ts", ...base, "--storage-memory-mb", "-5"],
        { env: { ...process.env, EDGE_NODE_DEVICE_KEY: KEY }, encoding: "utf8", timeout: 50_000 },
      );
      expect(run.status).to.equal(2);
      expect(run.stderr).to.match(/storage-memory-mb/);
    });
  });
});
