import { expect } from "chai";
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";

import { isEdgeError } from "../../offchain/common/errors";
import { type CacheRequest, type CacheRules, HostCache, type Served } from "../../node/roles/host/cache";
import { createOriginFetcher, type OriginFetcher } from "../../node/roles/host/origin";

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** A real origin on 127.0.0.1: routes by path, counting requests per path and keeping what each one sent. */
class Origin {
  readonly counts = new Map<string, number>();
  readonly seen: { method: string; path: string; headers: IncomingMessage["headers"]; body: Buffer }[] = [];
  private server!: Server;

  constructor(private readonly routes: Record<string, Handler>) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const path = (req.url ?? "/").split("?")[0];
        const body = Buffer.concat(chunks);
        this.counts.set(path, this.count(path) + 1);
        this.seen.push({ method: req.method ?? "", path, headers: req.headers, body });
        const route = this.routes[path];
        if (route) route(req, res, body);
        else res.writeHead(404).end("no route");
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return this;
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  count(path: string): number {
    return this.counts.get(path) ?? 0;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const read = async (body: Readable): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

const quiet = { warn: () => undefined };
const rules: CacheRules = { defaultTtlSeconds: 0, maxObjectBytes: 1 << 20 };

/** Answers with `headers` and `body`; a 304 when the request's validators match the given ETag / Last-Modified. */
const fixed =
  (headers: Record<string, string | string[]>, body: string | Buffer = "hello"): Handler =>
  (req, res) => {
    const etag = headers.etag as string | undefined;
    const lastModified = headers["last-modified"] as string | undefined;
    if (
      (etag && req.headers["if-none-match"] === etag) ||
      (lastModified && req.headers["if-modified-since"] === lastModified)
    )
      return void res.writeHead(304, { ...headers }).end();
    res.writeHead(200, { "content-type": "text/plain", ...headers }).end(body);
  };

describe("host cache", function () {
  let dir: string;
  let origin: Origin;
  let fetcher: OriginFetcher;
  let clock: number;
  let dripEnded = false;
  let liveNow = 0;
  let liveMost = 0;
  const caches: HostCache[] = [];

  const newCache = (memoryBytes = 1 << 20, diskBytes = 8 << 20) => {
    const cache = new HostCache({ origin: fetcher, dir, memoryBytes, diskBytes, log: quiet, now: () => clock });
    caches.push(cache);
    return cache;
  };
  const request = (path: string, more: Partial<CacheRequest> = {}): CacheRequest => ({
    site: "site-a",
    method: "GET",
    url: origin.url(path),
    headers: { host: "example.test" },
    rules,
    ...more,
  });
  const get = async (cache: HostCache, path: string, more: Partial<CacheRequest> = {}) => {
    const served: Served = await cache.serve(request(path, more));
    return { ...served, text: (await read(served.body)).toString() };
  };

  beforeEach(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-host-cache-"));
    clock = Date.now();
    fetcher = createOriginFetcher({ headersTimeoutMs: 2_000, bodyTimeoutMs: 2_000, allowPrivateOrigins: true });
    const objects: Record<string, Handler> = {};
    for (let i = 0; i < 40; i++)
      objects[`/obj${i}`] = fixed({ "cache-control": "max-age=600" }, Buffer.alloc(10_000, i));
    origin = await new Origin({
      ...objects,
      "/fresh": fixed({ "cache-control": "max-age=60" }, "fresh body"),
      "/etag": fixed({ "cache-control": "max-age=10", etag: '"v1"' }, "etag body"),
      "/lm": fixed({ "cache-control": "max-age=10", "last-modified": "Mon, 01 Jan 2024 00:00:00 GMT" }, "lm body"),
      "/no-store": fixed({ "cache-control": "no-store" }),
      "/private": fixed({ "cache-control": "private, max-age=60" }),
      "/cookie": fixed({ "cache-control": "max-age=60", "set-cookie": ["a=1", "b=2"] }),
      "/bare": fixed({}, "bare body"),
      "/vary": (req, res) =>
        res
          .writeHead(200, { "cache-control": "max-age=60", vary: "Accept-Encoding" })
          .end(`encoding ${req.headers["accept-encoding"] ?? "none"}`),
      "/big": fixed({ "cache-control": "max-age=60" }, Buffer.alloc(300_000, 7)),
      "/slow": (_req, res) => {
        setTimeout(() => res.writeHead(200, { "cache-control": "max-age=60" }).end("slow body"), 80);
      },
      "/slow-no-store": (_req, res) => {
        liveNow += 1;
        liveMost = Math.max(liveMost, liveNow);
        setTimeout(() => {
          liveNow -= 1;
          res.writeHead(200, { "cache-control": "no-store" }).end("live body");
        }, 150);
      },
      "/drip": (_req, res) => {
        dripEnded = false;
        res.writeHead(200, { "cache-control": "max-age=60", "content-length": "19" });
        res.write("first ");
        setTimeout(() => {
          dripEnded = true;
          res.end("then the rest");
        }, 300);
      },
      "/post": (req, res, body) =>
        req.method === "GET"
          ? res.writeHead(200, { "cache-control": "max-age=60" }).end("a page")
          : res.writeHead(201).end(`got ${req.method} ${body.toString()}`),
      "/smax": fixed({ "cache-control": "max-age=5, s-maxage=100" }, "smax body"),
      "/expires": (_req, res) =>
        res
          .writeHead(200, { date: new Date(clock).toUTCString(), expires: new Date(clock + 30_000).toUTCString() })
          .end("expires body"),
      "/no-cache": fixed({ "cache-control": "no-cache, max-age=60", etag: '"n1"' }, "no-cache body"),
      "/swr": fixed({ "cache-control": "max-age=1, stale-while-revalidate=60", etag: '"s1"' }, "swr body"),
    }).start();
  });

  afterEach(async function () {
    await Promise.all(caches.splice(0).map((c) => c.close()));
    await fetcher.close();
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves a hit after a miss without asking the origin again, with an Age header", async function () {
    const cache = newCache();
    const first = await get(cache, "/fresh", { headers: { host: "example.test", "content-length": "3" } });
    expect([first.status, first.cache, first.text]).to.deep.equal([200, "miss", "fresh body"]);
    clock += 5_000;
    const second = await get(cache, "/fresh");
    expect([second.status, second.cache, second.text]).to.deep.equal([200, "hit", "fresh body"]);
    expect(second.headers.age).to.equal("5");
    expect(second.bytes).to.equal(10);
    expect(origin.count("/fresh")).to.equal(1);
    expect(cache.stats()).to.include({ hits: 1, misses: 1, entries: 1 });
  });

  it("revalidates a stale entry with its ETag: the 304 refreshes and serves it", async function () {
    const cache = newCache();
    await get(cache, "/etag");
    clock += 11_000;
    const again = await get(cache, "/etag");
    expect([again.status, again.cache, again.text]).to.deep.equal([200, "revalidated", "etag body"]);
    expect(origin.seen.at(-1)!.headers["if-none-match"]).to.equal('"v1"');
    clock += 5_000; // fresh again for 10 s from the 304, also for the site's other hostname
    const alias = { host: "www.example.test" };
    expect((await get(cache, "/etag", { headers: alias })).cache).to.equal("hit"); // fresh again for 10 s from the 304
    expect((await get(cache, "/etag")).cache).to.equal("hit");
    expect(origin.count("/etag")).to.equal(2);
    expect(cache.stats()).to.include({ revalidated: 1, hits: 2, misses: 1 });
  });

  it("revalidates a stale entry with its Last-Modified", async function () {
    const cache = newCache();
    await get(cache, "/lm");
    clock += 11_000;
    const again = await get(cache, "/lm");
    expect([again.cache, again.text]).to.deep.equal(["revalidated", "lm body"]);
    expect(origin.seen.at(-1)!.headers["if-modified-since"]).to.equal("Mon, 01 Jan 2024 00:00:00 GMT");
    expect(origin.count("/lm")).to.equal(2);
  });

  it("follows s-maxage over max-age, Expires, and no-cache (stored, revalidated every time)", async function () {
    const cache = newCache();
    await get(cache, "/smax");
    await get(cache, "/expires");
    clock += 20_000;
    expect((await get(cache, "/smax")).cache, "s-maxage=100 after 20 s").to.equal("hit");
    expect((await get(cache, "/expires")).cache, "Expires in 30 s, after 20 s").to.equal("hit");
    clock += 11_000;
    expect((await get(cache, "/expires")).cache, "after 31 s").to.equal("miss");
    await get(cache, "/no-cache");
    const again = await get(cache, "/no-cache");
    expect([again.cache, again.text]).to.deep.equal(["revalidated", "no-cache body"]);
    expect(origin.count("/no-cache")).to.equal(2);
  });

  it("keeps at most 8 variants of a URL, dropping the oldest", async function () {
    const cache = newCache();
    const headers = (i: number) => ({ host: "example.test", "accept-encoding": `enc${i}` });
    for (let i = 0; i < 10; i++) await get(cache, "/vary", { headers: headers(i) });
    expect(cache.stats().entries).to.equal(8);
    expect((await get(cache, "/vary", { headers: headers(0) })).cache).to.equal("miss");
    expect((await get(cache, "/vary", { headers: headers(9) })).cache).to.equal("hit");
  });

  it("never stores no-store, private or Set-Cookie responses", async function () {
    const cache = newCache();
    for (const path of ["/no-store", "/private", "/cookie"]) {
      for (let i = 0; i < 2; i++) expect((await get(cache, path)).cache).to.equal("miss");
      expect(origin.count(path), path).to.equal(2);
    }
    expect(cache.stats().entries).to.equal(0);
  });

  it("keeps one variant per Accept-Encoding value of a Vary response", async function () {
    const cache = newCache();
    const gzip = { host: "example.test", "accept-encoding": "gzip" };
    const br = { host: "example.test", "accept-encoding": "br" };
    expect((await get(cache, "/vary", { headers: gzip })).text).to.equal("encoding gzip");
    expect((await get(cache, "/vary", { headers: br })).text).to.equal("encoding br");
    const hitGzip = await get(cache, "/vary", { headers: gzip });
    const hitBr = await get(cache, "/vary", { headers: br });
    expect([hitGzip.cache, hitGzip.text, hitBr.cache, hitBr.text]).to.deep.equal([
      "hit",
      "encoding gzip",
      "hit",
      "encoding br",
    ]);
    expect(origin.count("/vary")).to.equal(2);
    expect(cache.stats().entries).to.equal(2);
  });

  it("applies defaultTtlSeconds only when the origin states no freshness", async function () {
    const cache = newCache();
    const withDefault = { ...rules, defaultTtlSeconds: 120 };
    await get(cache, "/bare", { rules: withDefault });
    const hit = await get(cache, "/bare", { rules: withDefault });
    expect(hit.cache).to.equal("hit");
    expect(hit.headers["cache-control"], "clients see the origin's own headers").to.equal(undefined);
    clock += 121_000;
    expect((await get(cache, "/bare", { rules: withDefault })).cache).to.equal("miss");
    // 0 stores nothing without origin freshness
    await get(cache, "/bare", { site: "site-b" });
    expect((await get(cache, "/bare", { site: "site-b" })).cache).to.equal("miss");
    expect(origin.count("/bare")).to.equal(4);
    // the origin's max-age=60 wins over a longer default
    await get(cache, "/fresh", { rules: withDefault });
    clock += 61_000;
    expect((await get(cache, "/fresh", { rules: withDefault })).cache).to.equal("miss");
  });

  it("streams an object over maxObjectBytes whole without storing it", async function () {
    const cache = newCache();
    const small = { ...rules, maxObjectBytes: 100_000 };
    for (let i = 0; i < 2; i++) {
      const served = await get(cache, "/big", { rules: small });
      expect([served.cache, served.text.length]).to.deep.equal(["miss", 300_000]);
    }
    expect(origin.count("/big")).to.equal(2);
    expect(cache.stats().entries).to.equal(0);
  });

  it("streams a miss as it arrives, before the origin's body ends", async function () {
    const cache = newCache();
    const served = await cache.serve(request("/drip"));
    const iterator = served.body[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value.toString()).to.equal("first ");
    expect(dripEnded, "the first chunk came before the origin's last").to.equal(false);
    const rest: Buffer[] = [];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(next.value as Buffer);
    expect(Buffer.concat(rest).toString()).to.equal("then the rest");
    expect((await get(cache, "/drip")).cache).to.equal("hit");
  });

  it("keeps the memory tier within memoryBytes; evictions go to disk and disk hits come back", async function () {
    const cache = newCache(64_000);
    for (let i = 0; i < 40; i++) {
      await get(cache, `/obj${i}`);
      expect(cache.stats().memoryBytes).to.be.at.most(64_000);
    }
    await cache.close(); // lets the evictions' disk writes finish
    expect(cache.stats().diskBytes).to.be.above(300_000);
    const early = await get(cache, "/obj0");
    expect([early.cache, early.text.length, early.text.charCodeAt(0)]).to.deep.equal(["hit", 10_000, 0]);
    expect(origin.count("/obj0")).to.equal(1);
    expect(cache.stats()).to.include({ entries: 40 });
  });

  it("keeps the disk tier within diskBytes, dropping the least recently used", async function () {
    const cache = newCache(20_000, 120_000);
    for (let i = 0; i < 40; i++) await get(cache, `/obj${i}`);
    await cache.close();
    expect(cache.stats().diskBytes).to.be.at.most(120_000);
    expect((await get(cache, "/obj0")).cache).to.equal("miss");
    expect((await get(cache, "/obj39")).cache).to.equal("hit");
  });

  it("keeps the disk tier across a restart: a new HostCache on the same directory", async function () {
    const before = newCache();
    await get(before, "/fresh");
    await get(before, "/etag");
    await before.close();
    const after = newCache();
    expect(after.stats().entries).to.equal(0); // not read yet
    const hit = await get(after, "/fresh");
    expect([hit.cache, hit.text]).to.deep.equal(["hit", "fresh body"]);
    expect(after.stats().entries).to.equal(2);
    clock += 11_000;
    expect((await get(after, "/etag")).cache).to.equal("revalidated");
    expect(origin.count("/fresh")).to.equal(1);
    await after.close();
    const smaller = newCache(1 << 20, 700); // room for one of the two files (about 600 bytes each)
    await smaller.ready;
    expect(smaller.stats()).to.include({ entries: 1 });
    expect(smaller.stats().diskBytes).to.be.at.most(700);
  });

  it("treats a truncated or corrupted disk file as a miss, not a crash", async function () {
    const before = newCache();
    await get(before, "/fresh");
    await get(before, "/etag");
    await before.close();
    const files = readdirSync(dir).filter((f) => f.endsWith(".entry"));
    expect(files).to.have.length(2);
    truncateSync(join(dir, files[0]), 50); // cut short: dropped when the index is rebuilt
    const data = readFileSync(join(dir, files[1]));
    data[data.length - 1] ^= 0xff; // same length, wrong bytes: dropped when read
    writeFileSync(join(dir, files[1]), data);
    const after = newCache();
    for (const path of ["/fresh", "/etag"]) {
      const served = await get(after, path);
      expect([served.status, served.cache]).to.deep.equal([200, "miss"]);
    }
    expect(origin.count("/fresh") + origin.count("/etag")).to.equal(4);
    expect((await get(after, "/fresh")).cache).to.equal("hit");
  });

  it("coalesces 10 concurrent misses for one URL into 1 origin request", async function () {
    const cache = newCache();
    const served = await Promise.all(Array.from({ length: 10 }, () => get(cache, "/slow")));
    expect(served.map((s) => s.text)).to.deep.equal(Array(10).fill("slow body"));
    expect(served.filter((s) => s.cache === "miss")).to.have.length(1);
    expect(origin.count("/slow")).to.equal(1);
  });

  it("hit for pass: once a URL's answer could not be stored, its concurrent requests go to the origin side by side", async function () {
    const cache = newCache();
    await get(cache, "/slow-no-store"); // learns the URL is not storable
    liveMost = 0;
    const served = await Promise.all(Array.from({ length: 5 }, () => get(cache, "/slow-no-store")));
    expect(served.map((s) => s.text)).to.deep.equal(Array(5).fill("live body"));
    expect(served.map((s) => s.cache)).to.deep.equal(Array(5).fill("miss"));
    expect(origin.count("/slow-no-store")).to.equal(6);
    // Side by side: the origin had all five at once (coalesced, it had one, then the four others).
    expect(liveMost).to.equal(5);
  });

  it("lets a waiting follower go when its request is aborted; the leader still fills the cache", async function () {
    const cache = newCache();
    const leader = get(cache, "/slow");
    await new Promise((resolve) => setTimeout(resolve, 10));
    const controller = new AbortController();
    const follower = cache.serve(request("/slow", { signal: controller.signal })).catch((e: unknown) => e);
    controller.abort();
    expect(((await follower) as Error).name).to.equal("AbortError");
    expect((await leader).text).to.equal("slow body");
    expect((await get(cache, "/slow")).cache).to.equal("hit");
    expect(origin.count("/slow")).to.equal(1);
  });

  it("raises a typed error when the origin is down or silent (once for concurrent misses)", async function () {
    const cache = newCache();
    const down = request("/fresh");
    const base = request("/x");
    await origin.close();
    const error = await cache.serve(down).catch((e: unknown) => e);
    expect(isEdgeError(error) && [error.code, error.status]).to.deep.equal(["EDGE_NODE_ORIGIN_UNREACHABLE", 502]);
    let asked = 0;
    const silent = createServer(() => void asked++);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const impatient = createOriginFetcher({ headersTimeoutMs: 150, allowPrivateOrigins: true });
    const cache2 = new HostCache({ origin: impatient, dir, memoryBytes: 1 << 20, diskBytes: 1 << 20, log: quiet });
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/x`;
    const timeouts = await Promise.all(
      Array.from({ length: 5 }, () => cache2.serve({ ...base, url }).catch((e: unknown) => e)),
    );
    for (const timeout of timeouts)
      expect(isEdgeError(timeout) && [timeout.code, timeout.status]).to.deep.equal(["EDGE_NODE_ORIGIN_TIMEOUT", 504]);
    expect(asked, "the followers share the leader's failure").to.equal(1);
    await cache2.close();
    await impatient.close();
    silent.closeAllConnections();
    silent.close();
    origin = await new Origin({}).start(); // for afterEach
  });

  it("stores nothing when the request is aborted mid-body", async function () {
    const cache = newCache();
    const controller = new AbortController();
    const served = await cache.serve(request("/drip", { signal: controller.signal }));
    const iterator = served.body[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();
    const error = await (async () => {
      for (let next = await iterator.next(); !next.done; next = await iterator.next());
    })().catch((e: unknown) => e);
    expect(error).to.be.instanceOf(Error);
    expect((await get(cache, "/drip")).cache).to.equal("miss");
    expect(origin.count("/drip")).to.equal(2);
  });

  it("serves HEAD from the GET entry without a body (and fills it with GET on a miss)", async function () {
    const cache = newCache();
    const miss = await get(cache, "/fresh", { method: "HEAD" });
    expect([miss.status, miss.cache, miss.text]).to.deep.equal([200, "miss", ""]);
    expect(origin.seen.at(-1)!.method).to.equal("GET");
    await new Promise((resolve) => setImmediate(resolve));
    const head = await get(cache, "/fresh", { method: "HEAD" });
    expect([head.cache, head.text, head.headers["content-length"]]).to.deep.equal(["hit", "", "10"]);
    expect((await get(cache, "/fresh")).text).to.equal("fresh body");
    expect(origin.count("/fresh")).to.equal(1);
    const uncacheable = await get(cache, "/no-store", { method: "HEAD" });
    expect([uncacheable.status, uncacheable.cache, uncacheable.text]).to.deep.equal([200, "miss", ""]);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the dropped body's late error must not crash
  });

  it("bypasses the cache for POST, forwarding its body, and drops the URL's entry", async function () {
    const cache = newCache();
    await get(cache, "/post");
    expect((await get(cache, "/post")).cache).to.equal("hit");
    const posted = await get(cache, "/post", { method: "POST", body: Readable.from([Buffer.from("payload")]) });
    expect([posted.status, posted.cache, posted.text]).to.deep.equal([201, "bypass", "got POST payload"]);
    expect(origin.seen.at(-1)!.body.toString()).to.equal("payload");
    expect(cache.stats()).to.include({ bypass: 1, entries: 0 });
  });

  it("answers a conditional request against a fresh entry with 304", async function () {
    const cache = newCache();
    await get(cache, "/etag");
    const conditional = { host: "example.test", "if-none-match": '"v1"' };
    const notModified = await get(cache, "/etag", { headers: conditional });
    expect([notModified.status, notModified.cache, notModified.text]).to.deep.equal([304, "hit", ""]);
    expect(notModified.headers.etag).to.equal('"v1"');
    const other = await get(cache, "/etag", { headers: { host: "example.test", "if-none-match": '"v0"' } });
    expect([other.status, other.text]).to.deep.equal([200, "etag body"]);
    expect(origin.count("/etag")).to.equal(1);
  });

  it("serves a stale-while-revalidate entry at once and revalidates it in the background", async function () {
    const cache = newCache();
    await get(cache, "/swr");
    clock += 5_000;
    const stale = await get(cache, "/swr");
    expect([stale.cache, stale.text]).to.deep.equal(["hit", "swr body"]);
    for (let i = 0; i < 50 && origin.count("/swr") < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(origin.count("/swr")).to.equal(2);
    expect(origin.seen.at(-1)!.headers["if-none-match"]).to.equal('"s1"');
  });
});
