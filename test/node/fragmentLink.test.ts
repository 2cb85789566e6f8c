/**
 * Edge Storage fragments over a real host link (issue 21, docs/storage.md "Fragments over the link"): the gateway's
 * routing core (HostRegistry, HostLinks on a real HTTP server: test/shared/gatewayHarness.ts) takes a real host's
 * GatewayLink (HTTP/2 over the upgraded socket, signed registration) whose jobs a real HostJobs runs over a real
 * FragmentStore; the gateway's fragmentClient talks to it on the HostLink the gateway holds. A second host answers
 * with a lying handler.
 */
import { expect } from "chai";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, truncateSync } from "node:fs";
import type http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";

import { FRAGMENT_WIRE_MAX_BYTES } from "../../node/roles/fragmentWire";
import {
  deleteFragment,
  getFragment,
  listFragments,
  listLostFragments,
  putFragment,
} from "../../node/roles/gateway/fragmentClient";
import type { HostLink } from "../../node/roles/gateway/links";
import { DEFAULT_MAX_FRAGMENT_BYTES, FragmentStore } from "../../node/roles/host/fragments";
import type { GatewayLink } from "../../node/roles/host/link";
import { isEdgeError } from "../../offchain/common/errors";
import {
  type GatewayHarness,
  connectHost,
  hostAccount,
  silentLog,
  startGatewayHarness,
} from "../shared/gatewayHarness";
import { fragmentHost } from "../../scripts/lib/storageNetwork";

const sha = (data: Uint8Array) => `0x${createHash("sha256").update(data).digest("hex")}`;
const oid = (n: number) => `0x${createHash("sha256").update(`object ${n}`).digest("hex")}`;
function bytes(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0, block = 0; i < length; block++) i += createHash("sha256").update(`${seed}/${block}`).digest().copy(out, i); // prettier-ignore
  return out;
}
const T = { timeoutMs: 10_000 };

async function rejects(promise: Promise<unknown>, code: string, status: number): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (!isEdgeError(error)) throw error;
    expect([error.code, error.status]).to.deep.equal([code, status]);
    return;
  }
  expect.fail(`expected ${code}`);
}

/** A raw stream on the link: the answer's status, error code and body, and how many body bytes were pulled. */
function raw(
  link: HostLink,
  headers: http2.OutgoingHttpHeaders,
  body?: Readable | Buffer,
): Promise<{ status: number; code: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = link.request({ "x-edge-kind": "fragment", ...headers }, body === undefined);
    let status = 0;
    let code: string | undefined;
    let text = "";
    stream.on("response", (h) => ((status = Number(h[":status"])), (code = h["x-edge-error"] as string)));
    stream.on("data", (chunk: Buffer) => (text += chunk.toString()));
    stream.on("end", () => resolve({ status, code, body: text }));
    stream.on("error", () => undefined); // a refused upload's writes fail once the host closes the stream
    stream.on("close", () => (status ? resolve({ status, code, body: text }) : reject(new Error("stream closed"))));
    if (Buffer.isBuffer(body)) stream.end(body);
    else body?.pipe(stream);
  });
}

