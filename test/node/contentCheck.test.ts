import { expect } from "chai";
import { createHash } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { ContentChecker, type ServedSample, checkHeaders } from "../../node/roles/gateway/contentCheck";
import { SampledChecks } from "../../node/roles/gateway/sampledChecks";

const sha = (body: string | Buffer) => createHash("sha256").update(body).digest("hex");

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A real local origin whose handler each test sets; it counts the requests it got and keeps their headers. */
class Origin {
  handler: Handler = (_req, res) => res.end("hello");
  hits = 0;
  lastHeaders: IncomingMessage["headers"] = {};
  readonly server: Server = createServer((req, res) => {
    this.hits += 1;
    this.lastHeaders = req.headers;
    this.handler(req, res);
  });
  url = "";

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const served = (url: string, body: string, over: Partial<ServedSample> = {}): ServedSample => ({
  url,
  headers: { accept: "*/*" },
  status: 200,
  sha256: sha(body),
  bytes: Buffer.byteLength(body),
  ...over,
});

describe("gateway content checks (F9 for the CDN)", function () {
  let origin: Origin;
  let checker: ContentChecker;
  beforeEach(async function () {
    origin = new Origin();
    await origin.start();
    checker = new ContentChecker({ oneIn: 1, maxBytes: 1024 * 1024, timeoutMs: 5_000 });
  });
  afterEach(async () => origin.stop());

  it("an identical body matches, fetched once with the host's request headers (unconditional)", async function () {
    origin.handler = (req, res) => res.end(req.headers["accept-language"] === "fr" ? "bonjour" : "hello");
    const verdict = await checker.check(
      served(`${origin.url}/page`, "bonjour", {
        headers: { "accept-language": "fr", "if-none-match": '"old"', range: "bytes=0-1", connection: "close" },
      }),
    );
    expect(verdict).to.deep.equal({ outcome: "match" });
    expect(origin.hits).to.equal(1);
    expect(origin.lastHeaders["accept-language"]).to.equal("fr");
    expect(origin.lastHeaders["if-none-match"]).to.equal(undefined);
    expect(origin.lastHeaders.range).to.equal(undefined);
    expect(checker.counts).to.deep.equal({ checked: 1, match: 1, mismatch: 0, inconclusive: 0 });
  });

  it("F9: an altered body under the origin's current strong ETag is a mismatch (one origin fetch)", async function () {
    origin.handler = (_req, res) => res.setHeader("etag", '"abc"').end("hello");
    const verdict = await checker.check(served(origin.url, "hello, tampered", { etag: '"abc"' }));
    expect(verdict.outcome).to.equal("mismatch");
    expect((verdict as { reason: string }).reason).to.match(/under the same strong ETag "abc"/);
    expect(origin.hits).to.equal(1);
    expect(checker.counts).to.deep.equal({ checked: 1, match: 0, mismatch: 1, inconclusive: 0 });
  });

  it("F9: an altered body from a stable origin without validators is a mismatch (two origin fetches)", async function () {
    origin.handler = (_req, res) => res.end("hello");
    const verdict = await checker.check(served(origin.url, "hellO"));
    expect(verdict.outcome).to.equal("mismatch");
    expect((verdict as { reason: string }).reason).to.match(/two fetches agree, no validators/);
    expect(origin.hits).to.equal(2);
  });

  it("F9: without validators, a cache hit of stable content is inconclusive (an older copy kept for the TTL), a miss a mismatch", async function () {
    origin.handler = (_req, res) => res.end("hello v2");
    expect((await checker.check(served(origin.url, "hello v1", { cache: "hit" }))).outcome).to.equal("inconclusive");
    expect((await checker.check(served(origin.url, "hello v1", { cache: "miss" }))).outcome).to.equal("mismatch");
  });

  it("F9: validators the origin sends but the host's answer lacks are a mismatch, cache hit or not", async function () {
    origin.handler = (_req, res) => res.setHeader("etag", '"v2"').end("hello");
    const verdict = await checker.check(served(origin.url, "evil", { cache: "hit" }));
    expect(verdict.outcome).to.equal("mismatch");
    expect((verdict as { reason: string }).reason).to.match(/without the origin's validators/);
  });

  it("an altered body with the origin's Last-Modified, stable, is a mismatch", async function () {
    const lastModified = "Mon, 30 Nov 2026 08:00:00 GMT";
    origin.handler = (_req, res) => res.setHeader("last-modified", lastModified).end("hello");
    const verdict = await checker.check(served(origin.url, "evil", { lastModified }));
    expect(verdict.outcome).to.equal("mismatch");
    expect((verdict as { reason: string }).reason).to.match(/same validators/);
  });

  it("origin content changed since (the host served an older ETag) is inconclusive", async function () {
    origin.handler = (_req, res) => res.setHeader("etag", '"v2"').end("new version");
    const verdict = await checker.check(served(origin.url, "old version", { etag: '"v1"' }));
    expect(verdict).to.deep.equal({
      outcome: "inconclusive",
      reason: 'the host served ETag "v1", the origin has "v2": another version',
    });
  });

  it("an older Last-Modified, or a weak ETag, is inconclusive", async function () {
    origin.handler = (_req, res) =>
      res.setHeader("last-modified", "Mon, 30 Nov 2026 08:00:00 GMT").setHeader("etag", 'W/"x"').end("new");
    const older = await checker.check(served(origin.url, "old", { lastModified: "Sun, 29 Nov 2026 08:00:00 GMT" }));
    expect((older as { reason: string }).reason).to.match(/Last-Modified .* another version/);
    const weak = await checker.check(served(origin.url, "old", { etag: 'W/"x"' }));
    expect(weak).to.deep.equal({ outcome: "inconclusive", reason: 'a weak ETag (W/"x") allows other bytes' });
  });

  it("a dynamic origin (another body each fetch) is inconclusive", async function () {
    let n = 0;
    origin.handler = (_req, res) => res.end(`now ${n++}`);
    const verdict = await checker.check(served(origin.url, "earlier"));
    expect(verdict).to.deep.equal({
      outcome: "inconclusive",
      reason: "the origin's content is not stable: two fetches differ",
    });
    expect(origin.hits).to.equal(2);
  });

  it("an origin that is down, errs or is slow is inconclusive; check never throws", async function () {
    origin.handler = (_req, res) => res.writeHead(503).end("busy");
    expect(await checker.check(served(origin.url, "x"))).to.deep.equal({
      outcome: "inconclusive",
      reason: "the origin answers 503 now",
    });
    origin.handler = () => undefined; // never answers
    const slow = new ContentChecker({ oneIn: 1, maxBytes: 1024, timeoutMs: 100 });
    expect(await slow.check(served(origin.url, "x"))).to.deep.equal({
      outcome: "inconclusive",
      reason: "the origin fetch failed: the origin took over 100 ms",
    });
    const url = origin.url;
    await origin.stop();
    const down = await checker.check(served(url, "x"));
    expect(down.outcome).to.equal("inconclusive");
    // Refused, or a kept-alive connection the stopped origin closed under the request: the origin is down either way.
    expect((down as { reason: string }).reason).to.match(
      /^the origin fetch failed: .*(ECONNREFUSED|other side closed)/,
    );
    const broken = new ContentChecker({ oneIn: 1, maxBytes: 1024, timeoutMs: 100, fetchImpl: () => Promise.reject(7) });
    expect((await broken.check(served(url, "x"))).outcome).to.equal("inconclusive");
    origin = new Origin();
    await origin.start(); // for afterEach
  });

  it("R3: a 404, 500 or 304 served where the origin answers 200 with stable content is a mismatch (two fetches)", async function () {
    origin.handler = (_req, res) => res.end("hello");
    for (const status of [404, 500, 304]) {
      const before = origin.hits;
      const verdict = await checker.check(served(origin.url, status === 304 ? "" : "junk", { status }));
      expect(verdict.outcome, String(status)).to.equal("mismatch");
      expect((verdict as { reason: string }).reason).to.match(
        new RegExp(`the host answered ${status}, the origin 200`),
      );
      expect(origin.hits - before).to.equal(2);
    }
    expect(checker.counts).to.deep.equal({ checked: 3, match: 0, mismatch: 3, inconclusive: 0 });
  });

  it("R3: the origin's own 404 served as it is matches; another status or body at the origin, or unstable content, is inconclusive", async function () {
    origin.handler = (_req, res) => res.writeHead(404).end("gone");
    expect(await checker.check(served(origin.url, "gone", { status: 404 }))).to.deep.equal({ outcome: "match" });
    expect((await checker.check(served(origin.url, "other", { status: 404 }))).outcome).to.equal("inconclusive");
    expect((await checker.check(served(origin.url, "x", { status: 500 }))).outcome).to.equal("inconclusive");
    let n = 0;
    origin.handler = (_req, res) => res.end(`version ${n++}`);
    const dynamic = await checker.check(served(origin.url, "x", { status: 503 }));
    expect(dynamic).to.deep.equal({
      outcome: "inconclusive",
      reason: "the origin's content is not stable: two fetches differ",
    });
  });

  it("R3: other methods, and answers other than 200 to conditional or range requests, are inconclusive without fetching", async function () {
    for (const sample of [
      served(origin.url, "", { status: 304, headers: { "if-none-match": '"v1"' } }),
      served(origin.url, "x", { status: 206, headers: { range: "bytes=0-0" } }),
      served(origin.url, "x", { status: 412, headers: { "if-match": '"v1"' } }),
      served(origin.url, "x", { method: "POST" }),
      served(origin.url, "x", { method: "HEAD" }),
    ]) {
      expect((await checker.check(sample)).outcome).to.equal("inconclusive");
    }
    expect(origin.hits).to.equal(0);
    expect(checker.counts).to.deep.equal({ checked: 5, match: 0, mismatch: 0, inconclusive: 5 });
  });

  it("over maxBytes is inconclusive without reading the whole body", async function () {
    const total = 64 * 1024 * 1024;
    let written = 0;
    let closed!: () => void;
    const done = new Promise<void>((resolve) => (closed = resolve));
    origin.handler = (_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 1);
      res.on("close", closed);
      const pump = () => {
        while (written < total && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    };
    const verdict = await checker.check(served(origin.url, "small"));
    expect(verdict).to.deep.equal({
      outcome: "inconclusive",
      reason: "the origin fetch failed: the origin's body is over 1048576 bytes",
    });
    await done;
    expect(written).to.be.below(total / 4);

    origin.handler = (_req, res) => res.setHeader("content-length", String(total)).write("x".repeat(1024));
    expect(await checker.check(served(origin.url, "small"))).to.deep.equal(verdict); // announced: not read at all
    const big = await checker.check(served(origin.url, "x", { bytes: 2 * 1024 * 1024 }));
    expect((big as { reason: string }).reason).to.equal("the served body (2097152 bytes) is over 1048576 bytes");
  });

  it("sample() takes one in oneIn by the injected draw, and a CSPRNG by default", function () {
    const asked: number[] = [];
    let n = 0;
    const drawn = new ContentChecker({ oneIn: 10, maxBytes: 1, timeoutMs: 1, draw: (k) => (asked.push(k), n++ % k) });
    const picks = Array.from({ length: 1000 }, () => drawn.sample()).filter(Boolean).length;
    expect(picks).to.equal(100);
    expect(new Set(asked)).to.deep.equal(new Set([10]));
    const random = new ContentChecker({ oneIn: 10, maxBytes: 1, timeoutMs: 1 });
    const randomPicks = Array.from({ length: 20_000 }, () => random.sample()).filter(Boolean).length;
    expect(randomPicks).to.be.within(1_700, 2_300); // 2,000 expected; sd ~42
    const never = new ContentChecker({ oneIn: 0, maxBytes: 1, timeoutMs: 1 });
    expect(Array.from({ length: 100 }, () => never.sample()).some(Boolean)).to.equal(false);
    const always = new ContentChecker({ oneIn: 1, maxBytes: 1, timeoutMs: 1 });
    expect(Array.from({ length: 100 }, () => always.sample()).every(Boolean)).to.equal(true);
  });

  it("at most maxConcurrent checks fetch at once; more are inconclusive", async function () {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const limited = new ContentChecker({
      oneIn: 1,
      maxBytes: 1024,
      timeoutMs: 1000,
      maxConcurrent: 1,
      fetchImpl: async () => (await gate, { status: 200, sha256: sha("a"), bytes: 1 }),
    });
    const firstCheck = limited.check(served(origin.url, "a"));
    expect(await limited.check(served(origin.url, "a"))).to.deep.equal({
      outcome: "inconclusive",
      reason: "1 checks in flight already",
    });
    release();
    expect(await firstCheck).to.deep.equal({ outcome: "match" });
  });

  it("checkHeaders drops hop-by-hop, conditional and range headers", function () {
    expect(
      checkHeaders({
        accept: "*/*",
        host: "docs.example.test",
        connection: "x-drop",
        "x-drop": "1",
        "if-modified-since": "Mon, 30 Nov 2026 08:00:00 GMT",
        "if-range": '"a"',
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      }),
    ).to.deep.equal({ accept: "*/*", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" });
  });

  it("R13: one check per site at a time: a site's slow checks never starve another site's", async function () {
    const started: string[] = [];
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const checker = {
      check: async (sample: ServedSample) => {
        started.push(sample.url);
        if (sample.url.startsWith("http://a")) await slow;
        return { outcome: "match" as const };
      },
    };
    const skipped: string[] = [];
    const checks = new SampledChecks(checker, { strike: () => false }, {
      checks: { inc: ({ outcome }: { outcome: string }) => void (outcome === "skipped" && skipped.push(outcome)) },
    } as never);
    const site = (id: string) =>
      ({ id, origin: `http://${id}`, hostname: `${id}.test`, owner: "0x0", cache: {} }) as never;
    const served = { host: "0xh", status: 200, cache: "miss", sha256: "00" };
    checks.check(site("a"), "/1", {}, served, 1);
    checks.check(site("a"), "/2", {}, served, 1); // skipped: a's first check is still running
    checks.check(site("b"), "/1", {}, served, 1);
    expect(started).to.deep.equal(["http://a/1", "http://b/1"]);
    expect(skipped).to.have.length(1);
    release();
    await new Promise((r) => setTimeout(r, 10));
    checks.check(site("a"), "/3", {}, served, 1);
    expect(started).to.include("http://a/3");
  });
});
