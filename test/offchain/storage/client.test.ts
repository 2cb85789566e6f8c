import { expect } from "chai";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Value } from "typebox/value";
import { type Hex, getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { writeKeystoreFile } from "../../../offchain/common/keystore";
import {
  NO_OBJECT,
  STORAGE_OBJECT_TYPE,
  type StorageAction,
  type StorageManifest,
  StorageFrameError,
  StorageRequestHeadersSchema,
  checkStorageRequest,
  storageListBody,
  decodeObjectUpload,
  encodeObjectDownload,
  verifyStorageManifest,
} from "../../../offchain/common/protocol";
import {
  getCommand,
  keygenCommand,
  lsCommand,
  putCommand,
  rmCommand,
  storageMain,
} from "../../../offchain/storage/cli";
import { StorageClient, type StorageClientOptions } from "../../../offchain/storage/client";
import { StorageKey } from "../../../offchain/storage/keys";
import { CHAIN_ID, expectEdgeError, objectBytes } from "./helpers";

const PRIVATE_KEY = `0x${"e7".repeat(32)}` as Hex;
const alice = privateKeyToAccount(PRIVATE_KEY);
const mallory = privateKeyToAccount(`0x${"b2".repeat(32)}`);
const device = privateKeyToAccount(`0x${"c3".repeat(32)}`).address;
const key = new StorageKey(Buffer.alloc(32, 7), "key-file");
const ACTIONS: Record<string, StorageAction> = { PUT: "put", GET: "get", DELETE: "delete" };
const sha256 = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`;

interface Stored {
  manifest: StorageManifest;
  fragments: Map<number, Buffer>;
  createdAt: number;
}
type Handler = (request: IncomingMessage, response: ServerResponse, body: Buffer) => boolean | Promise<boolean>;

const json = (response: ServerResponse, status: number, body: unknown): void =>
  void response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
const refuse = (response: ServerResponse, status: number, code: string, message: string): void =>
  json(response, status, { code, message });
const sendFrame = (response: ServerResponse, frame: Buffer): void =>
  void response.writeHead(200, { "content-type": STORAGE_OBJECT_TYPE, "content-length": frame.length }).end(frame);

/** A writable stream that keeps what it is given. */
function sink(): { stream: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  return { stream, bytes: () => Buffer.concat(chunks) };
}

/** Awaits `run` and checks it rejects with a TypeError. */
async function rejectsTypeError(run: () => Promise<unknown>): Promise<void> {
  const outcome = await run().then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome).to.be.instanceOf(TypeError);
}

/**
 * A test double of a gateway's storage API, for the client's tests only: it checks every request's signature
 * (checkStorageRequest, a replay guard on the digest), decodes uploads, keeps objects in memory and answers a
 * download with `pick`'s fragments (by default the last k: the parity ones and the last data ones).
 */
class GatewayDouble {
  readonly objects = new Map<string, Stored>();
  readonly digests = new Set<string>();
  /** Every request's headers and body as they arrived. */
  readonly wire: Buffer[] = [];
  /** Answers instead of the API when it returns true. */
  override?: Handler;
  pick = (s: Stored) => [...s.fragments.keys()].slice(s.manifest.n - s.manifest.k);
  tamper?: (index: number, bytes: Buffer) => Buffer;
  statusRole = "gateway";
  server!: Server;
  url = "";

  async start(): Promise<this> {
    this.server = createServer((request, response) => {
      void this.#serve(request, response).catch((error) => refuse(response, 500, "DOUBLE_BUG", String(error)));
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  async #serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    this.wire.push(Buffer.concat([Buffer.from(JSON.stringify(request.headers)), body]));
    if (this.override && (await this.override(request, response, body))) return;
    const url = new URL(request.url ?? "/", "http://double");
    if (url.pathname === "/status") return json(response, 200, { device, role: this.statusRole, chainId: CHAIN_ID });
    const route = /^\/storage\/v1\/objects(?:\/(0x[0-9a-f]{64}))?$/.exec(url.pathname);
    const id = route?.[1] as Hex | undefined;
    const action = id === undefined ? (request.method === "GET" ? "list" : undefined) : ACTIONS[request.method ?? ""];
    if (!route || !action)
      return refuse(response, 404, "DOUBLE_NO_ROUTE", `no route ${request.method} ${url.pathname}`);
    const signatureHeaders = ["x-edge-owner", "x-edge-timestamp", "x-edge-nonce", "x-edge-signature"];
    const headers = Object.fromEntries(signatureHeaders.map((h) => [h, request.headers[h]]));
    if (!Value.Check(StorageRequestHeadersSchema, headers))
      return refuse(response, 401, "DOUBLE_UNSIGNED", "the request is not signed");
    const [after, limit] = ["after", "limit"].map((name) => url.searchParams.get(name) ?? undefined);
    const signed = action === "list" ? storageListBody(after, limit === undefined ? undefined : Number(limit)) : body;
    const check = await checkStorageRequest(CHAIN_ID, device, headers, { action, objectId: id ?? NO_OBJECT, body: signed }); // prettier-ignore
    if (!check.ok) return refuse(response, 401, "DOUBLE_BAD_SIGNATURE", check.message);
    if (this.digests.has(check.digest)) return refuse(response, 409, "DOUBLE_REPLAY", "this request was served");
    this.digests.add(check.digest);
    if (Math.abs(Number(headers["x-edge-timestamp"]) - Date.now() / 1000) > 300)
      return refuse(response, 401, "DOUBLE_STALE", "the request's timestamp is not now");
    const owner = getAddress(headers["x-edge-owner"]);
    if (action === "list") return this.#list(response, owner, url.searchParams);
    const stored = this.objects.get(id!);
    if (action === "put") return this.#put(request, response, owner, id!, body);
    if (!stored || stored.manifest.owner !== owner) return refuse(response, 404, "DOUBLE_NOT_FOUND", `no object ${id}`);
    if (action === "delete") {
      this.objects.delete(id!);
      return json(response, 200, { objectId: id, deleted: true });
    }
    const given = new Map(this.pick(stored).map((i) => [i, stored.fragments.get(i)!] as const));
    if (this.tamper) for (const [i, bytes] of given) given.set(i, this.tamper(i, Buffer.from(bytes)));
    sendFrame(response, encodeObjectDownload(stored.manifest, given));
  }

  #put(request: IncomingMessage, response: ServerResponse, owner: string, id: Hex, body: Buffer): void {
    if (request.headers["content-type"] !== STORAGE_OBJECT_TYPE)
      return refuse(response, 415, "DOUBLE_TYPE", "not an object frame");
    let upload;
    try {
      upload = decodeObjectUpload(body);
    } catch (error) {
      if (error instanceof StorageFrameError) return refuse(response, 400, "DOUBLE_BAD_FRAME", error.message);
      throw error;
    }
    const { manifest, fragments } = upload;
    if (manifest.objectId !== id || manifest.owner !== owner)
      return refuse(response, 403, "DOUBLE_NOT_YOURS", "the manifest is another object's or owner's");
    if (
      !verifyStorageManifest(CHAIN_ID, manifest) ||
      [...fragments].some(([i, f]) => sha256(f) !== manifest.fragments[i])
    )
      return refuse(response, 422, "DOUBLE_BAD_OBJECT", "the manifest or a fragment does not check");
    const placement = manifest.fragments.map((_, i) => ({ fragment: i, host: `0x${String((i % 5) + 1).repeat(40)}` }));
    const reply = { objectId: id, storedBytes: manifest.n * manifest.fragmentSize, placement };
    const existing = this.objects.get(id);
    if (existing) {
      if (existing.manifest.signature !== manifest.signature) return refuse(response, 409, "DOUBLE_CONFLICT", "exists");
      return json(response, 200, reply);
    }
    const copies = new Map([...fragments].map(([i, f]) => [i, Buffer.from(f)] as const));
    this.objects.set(id, { manifest: { ...manifest, placement }, fragments: copies, createdAt: Date.now() });
    json(response, 201, reply);
  }

  #list(response: ServerResponse, owner: string, query: URLSearchParams): void {
    const after = query.get("after") ?? "";
    const limit = Number(query.get("limit") ?? 100);
    const mine = [...this.objects.entries()]
      .filter(([id, s]) => s.manifest.owner === owner && id > after)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    const page = mine.slice(0, limit).map(([objectId, s]) => ({
      objectId,
      size: s.manifest.size,
      storedBytes: s.manifest.n * s.manifest.fragmentSize,
      createdAt: s.createdAt,
      fragments: s.manifest.n,
      healthy: s.fragments.size,
    }));
    json(
      response,
      200,
      mine.length > limit ? { objects: page, next: page[page.length - 1].objectId } : { objects: page },
    );
  }
}

describe("offchain/storage client (StorageClient against a gateway double)", function () {
  this.timeout(30_000);
  let double: GatewayDouble;
  const client = (options: Partial<StorageClientOptions> = {}) =>
    new StorageClient({ gatewayUrl: double.url, gateway: device, chainId: CHAIN_ID, account: alice, key, ...options });

  beforeEach(async function () {
    double = await new GatewayDouble().start();
  });
  afterEach(async function () {
    await double.stop();
  });

  it("puts an object framed and signed, and gets it back from k fragments with data fragments missing", async function () {
    const bytes = objectBytes(300_001, 5);
    const put = await client().put(bytes);
    expect(put.objectId).to.match(/^0x[0-9a-f]{64}$/);
    const stored = double.objects.get(put.objectId)!;
    expect(put).to.deep.equal({
      objectId: put.objectId,
      size: 300_001,
      storedBytes: 16 * stored.manifest.fragmentSize,
      placement: stored.manifest.placement,
    });
    expect(put.placement).to.have.length(16);
    expect(double.pick(stored)).to.deep.equal([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    // Twice, each request with its own nonce (the double refuses a replayed digest).
    expect((await client().get(put.objectId)).equals(bytes)).to.equal(true);
    expect((await client().get(put.objectId.toUpperCase().replace("0X", "0x"))).equals(bytes)).to.equal(true);
    expect(double.digests.size).to.equal(3);
    // Neither the key nor the object's own key nor the plaintext crossed the wire.
    const objectKey = key.objectKey(put.objectId, alice.address);
    for (const sent of double.wire) {
      expect(sent.includes(objectKey)).to.equal(false);
      expect(sent.includes(bytes.subarray(1000, 1064))).to.equal(false);
    }
    const empty = await client().put(new Uint8Array(0));
    expect((await client().get(empty.objectId)).length).to.equal(0);
  });

  it("lists the owner's objects page by page, and removes one", async function () {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await client({ seal: { k: 2, n: 3 } }).put(objectBytes(100 + i, i))).objectId);
    await client({ account: mallory }).put(objectBytes(10, 9));
    ids.sort();
    const seen: string[] = [];
    let page = await client().list(undefined, 2);
    expect(page.objects).to.have.length(2);
    for (;;) {
      seen.push(...page.objects.map((o) => o.objectId));
      if (page.next === undefined) break;
      page = await client().list(page.next, 2);
    }
    expect(seen).to.deep.equal(ids);
    const all = await client().list();
    expect(all.next).to.equal(undefined);
    const first = all.objects.find((o) => o.objectId === ids[0])!;
    expect(first).to.include({
      fragments: 3,
      healthy: 3,
      storedBytes: 3 * double.objects.get(ids[0])!.manifest.fragmentSize,
    });
    expect(first.createdAt).to.be.a("number");
    expect(await client().remove(ids[0])).to.deep.equal({ objectId: ids[0], deleted: true });
    expect((await client().list()).objects.map((o) => o.objectId)).to.deep.equal(ids.slice(1));
    const error = await expectEdgeError(
      () => client().get(ids[0]),
      "DOUBLE_NOT_FOUND",
      /^get 0x[0-9a-f]{64}: the gateway answered 404: no object/,
    );
    expect((error as unknown as { status: number }).status).to.equal(404);
    await rejectsTypeError(() => client().list("0x12"));
  });

  it("passes a gateway's refusal on with its status, code and message", async function () {
    // Signed for another gateway: the double's signature check refuses it.
    const other = client({ gateway: mallory.address });
    const error = await expectEdgeError(
      () => other.list(),
      "DOUBLE_BAD_SIGNATURE",
      /answered 401: the StorageRequest is not signed/,
    );
    expect((error as unknown as { status: number }).status).to.equal(401);
    double.override = (_request, response) => {
      json(response, 503, { statusCode: 503, code: "EDGE_NODE_NOT_SERVING", error: "the gateway is not serving" });
      return true;
    };
    const down = await expectEdgeError(
      () => client().remove(`0x${"11".repeat(32)}`),
      "EDGE_NODE_NOT_SERVING",
      /503: the gateway is not serving$/,
    );
    expect((down as unknown as { status: number }).status).to.equal(503);
    double.override = (_request, response) => {
      response.writeHead(418, { "content-type": "text/plain" }).end("no\u001b[31m JSON");
      return true;
    };
    const teapot = await expectEdgeError(
      () => client().list(),
      "STORAGE_GATEWAY_REFUSED",
      /^list: the gateway answered 418$/,
    );
    expect((teapot as unknown as { status: number }).status).to.equal(418);
    double.override = (_request, response) => {
      json(response, 400, { code: "lower\ncase", message: "bad\u001b]0;title\u0007 input" });
      return true;
    };
    await expectEdgeError(
      () => client().list(),
      "STORAGE_GATEWAY_REFUSED",
      /^list: the gateway answered 400: bad \]0;title {2}input$/,
    );
  });

  it("refuses answers outside the API: a redirect, another shape, another object", async function () {
    const elsewhere = await new GatewayDouble().start();
    try {
      double.override = (_request, response) => {
        response.writeHead(307, { location: `${elsewhere.url}/storage/v1/objects` }).end();
        return true;
      };
      await expectEdgeError(
        () => client().list(),
        "STORAGE_GATEWAY_FAILED",
        /^list: the gateway answered 307, not 200$/,
      );
      expect(elsewhere.wire).to.have.length(0);
    } finally {
      await elsewhere.stop();
    }
    const answers: Array<[unknown, RegExp]> = [
      [{ objects: [{ objectId: "0x12" }] }, /not of the API's shape/],
      [{ objectId: `0x${"22".repeat(32)}`, deleted: true }, /not of the API's shape/],
    ];
    for (const [answer, message] of answers) {
      double.override = (_request, response) => {
        json(response, 200, answer);
        return true;
      };
      await expectEdgeError(() => client().list(), "STORAGE_GATEWAY_FAILED", message);
    }
    await expectEdgeError(() => client().remove(`0x${"11".repeat(32)}`), "STORAGE_GATEWAY_FAILED", /another object/);
    double.override = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json" }).end("{");
      return true;
    };
    await expectEdgeError(() => client().list(), "STORAGE_GATEWAY_FAILED", /the answer \(200\) is not JSON/);
  });

  it("get refuses a download of another object, another owner's object, a forged manifest or a malformed frame", async function () {
    const one = await client().put(objectBytes(2000, 1));
    const two = await client().put(objectBytes(2000, 2));
    const theirs = await client({ account: mallory }).put(objectBytes(2000, 3));
    const frameOf = (id: string, change: Partial<StorageManifest> = {}) => {
      const s = double.objects.get(id)!;
      return encodeObjectDownload({ ...s.manifest, ...change }, s.fragments);
    };
    let answer: Buffer = frameOf(two.objectId);
    double.override = (request, response) => {
      if (request.method !== "GET") return false;
      sendFrame(response, answer);
      return true;
    };
    await expectEdgeError(
      () => client().get(one.objectId),
      "STORAGE_MANIFEST_INVALID",
      /the gateway sent the manifest of object 0x/,
    );
    answer = frameOf(theirs.objectId);
    await expectEdgeError(
      () => client().get(theirs.objectId),
      "STORAGE_MANIFEST_INVALID",
      new RegExp(`is ${mallory.address}'s, not ${alice.address}'s`),
    );
    answer = frameOf(one.objectId, { createdAt: "1" });
    await expectEdgeError(
      () => client().get(one.objectId),
      "STORAGE_MANIFEST_INVALID",
      /refused manifest: the manifest is not signed by its owner/,
    );
    answer = frameOf(one.objectId).subarray(0, 3000);
    await expectEdgeError(
      () => client().get(one.objectId),
      "STORAGE_GATEWAY_FAILED",
      /malformed download: the download is/,
    );
    double.override = (request, response) => {
      response.writeHead(200, { "content-type": "application/json" }).end(frameOf(one.objectId));
      return true;
    };
    await expectEdgeError(
      () => client().get(one.objectId),
      "STORAGE_GATEWAY_FAILED",
      /the answer is application\/json, not/,
    );
    await rejectsTypeError(() => client().get("0x12"));
  });

  it("a tampered fragment is dropped: with k fragments sent the get fails, with all n it still reads", async function () {
    const bytes = objectBytes(50_000, 4);
    const { objectId } = await client().put(bytes);
    double.tamper = (index, fragment) => {
      if (index === 12) fragment[7] ^= 1;
      return fragment;
    };
    await expectEdgeError(
      () => client().get(objectId),
      "STORAGE_NOT_ENOUGH_FRAGMENTS",
      /^9 of 16 fragments of object 0x[0-9a-f]{64} passed their sha256 check \(1 corrupt: 12, 6 missing\); 10 are needed$/,
    );
    double.pick = (s) => [...s.fragments.keys()];
    expect((await client().get(objectId)).equals(bytes)).to.equal(true);
  });

  it("refuses an oversized answer without reading it: from its length, or as soon as it passes the bound", async function () {
    const total = 64 * 1024 * 1024;
    let written = 0;
    let closed!: Promise<void>;
    double.override = (_request, response) => {
      closed = new Promise((resolve) => response.on("close", () => resolve()));
      response.writeHead(200, { "content-type": STORAGE_OBJECT_TYPE });
      const chunk = Buffer.alloc(64 * 1024);
      const pump = () => {
        while (written < total && !response.destroyed) {
          written += chunk.length;
          if (!response.write(chunk)) return void response.once("drain", pump);
        }
        response.end();
      };
      pump();
      return true;
    };
    const bound = client({ maxReplyBytes: 1024 * 1024 });
    await expectEdgeError(
      () => bound.get(`0x${"11".repeat(32)}`),
      "STORAGE_GATEWAY_FAILED",
      /passed the 1048576 bytes accepted; the rest was not read/,
    );
    await closed;
    expect(written).to.be.below(total / 4);
    double.override = (_request, response) => {
      response.writeHead(200, { "content-type": STORAGE_OBJECT_TYPE, "content-length": 100 * 1024 * 1024 });
      response.write(Buffer.alloc(10));
      return true;
    };
    await expectEdgeError(
      () => client().get(`0x${"11".repeat(32)}`),
      "STORAGE_GATEWAY_FAILED",
      /the answer is 104857600 bytes, over the 8388608 accepted/,
    );
    double.override = (_request, response) => {
      json(response, 200, { objects: [], padding: "x".repeat(1024 * 1024) });
      return true;
    };
    await expectEdgeError(() => client().list(), "STORAGE_GATEWAY_FAILED", /the 1048576 (bytes )?accepted/);
  });

  it("times out a gateway that does not answer, or stalls mid-answer; a closed port is unreachable", async function () {
    double.override = () => true;
    await expectEdgeError(
      () => client({ timeoutMs: 200 }).list(),
      "STORAGE_GATEWAY_UNREACHABLE",
      /^list: no complete answer within 200 ms$/,
    );
    double.override = (_request, response) => {
      response.writeHead(200, { "content-type": STORAGE_OBJECT_TYPE });
      response.write(Buffer.alloc(10));
      return true;
    };
    await expectEdgeError(
      () => client({ timeoutMs: 200 }).get(`0x${"11".repeat(32)}`),
      "STORAGE_GATEWAY_UNREACHABLE",
      /no complete answer within 200 ms/,
    );
    const gone = await new GatewayDouble().start();
    await gone.stop();
    await expectEdgeError(() => client({ gatewayUrl: gone.url }).list(), "STORAGE_GATEWAY_UNREACHABLE", /ECONNREFUSED/);
  });
});

describe("offchain/storage cli (edge-storage put, get, ls, rm against a gateway double)", function () {
  this.timeout(30_000);
  let double: GatewayDouble;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let keyFile: string;
  let net: string[];

  beforeEach(async function () {
    double = await new GatewayDouble().start();
    dir = mkdtempSync(join(tmpdir(), "edge-storage-net-"));
    const keystore = join(dir, "owner.json");
    writeKeystoreFile(keystore, "pw", PRIVATE_KEY, 1024);
    env = { EDGE_STORAGE_KEYSTORE: keystore, EDGE_STORAGE_KEYSTORE_PASSWORD: "pw" };
    keyFile = join(dir, "storage.key");
    keygenCommand(["--out", keyFile]);
    net = ["--gateway", double.url, "--chain-id", String(CHAIN_ID)];
  });
  afterEach(async function () {
    await double.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("puts a file, gets it to a file and to stdout, lists and removes it; the address comes from /status", async function () {
    const input = join(dir, "object.bin");
    writeFileSync(input, objectBytes(123_457, 6));
    const put = JSON.parse(await putCommand([input, ...net, "--key-file", keyFile], env));
    expect(put).to.include({ size: 123_457, fragments: 16, hosts: 5 });
    expect(put.storedBytes).to.equal(16 * double.objects.get(put.objectId)!.manifest.fragmentSize);
    const out = join(dir, "back.bin");
    const stdout = sink();
    expect(await getCommand([put.objectId, ...net, "--key-file", keyFile, "--out", out], env, stdout.stream)).to.equal(
      0,
    );
    expect(readFileSync(out).equals(readFileSync(input))).to.equal(true);
    expect(JSON.parse(stdout.bytes().toString())).to.deep.equal({ objectId: put.objectId, size: 123_457, out });
    const raw = sink();
    await getCommand([put.objectId, "--key-file", keyFile, ...net, "--gateway-address", device], env, raw.stream);
    expect(raw.bytes().equals(readFileSync(input))).to.equal(true);
    const second = JSON.parse(await putCommand([input, ...net, "--key-file", keyFile, "--k", "4", "--n", "6"], env));
    const table = await lsCommand([...net, "--limit", "1"], env);
    const [header, row, more] = table.split("\n");
    expect(header).to.match(/^OBJECT ID +SIZE +STORED +HEALTHY +CREATED$/);
    const first = [put.objectId, second.objectId].sort()[0];
    expect(row).to.match(new RegExp(`^${first} +123457 +\\d+ +(16/16|6/6) +\\d{4}-\\d\\d-\\d\\dT`));
    expect(more).to.equal(`more: edge-storage ls --after ${first} ...`);
    expect(JSON.parse(await rmCommand([put.objectId, ...net], env))).to.deep.equal({
      objectId: put.objectId,
      deleted: true,
    });
    await rmCommand([second.objectId, ...net], env);
    expect(await lsCommand(net, env)).to.equal("no objects");
  });

  it("refuses bad input with a usage error before the network, and passes the gateway's refusals on", async function () {
    const id = `0x${"11".repeat(32)}`;
    const usage: Array<[string[], RegExp]> = [
      [[], /^usage: edge-storage keygen/],
      [[join(dir, "x"), "--chain-id", "1"], /--gateway is required/],
      [
        [join(dir, "x"), "--gateway", "ftp://x", "--chain-id", "1"],
        /--gateway: the gateway URL "ftp:\/\/x" is not http/,
      ],
      [[join(dir, "missing"), ...net, "--key-file", keyFile], /cannot read .*missing/],
      [[keyFile, keyFile, ...net], /put takes FILE and flags/],
      [[keyFile, ...net, "--bogus"], /Unknown option '--bogus'/],
    ];
    for (const [argv, message] of usage) await expectEdgeError(() => putCommand(argv, env), "CLI_USAGE", message);
    await expectEdgeError(
      () => getCommand(["0x12", ...net, "--key-file", keyFile], env),
      "CLI_USAGE",
      /"0x12" is not an object id/,
    );
    await expectEdgeError(
      () => getCommand([id, ...net, "--key-file", keyFile, "--out", keyFile], env),
      "CLI_USAGE",
      /exists; get never overwrites/,
    );
    await expectEdgeError(
      () => rmCommand([id, ...net, "--gateway-address", "0x12"], env),
      "CLI_USAGE",
      /--gateway-address must be an address/,
    );
    await expectEdgeError(() => lsCommand([...net, "--limit", "0"], env), "CLI_USAGE", /--limit must be an integer/);
    await expectEdgeError(() => lsCommand(net, {}), "CLI_USAGE", /EDGE_STORAGE_KEYSTORE must name/);
    await expectEdgeError(
      () => lsCommand(["--gateway", double.url, "--chain-id", "5"], env),
      "CLI_USAGE",
      /is on chain 31337, not --chain-id 5/,
    );
    double.statusRole = "host";
    await expectEdgeError(() => lsCommand(net, env), "CLI_USAGE", /is a host, not a gateway/);
    expect(double.digests.size).to.equal(0);
    const other = ["--gateway-address", mallory.address];
    await expectEdgeError(() => rmCommand([id, ...net, ...other], env), "DOUBLE_BAD_SIGNATURE");
    await expectEdgeError(
      () => rmCommand([id, ...net, "--gateway-address", device], env),
      "DOUBLE_NOT_FOUND",
      /answered 404/,
    );
  });

  it("--help exits 0 and lists the network commands", async function () {
    let printed = "";
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => ((printed += chunk), true)) as typeof write;
    try {
      expect(await storageMain(["--help"])).to.equal(0);
    } finally {
      process.stdout.write = write;
    }
    for (const command of ["put FILE", "get OBJECT_ID", "ls", "rm OBJECT_ID", "--gateway URL"])
      expect(printed).to.include(command);
  });
});