describe("fragments over the host's link (issue 21)", function () {
  this.timeout(60_000);
  let gateway: GatewayHarness;
  let root: string;
  let store: FragmentStore;
  let link: HostLink;
  let liar: HostLink;
  const hostLinks: GatewayLink[] = [];
  /** What the lying host answers to a get: bytes and the sha256 header it claims. */
  let lie: { data: Buffer; sha256: string } = { data: Buffer.from("x"), sha256: sha(Buffer.from("x")) };

  const linkOf = (address: string) => gateway.hosts.routable().find(([host]) => host === address)![1].link;

  before(async function () {
    gateway = await startGatewayHarness({ key: `0x${"61".repeat(32)}` });
    root = mkdtempSync(join(tmpdir(), "fragment-link-"));
    store = new FragmentStore({ dir: join(root, "fragments"), budgetBytes: 8 << 20, fsync: false, log: silentLog });
    hostLinks.push(await connectHost(gateway, hostAccount(0x41), fragmentHost(hostAccount(0x41), store), 8));
    link = linkOf(hostAccount(0x41).address);
    const lying = (_req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      res.writeHead(200, { "x-edge-fragment-sha256": lie.sha256 });
      res.end(lie.data);
    };
    hostLinks.push(await connectHost(gateway, hostAccount(0x42), lying));
    liar = linkOf(hostAccount(0x42).address);
  });

  after(async function () {
    await Promise.all(hostLinks.map((l) => l.leave()));
    await gateway?.close();
    await store?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("the wire's fragment limit is the store's", function () {
    expect(FRAGMENT_WIRE_MAX_BYTES).to.equal(DEFAULT_MAX_FRAGMENT_BYTES);
  });

  it("puts, gets, lists and deletes fragments round trip", async function () {
    const a = bytes(1, 210_000);
    const b = bytes(2, 24);
    expect(await putFragment(link, { objectId: oid(1), index: 0, sha256: sha(a), data: a }, T)).to.equal("stored");
    expect(await putFragment(link, { objectId: oid(1), index: 7, sha256: sha(b), data: b }, T)).to.equal("stored");
    expect(await putFragment(link, { objectId: oid(1), index: 0, sha256: sha(a), data: a }, T)).to.equal("exists");
    expect((await getFragment(link, { objectId: oid(1), index: 0, sha256: sha(a) }, T)).equals(a)).to.equal(true);
    expect((await getFragment(link, { objectId: oid(1), index: 7, sha256: sha(b) }, T)).equals(b)).to.equal(true);
    expect(await listFragments(link, oid(1), T)).to.deep.equal({ indices: [0, 7], lost: [] });
    expect(await listFragments(link, oid(2), T)).to.deep.equal({ indices: [], lost: [] });
    expect(await deleteFragment(link, { objectId: oid(1), index: 0 }, T)).to.equal(true);
    expect(await deleteFragment(link, { objectId: oid(1), index: 0 }, T)).to.equal(false);
    await rejects(getFragment(link, { objectId: oid(1), index: 0, sha256: sha(a) }, T), "EDGE_NODE_FRAGMENT_NOT_FOUND", 404); // prettier-ignore
    expect(await listFragments(link, oid(1), T)).to.deep.equal({ indices: [7], lost: [] });
    expect(await deleteFragment(link, { objectId: oid(1), index: 7 }, T)).to.equal(true);
    expect(store.stats()).to.include({ fragments: 0, bytes: 0 });
  });

  it("refuses bytes that do not match their sha256 (422) and stores nothing", async function () {
    const a = bytes(3, 1000);
    const other = sha(bytes(4, 1000));
    await rejects(putFragment(link, { objectId: oid(3), index: 1, sha256: other, data: a }, T), "EDGE_NODE_FRAGMENT_HASH", 422); // prettier-ignore
    expect(store.has(oid(3), 1)).to.equal(false);
    expect(store.stats()).to.include({ fragments: 0, bytes: 0 });
  });

  describe("an oversized put", function () {
    const path = `/fragments/${oid(5)}/0`;
    const headers = { ":method": "PUT", ":path": path, "x-edge-fragment-sha256": sha(Buffer.from("y")) };

    it("is refused by the client before any stream opens", async function () {
      const started = link.started;
      const big = Buffer.alloc(FRAGMENT_WIRE_MAX_BYTES + 1, 1);
      await rejects(putFragment(link, { objectId: oid(5), index: 0, sha256: sha(big), data: big }, T), "EDGE_NODE_FRAGMENT_TOO_LARGE", 413); // prettier-ignore
      expect(link.started).to.equal(started);
    });

    it("declared over the limit: 413 from the host before it reads the body", async function () {
      let pulled = 0;
      const body = new Readable({
        read() {
          pulled += 64 * 1024;
          this.push(pulled > 16 << 20 ? null : Buffer.alloc(64 * 1024, 2));
        },
      });
      const answer = await raw(link, { ...headers, "content-length": 16 << 20 }, body);
      expect([answer.status, answer.code]).to.deep.equal([413, "EDGE_NODE_FRAGMENT_TOO_LARGE"]);
      expect(JSON.parse(answer.body)).to.include({ code: "EDGE_NODE_FRAGMENT_TOO_LARGE" });
      expect(pulled).to.be.below(FRAGMENT_WIRE_MAX_BYTES); // the client's own buffers, not a fragment's worth
      expect(store.has(oid(5), 0)).to.equal(false);
    });

    it("undeclared: 413 once the bytes read pass the limit, the rest never pulled", async function () {
      let pulled = 0;
      const body = new Readable({
        read() {
          pulled += 64 * 1024;
          this.push(pulled > 64 << 20 ? null : Buffer.alloc(64 * 1024, 3));
        },
      });
      const answer = await raw(link, headers, body);
      expect([answer.status, answer.code]).to.deep.equal([413, "EDGE_NODE_FRAGMENT_TOO_LARGE"]);
      expect(pulled).to.be.below(4 << 20); // of 64 MiB offered: the limit, one window and buffers
      expect(store.has(oid(5), 0)).to.equal(false);
      body.destroy();
      // The link still serves.
      expect(await listFragments(link, oid(5), T)).to.deep.equal({ indices: [], lost: [] });
    });
  });

  it("refuses other bytes under a held fragment (409) and keeps the held ones", async function () {
    const a = bytes(6, 500);
    const b = bytes(7, 500);
    await putFragment(link, { objectId: oid(6), index: 2, sha256: sha(a), data: a }, T);
    await rejects(putFragment(link, { objectId: oid(6), index: 2, sha256: sha(b), data: b }, T), "EDGE_NODE_FRAGMENT_CONFLICT", 409); // prettier-ignore
    expect((await getFragment(link, { objectId: oid(6), index: 2, sha256: sha(a) }, T)).equals(a)).to.equal(true);
    await deleteFragment(link, { objectId: oid(6), index: 2 }, T);
  });

  it("a corrupted fragment answers 410 and the gateway reports it lost", async function () {
    const a = bytes(8, 300);
    await putFragment(link, { objectId: oid(8), index: 4, sha256: sha(a), data: a }, T);
    const objects = (store as unknown as { objects: Map<string, Map<number, { data: Buffer }>> }).objects;
    objects.get(oid(8))!.get(4)!.data[0] ^= 0x80; // a memory fault
    truncateSync(join(root, "fragments", `${oid(8).slice(2)}.4.frag`), 40); // and a damaged disk copy
    await rejects(getFragment(link, { objectId: oid(8), index: 4, sha256: sha(a) }, T), "EDGE_NODE_FRAGMENT_LOST", 410); // prettier-ignore
    expect(await listFragments(link, oid(8), T)).to.deep.equal({ indices: [], lost: [4] });
    expect(await listLostFragments(link, T)).to.deep.equal({ lost: [{ objectId: oid(8), index: 4 }], total: 1 });
    // Repaired by a put of the right bytes.
    expect(await putFragment(link, { objectId: oid(8), index: 4, sha256: sha(a), data: a }, T)).to.equal("stored");
    expect(await listLostFragments(link, T)).to.deep.equal({ lost: [], total: 0 });
    await deleteFragment(link, { objectId: oid(8), index: 4 }, T);
  });

  it("the gateway refuses a host's bytes that do not hash to the expected sha256", async function () {
    const good = bytes(9, 100);
    const bad = bytes(10, 100);
    const wanted = { objectId: oid(9), index: 0, sha256: sha(good) };
    lie = { data: bad, sha256: sha(good) }; // the right header over other bytes
    await rejects(getFragment(liar, wanted, T), "EDGE_NODE_FRAGMENT_MISMATCH", 502);
    lie = { data: bad, sha256: sha(bad) }; // other bytes, honestly labelled
    await rejects(getFragment(liar, wanted, T), "EDGE_NODE_FRAGMENT_MISMATCH", 502);
    lie = { data: good, sha256: sha(bad) }; // the right bytes under a wrong header: not trusted either
    await rejects(getFragment(liar, wanted, T), "EDGE_NODE_FRAGMENT_MISMATCH", 502);
    lie = { data: Buffer.from("{}"), sha256: sha(good) }; // a put's or a list's answer that is not one
    await rejects(listFragments(liar, oid(9), T), "EDGE_NODE_HOST_FAILED", 502);
    lie = { data: good, sha256: sha(good) };
    expect((await getFragment(liar, wanted, T)).equals(good)).to.equal(true);
  });

  it("takes concurrent puts: distinct fragments all stored, repeats of one stored once", async function () {
    const fragments = Array.from({ length: 24 }, (_, i) => ({ objectId: oid(11 + (i % 3)), index: i, data: bytes(100 + i, 1000 + i) })); // prettier-ignore
    const same = bytes(200, 4096);
    const results = await Promise.all([
      ...fragments.map((f) => putFragment(link, { ...f, sha256: sha(f.data) }, T)),
      ...Array.from({ length: 6 }, () => putFragment(link, { objectId: oid(14), index: 0, sha256: sha(same), data: same }, T)), // prettier-ignore
    ]);
    expect(results.slice(0, 24)).to.deep.equal(Array(24).fill("stored"));
    expect(results.slice(24).sort()).to.deep.equal(["exists", "exists", "exists", "exists", "exists", "stored"]);
    const total = fragments.reduce((sum, f) => sum + f.data.length, 0) + same.length;
    expect(store.stats()).to.include({ fragments: 25, bytes: total });
    for (const f of fragments)
      expect((await getFragment(link, { ...f, sha256: sha(f.data) }, T)).equals(f.data)).to.equal(true);
    const held = await Promise.all([11, 12, 13].map((n) => listFragments(link, oid(n), T)));
    expect(held.map((l) => l.indices.length)).to.deep.equal([8, 8, 8]);
    await Promise.all(fragments.map((f) => deleteFragment(link, f, T)));
    await deleteFragment(link, { objectId: oid(14), index: 0 }, T);
    expect(store.stats()).to.include({ fragments: 0, bytes: 0 });
  });

  it("refuses malformed ids, paths and methods (400), at the host and in the client", async function () {
    const id = oid(15);
    const cases: Array<[string, string]> = [
      ["GET", `/fragments/${id.toUpperCase().replace("0X", "0x")}/0`],
      ["GET", `/fragments/${id.slice(0, 60)}/0`],
      ["GET", `/fragments/${id}/256`],
      ["GET", `/fragments/${id}/01`],
      ["GET", `/fragments/${id}/-1`],
      ["GET", `/fragments/${id}/1.5`],
      ["GET", `/fragments/nope`],
      ["GET", `/fragments/${id}/0/extra`],
      ["GET", `/elsewhere`],
      ["POST", `/fragments/${id}/0`],
      ["PUT", `/fragments/${id}`],
      ["DELETE", `/fragments/lost`],
    ];
    for (const [method, path] of cases) {
      const answer = await raw(link, { ":method": method, ":path": path });
      expect([method, path, answer.status, answer.code]).to.deep.equal([method, path, 400, "EDGE_NODE_BAD_FRAGMENT"]);
    }
    const noHash = await raw(link, { ":method": "PUT", ":path": `/fragments/${id}/0` }, Buffer.from("z"));
    expect([noHash.status, noHash.code]).to.deep.equal([400, "EDGE_NODE_BAD_FRAGMENT"]);
    const data = Buffer.from("z");
    await rejects(putFragment(link, { objectId: "0x1234", index: 0, sha256: sha(data), data }, T), "EDGE_NODE_BAD_FRAGMENT", 400); // prettier-ignore
    await rejects(getFragment(link, { objectId: id, index: 300, sha256: sha(data) }, T), "EDGE_NODE_BAD_FRAGMENT", 400); // prettier-ignore
    await rejects(listFragments(link, "0xnope", T), "EDGE_NODE_BAD_FRAGMENT", 400);
    expect(store.stats()).to.include({ fragments: 0 });
  });
});
