/**
 * Content delivery through the gateway's queue (issue 16, D44): a site's request at the gateway's front door
 * becomes a job that a host pulls over its own outbound link, served from the host's cache or the origin, and
 * streamed back. Real pieces throughout: a node:http origin, the gateway's front door, queue and links on
 * loopback sockets, hosts with their real job handler, cache and origin fetcher. The chain's admission and
 * billing's credit come from the test.
 */
import { expect } from "chai";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { type Server, createServer, request as httpRequest } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Counter, Registry } from "prom-client";
import { request } from "undici";
import type { LocalAccount } from "viem";

import { CdnFrontDoor } from "../../node/roles/gateway/cdn";
import { MAX_REQUEST_BODY } from "../../node/roles/gateway/cdnHttp";
import { createCdnMetrics } from "../../node/roles/gateway/cdnMetrics";
import { ContentChecker } from "../../node/roles/gateway/contentCheck";
import { SiteIndex, parseSites } from "../../node/roles/gateway/sites";
import { HostCache } from "../../node/roles/host/cache";
import { HostJobs } from "../../node/roles/host/jobs";
import type { GatewayLink, JobHandler } from "../../node/roles/host/link";
import { createOriginFetcher } from "../../node/roles/host/origin";
import { nodeError } from "../../node/errors";
import { BREAKER_AFTER } from "../../node/roles/gateway/queue";
import { signHostRegistration } from "../../offchain/common/protocol";
import { WorkTracker } from "../../node/workTracker";
import { type Tracing, initTracing, parseTraceparent } from "../../offchain/common/tracing";
import { startOtlpReceiver } from "../../scripts/lib/otlpReceiver";
import {
  CHAIN,
  type GatewayHarness,
  connectHost,
  hostAccount,
  silentLog,
  startGatewayHarness,
  upgradeRefusal,
  waitUntil,
} from "../shared/gatewayHarness";

const OWNER = "0x00000000000000000000000000000000000000aa";

interface Origin {
  url: string;
  server: Server;
  requests: string[];
  /** The traceparent header of each request. */
  traceparents: Array<string | undefined>;
  /** Milliseconds each answer waits. */
  delayMs: number;
}

/** An origin: /obj/<n>?size=<bytes> answers `size` bytes derived from the path, cacheable for 60 s, with an ETag. */
async function startOrigin(): Promise<Origin> {
  const origin = { requests: [] as string[], traceparents: [], delayMs: 0 } as unknown as Origin;
  origin.server = createServer((request, response) => {
    origin.requests.push(`${request.method} ${request.url}`);
    origin.traceparents.push(request.headers.traceparent as string | undefined);
    const url = new URL(request.url ?? "/", "http://origin");
    const size = Number(url.searchParams.get("size") ?? 1024);
    const body = Buffer.alloc(size, url.pathname);
    const etag = `"${createHash("sha256").update(body).digest("hex").slice(0, 16)}"`;
    setTimeout(() => {
      if (url.pathname === "/private") response.setHeader("cache-control", "private");
      else response.setHeader("cache-control", "public, max-age=60");
      response.setHeader("etag", etag);
      response.setHeader("content-type", "application/octet-stream");
      if (request.method === "POST") {
        let posted = 0;
        request.on("data", (chunk: Buffer) => (posted += chunk.length));
        request.on("end", () => response.end(`posted ${posted}`));
        return;
      }
      response.end(request.method === "HEAD" ? undefined : body);
    }, origin.delayMs);
  });
  await new Promise<void>((resolve) => origin.server.listen(0, "127.0.0.1", resolve));
  origin.url = `http://127.0.0.1:${(origin.server.address() as AddressInfo).port}`;
  return origin;
}

describe("content delivery: gateway queue, host links, host caches (D44)", function () {
  this.timeout(60_000);
  let dir: string;
  let origin: Origin;
  let gateway: GatewayHarness;
  let front: { url: string; server: Server; door: CdnFrontDoor };
  const links: GatewayLink[] = [];
  const counted: string[] = [];
  const usage: Array<[string, string, string, bigint]> = [];
  let serving = true;
  /** Off unless a test turns it on (an OTLP receiver): W3C context is propagated either way. */
  let gatewayTracing: Tracing = initTracing({ serviceName: "edge-gateway", env: {} });
  let hostTracing: Tracing = initTracing({ serviceName: "edge-host", env: {} });

  let registry = new Registry();

  async function startFront(options: { checker?: ContentChecker; credit?: unknown; jobTimeoutMs?: number } = {}) {
    registry = new Registry();
    const sites = new SiteIndex(
      parseSites({
        sites: [
          {
            id: "docs",
            hostname: "docs.example.test",
            owner: OWNER,
            origin: origin.url,
            cache: { defaultTtlSeconds: 0 },
          },
        ],
      }),
      "v1",
    );
    const door = new CdnFrontDoor(
      {
        signer: { account: gateway.account, chainId: CHAIN },
        log: silentLog,
        serving: () => serving,
        work: new WorkTracker(),
        tracing: gatewayTracing,
      },
      {
        sites,
        queue: gateway.queue,
        hosts: gateway.hosts,
        reports: { count: (host: string) => void counted.push(host) },
        usage: {
          addAll: (c: string, service: string, lines: ReadonlyArray<readonly [string, bigint]>) =>
            void lines.forEach(([metric, q]) => usage.push([c, service, metric, q])),
        },
        credit: options.credit as never,
        checker: options.checker,
        metrics: createCdnMetrics(registry, { queueDepth: () => 0, linkedHosts: () => 0, capacity: () => 0 }),
      },
      options.jobTimeoutMs ?? 5_000,
    );
    const server = createServer((request, response) => door.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    front = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, door };
  }

  /** A real host: its job handler, cache (memory only) and origin fetcher. */
  function realHost(account: LocalAccount): JobHandler {
    const fetcher = createOriginFetcher({ allowPrivateOrigins: true });
    const cache = new HostCache({
      origin: fetcher,
      dir: join(dir, account.address),
      memoryBytes: 8 * 1024 * 1024,
      diskBytes: 0,
      log: silentLog,
    });
    const jobs = new HostJobs(
      {
        signer: { account, chainId: CHAIN },
        log: silentLog,
        work: new WorkTracker(),
        metrics: { jobs: new Counter({ name: "j", help: "j", labelNames: ["outcome"] as const, registers: [] }) },
        serving: () => true,
        tracing: hostTracing,
      },
      {
        cache,
        memoryBytes: 8 * 1024 * 1024,
        tallies: null,
        gateway: () => gateway.account.address,
        maxJobRounds: 1_000,
      },
    );
    return (request, response) => jobs.handle(request, response);
  }

  async function host(n: number, handler?: JobHandler, capacity = 4): Promise<LocalAccount> {
    const account = hostAccount(n);
    links.push(await connectHost(gateway, account, handler ?? realHost(account), capacity));
    return account;
  }

  /** A request to the front door for `host` (fetch cannot set Host; undici's request can). */
  async function get(
    path: string,
    host = "docs.example.test",
    init: { method?: string; body?: string; headers?: Record<string, string> } = {},
  ) {
    const r = await request(`${front.url}${path}`, {
      method: (init.method ?? "GET") as "GET",
      body: init.body,
      headers: { host, ...init.headers },
    });
    return {
      status: r.statusCode,
      headers: { get: (name: string) => (r.headers[name] as string | undefined) ?? null },
      arrayBuffer: () => r.body.arrayBuffer(),
      json: () => r.body.json(),
      text: () => r.body.text(),
    };
  }

  beforeEach(async function () {
    dir = mkdtempSync(join(tmpdir(), "cdn-"));
    origin = await startOrigin();
    gateway = await startGatewayHarness({ queueWaitMs: 20_000 });
    counted.length = 0;
    usage.length = 0;
    serving = true;
  });

  afterEach(async function () {
    await Promise.all(links.splice(0).map((link) => link.leave()));
    front?.server.closeAllConnections();
    await new Promise<void>((resolve) => (front ? front.server.close(() => resolve()) : resolve()));
    await gateway.close();
    origin.server.closeAllConnections();
    await new Promise<void>((resolve) => origin.server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves a site's request through a host: a miss from the origin, then hits from the host's cache; counted and billed per job", async function () {
    await startFront();
    const h = await host(0x31);
    const first = await get("/obj/1?size=5000");
    expect(first.status).to.equal(200);
    expect(first.headers.get("x-edge-cache")).to.equal("miss");
    expect(first.headers.get("etag")).to.match(/^"[0-9a-f]{16}"$/);
    const body = Buffer.from(await first.arrayBuffer());
    expect(body.equals(Buffer.alloc(5000, "/obj/1"))).to.equal(true);
    const second = await get("/obj/1?size=5000");
    expect(second.headers.get("x-edge-cache")).to.equal("hit");
    expect(Buffer.from(await second.arrayBuffer()).equals(body)).to.equal(true);
    expect(origin.requests).to.deep.equal(["GET /obj/1?size=5000"]);
    // The origin saw the client's request with the gateway's forwarding headers, never the gateway's own.
    expect(counted).to.deep.equal([h.address, h.address]);
    const billed = (metric: string) =>
      usage.filter(([, service, m]) => service === "cdn" && m === metric).reduce((a, [, , , q]) => a + q, 0n);
    expect(billed("requests")).to.equal(2n);
    expect(billed("egressBytes")).to.equal(10_000n);
    expect(usage.every(([customer]) => customer.toLowerCase() === OWNER)).to.equal(true);
    // Per-site and per-host metrics, labelled by configuration and admitted hosts only.
    const text = await registry.metrics();
    expect(text).to.include(`edge_cdn_requests_total{site="docs",status="2xx",cache="hit"} 1`);
    expect(text).to.include(`edge_cdn_egress_bytes_total{site="docs"} 10000`);
    expect(text).to.include(`edge_cdn_host_jobs_total{host="${h.address}",cache="miss"} 1`);
    expect(text).to.include(`edge_cdn_host_egress_bytes_total{host="${h.address}"} 10000`);
    expect(text).to.match(/edge_cdn_host_request_duration_seconds_count\{host="0x[0-9a-fA-F]{40}"\} 2/);
    // A POST goes to the origin with its body, uncached.
    const posted = await get("/form", undefined, { method: "POST", body: "x".repeat(3000) });
    expect(await posted.text()).to.equal("posted 3000");
    expect(posted.headers.get("x-edge-cache")).to.equal("bypass");
  });

  it("refuses clearly and bills nothing: unknown Host 404, no host 503, body over 1 MiB 413, over 100 headers 431, not serving 503", async function () {
    await startFront();
    const unknown = await get("/", "nope.example.test");
    expect(unknown.status).to.equal(404);
    expect(await unknown.json()).to.deep.equal({
      error: 'no site is configured for host "nope.example.test"',
      code: "EDGE_NODE_UNKNOWN_SITE",
    });
    const none = await get("/obj/1");
    expect(none.status).to.equal(503);
    expect(((await none.json()) as { code: string }).code).to.equal("EDGE_NODE_NO_HOSTS");
    await host(0x32);
    const big = await get("/form", undefined, { method: "POST", body: "x".repeat(MAX_REQUEST_BODY + 1) });
    expect(big.status).to.equal(413);
    expect(((await big.json()) as { code: string }).code).to.equal("EDGE_NODE_BODY_TOO_LARGE");
    const headers = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`x-h${i}`, "v"]));
    const crowded = await get("/obj/1", undefined, { headers });
    expect(crowded.status).to.equal(431);
    expect(((await crowded.json()) as { code: string }).code).to.equal("EDGE_NODE_TOO_MANY_HEADERS");
    serving = false;
    const draining = await get("/obj/1");
    expect(draining.status).to.equal(503);
    expect(((await draining.json()) as { code: string }).code).to.equal("EDGE_NODE_NOT_SERVING");
    expect(usage).to.deep.equal([]);
    expect(counted).to.deep.equal([]);
    expect(origin.requests).to.deep.equal([]);
  });

  it("R8: egress is reserved a MiB at a time as it flows: a response the owner's credit no longer covers is cut, billed to the byte", async function () {
    let budget = 2n * 1024n * 1024n; // the owner's credit covers 2 MiB of egress
    const credit = {
      reserve: async (customer: string) => ({ customer, cost: 1n }),
      extend: (_r: unknown, lines: Array<{ quantity: bigint }>) => {
        if (lines[0].quantity > budget) return false;
        budget -= lines[0].quantity;
        return true;
      },
      complete() {},
      release() {},
    };
    await startFront({ credit });
    await host(0x3a);
    const r = await request(`${front.url}/obj/big?size=${3 * 1024 * 1024}`, { headers: { host: "docs.example.test" } });
    expect(r.statusCode).to.equal(200);
    let received = 0;
    const cut = await (async () => {
      for await (const chunk of r.body) received += (chunk as Buffer).length;
    })().then(
      () => false,
      () => true,
    );
    expect(cut, "the client's connection is cut").to.equal(true);
    expect(received).to.be.at.most(2 * 1024 * 1024);
    const billed = usage.filter(([, , m]) => m === "egressBytes").reduce((a, [, , , q]) => a + q, 0n);
    expect(billed).to.be.at.most(2n * 1024n * 1024n);
    expect(billed >= BigInt(received)).to.equal(true);
    expect(counted, "a cut job is not counted for the host").to.deep.equal([]);
    // The metrics agree with the bill: bytes went out, so the request counts as served (with the status sent).
    const text = await registry.metrics();
    expect(text).to.include(`edge_cdn_requests_total{site="docs",status="2xx",cache="none"} 1`);
    expect(text).to.include(`edge_cdn_egress_bytes_total{site="docs"} ${billed}`);
  });

  it("402 when the site owner's credit is used up: nothing is fetched, counted or billed", async function () {
    const credit = {
      reserve: async () => {
        throw nodeError("EDGE_NODE_CREDIT_EXHAUSTED", `customer ${OWNER} has used its credit`);
      },
      extend: () => true,
      complete() {},
      release() {},
    };
    await startFront({ credit });
    await host(0x33);
    const refused = await get("/obj/1");
    expect(refused.status).to.equal(402);
    expect(((await refused.json()) as { code: string }).code).to.equal("EDGE_NODE_CREDIT_EXHAUSTED");
    expect(origin.requests).to.deep.equal([]);
    expect(usage).to.deep.equal([]);
  });

  it("a host that drops its link mid-job has the job retried once on another host; the client gets the whole response", async function () {
    await startFront();
    let dropped = 0;
    const dropper = await host(0x34, (request) => {
      dropped += 1;
      request.stream.session?.destroy(); // the host's connection dies with the job in flight
    });
    const good = await host(0x35);
    // Two idle hosts that never ran a job: the first linked (the dropper) takes the first job.
    const response = await get("/obj/2?size=2048");
    expect(response.status).to.equal(200);
    const got = Buffer.from(await response.arrayBuffer());
    expect(got.equals(Buffer.alloc(2048, "/obj/2"))).to.equal(true);
    expect(dropped).to.equal(1);
    expect(counted).to.deep.equal([good.address]);
    expect(counted).to.not.include(dropper.address);
  });

  it("a host that serves wrong content (the origin's ETag, other bytes) is caught by sampled checks on two URLs and banned", async function () {
    await startFront({ checker: new ContentChecker({ oneIn: 1, maxBytes: 1 << 20, timeoutMs: 2_000 }) });
    const liar = await host(0x36, (request, response) => {
      const path = new URL(request.url, "http://x").pathname;
      const real = Buffer.alloc(1024, path);
      const etag = `"${createHash("sha256").update(real).digest("hex").slice(0, 16)}"`;
      response.writeHead(200, { etag, "x-edge-cache": "hit" });
      response.end(Buffer.alloc(1024, "forged"));
    });
    expect((await get("/obj/3")).status).to.equal(200);
    await waitUntil("the first check", () => origin.requests.includes("GET /obj/3"));
    await new Promise((r) => setTimeout(r, 100));
    expect(gateway.hosts.bannedHosts(), "one URL's mismatch bans nobody (D49)").to.deep.equal([]);
    expect((await get("/obj/4")).status).to.equal(200);
    await waitUntil("the liar is banned", () => gateway.hosts.bannedHosts().some((b) => b.host === liar.address));
    expect(gateway.hosts.bannedHosts()[0].reason).to.match(/wrong content/);
    expect(gateway.hosts.routable()).to.deep.equal([]);
  });

  it("scores measure speed: at saturation a host with twice the capacity returns about twice the jobs of its peer", async function () {
    await startFront();
    origin.delayMs = 20; // every job takes the origin's 20 ms: a host's rate is its capacity / 20 ms
    const slow = await host(0x37, undefined, 2);
    const fast = await host(0x38, undefined, 4);
    // Distinct objects (all misses), 60 at a time: the queue stays full.
    await Promise.all(
      Array.from({ length: 240 }, async (_, i) => {
        const r = await get(`/obj/sat${i}?size=256`);
        expect(r.status).to.equal(200);
        await r.arrayBuffer();
      }),
    );
    const jobsOf = (a: LocalAccount) => counted.filter((h) => h === a.address).length;
    const ratio = jobsOf(fast) / jobsOf(slow);
    console.log(`      fast ${jobsOf(fast)} jobs, slow ${jobsOf(slow)}: ratio ${ratio.toFixed(2)}`);
    expect(jobsOf(fast) + jobsOf(slow)).to.equal(240);
    expect(ratio).to.be.within(1.5, 2.6);
  });

  it("traces a request (W3C trace context): the client's trace reaches the host and the origin, spans exported over OTLP", async function () {
    const receiver = await startOtlpReceiver();
    gatewayTracing = initTracing({ serviceName: "edge-gateway", endpoint: receiver.endpoint, env: {} });
    hostTracing = initTracing({ serviceName: "edge-host", endpoint: receiver.endpoint, env: {} });
    try {
      await startFront();
      await host(0x39);
      const client = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
      const traced = await get("/obj/t?size=100", undefined, { headers: { traceparent: client } });
      expect(traced.status).to.equal(200);
      await traced.arrayBuffer();
      expect(traced.headers.get("x-edge-trace")).to.equal("0af7651916cd43dd8448eb211c80319c");
      const atOrigin = parseTraceparent(origin.traceparents[0])!;
      expect(atOrigin.traceId).to.equal("0af7651916cd43dd8448eb211c80319c");
      await gatewayTracing.flush();
      await hostTracing.flush();
      await waitUntil("both spans exported", () => receiver.spans.length >= 2);
      const gatewaySpan = receiver.spans.find((span) => span.service === "edge-gateway")!;
      const hostSpan = receiver.spans.find((span) => span.service === "edge-host")!;
      expect(gatewaySpan.parentSpanId).to.equal("b7ad6b7169203331");
      expect(hostSpan.parentSpanId).to.equal(gatewaySpan.spanId);
      expect(hostSpan.traceId).to.equal(gatewaySpan.traceId);
      expect(atOrigin.spanId).to.equal(hostSpan.spanId);
      expect(gatewaySpan.attributes).to.include({ "edge.site": "docs", "edge.cache": "miss", "edge.bytes": 100 });
      // Without a client's context the gateway starts a trace, still propagated and returned.
      const fresh = await get("/obj/t?size=100");
      expect(fresh.headers.get("x-edge-trace")).to.match(/^[0-9a-f]{32}$/);
    } finally {
      await gatewayTracing.shutdown();
      await hostTracing.shutdown();
      gatewayTracing = initTracing({ serviceName: "edge-gateway", env: {} });
      hostTracing = initTracing({ serviceName: "edge-host", env: {} });
      await receiver.close();
    }
  });

  describe("abuse (review of issue 16)", function () {
    it("R1: a client that leaves while its job waits frees nothing it never took: the slot serves the next request", async function () {
      await startFront();
      origin.delayMs = 300;
      const h = await host(0x40, undefined, 1);
      const first = get("/obj/r1a");
      await waitUntil("the first job on the host", () => gateway.hosts.routable()[0]?.[1].link.inflight === 1);
      // The second waits in the queue; its client gives up.
      const controller = new AbortController();
      const second = request(`${front.url}/obj/r1b`, {
        headers: { host: "docs.example.test" },
        signal: controller.signal,
      });
      await waitUntil("the second job queued", () => gateway.queue.depth === 1);
      controller.abort();
      await second.catch(() => undefined);
      expect((await first).status).to.equal(200);
      origin.delayMs = 0;
      const third = await get("/obj/r1c");
      expect(third.status).to.equal(200);
      await waitUntil("no job in flight", () => gateway.hosts.routable()[0]?.[1].link.inflight === 0);
      expect(gateway.queue.depth).to.equal(0);
      expect(origin.requests).to.not.include("GET /obj/r1b");
      expect(counted).to.deep.equal([h.address, h.address]);
    });

    it("R5: an absolute-form request names its site and path by its own authority, for the host and the checker alike", async function () {
      await startFront();
      await host(0x41);
      const raw = await rawRequest(
        front.url,
        "GET http://docs.example.test/obj/r5?size=10 HTTP/1.1\r\nHost: elsewhere.test\r\nConnection: close\r\n\r\n",
      );
      expect(raw).to.match(/^HTTP\/1\.1 200/);
      expect(raw.endsWith(Buffer.alloc(10, "/obj/r5").toString())).to.equal(true);
      expect(origin.requests).to.deep.equal(["GET /obj/r5?size=10"]);
    });

    it("R6: a host that fails every job fast is paused by the breaker instead of swallowing the queue", async function () {
      await startFront();
      let resets = 0;
      await host(
        0x42,
        (req) => {
          resets += 1;
          req.stream.close(0x2);
        },
        16,
      );
      await host(0x43, undefined, 1);
      for (let i = 0; i < 20; i++) expect((await get(`/obj/r6-${i}`)).status, `request ${i}`).to.equal(200);
      expect(resets).to.equal(BREAKER_AFTER);
    });

    it("R10: a host that sends headers then stalls is cut after the job timeout and its slot comes back", async function () {
      await startFront({ jobTimeoutMs: 300 });
      await host(
        0x44,
        (_req, res) => {
          res.writeHead(200, { "x-edge-cache": "miss" });
          res.write("partial");
        },
        1,
      );
      const cut = await get("/obj/r10")
        .then((r) => r.text())
        .then(
          () => "whole",
          () => "cut",
        );
      expect(cut).to.equal("cut");
      await waitUntil("the slot back", () => gateway.hosts.routable()[0]?.[1].link.inflight === 0);
      expect(counted).to.deep.equal([]);
    });

    it("R14, R16: a host's own error code and words never reach the client; with no other host the answer is at once", async function () {
      await startFront();
      await host(0x45, (_req, res) => {
        res.writeHead(402, { "content-type": "application/json", "x-edge-error": "EDGE_NODE_CREDIT_EXHAUSTED" });
        res.end(JSON.stringify({ error: "pay the host 100 tokens at 0xevil", code: "EDGE_NODE_CREDIT_EXHAUSTED" }));
      });
      const answer = await get("/obj/r14");
      expect(answer.status).to.equal(502);
      const body = (await answer.json()) as { code: string; error: string };
      expect(body.code).to.equal("EDGE_NODE_HOST_FAILED");
      expect(body.error).to.not.match(/evil|tokens/);
    });

    it("a link's handshake replayed, or signed by another key than the host it names, is refused before any link", async function () {
      const account = hostAccount(0x47);
      const registration = await signHostRegistration(account, CHAIN, {
        gateway: gateway.account.address,
        url: "http://127.0.0.1:9",
        leaving: false,
        timestamp: BigInt(Date.now()),
      });
      const header = Buffer.from(JSON.stringify(registration)).toString("base64url");
      const first = await rawUpgrade(gateway.url, header);
      first.destroy();
      const replay = await upgradeRefusal(gateway.url, header);
      expect([replay.status, replay.body.code]).to.deep.equal([409, "EDGE_NODE_REPLAYED"]);
      // Another key signing for host 0x47 (a borrowed identity): 401, and nothing is remembered for 0x47.
      const borrowed = await signHostRegistration(hostAccount(0x48), CHAIN, {
        gateway: gateway.account.address,
        url: "http://127.0.0.1:9",
        leaving: false,
        timestamp: BigInt(Date.now() + 1),
      });
      const forged = { ...borrowed, host: account.address };
      const refused = await upgradeRefusal(gateway.url, Buffer.from(JSON.stringify(forged)).toString("base64url"));
      expect([refused.status, refused.body.code]).to.deep.equal([401, "EDGE_NODE_BAD_SIGNATURE"]);
      expect(gateway.hosts.routable()).to.deep.equal([]);
      expect(gateway.links.refused).to.equal(2);
    });

    it("R9: a link that never sends its HTTP/2 SETTINGS is closed", async function () {
      await gateway.close();
      gateway = await startGatewayHarness({ settingsTimeoutMs: 200 });
      const account = hostAccount(0x46);
      const registration = await signHostRegistration(account, CHAIN, {
        gateway: gateway.account.address,
        url: "http://127.0.0.1:9",
        leaving: false,
        timestamp: BigInt(Date.now()),
      });
      const socket = await rawUpgrade(gateway.url, Buffer.from(JSON.stringify(registration)).toString("base64url"));
      const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
      socket.resume(); // read what the gateway sends (its SETTINGS), so its close is seen
      await closed; // no SETTINGS from us: the gateway closes the link
      expect(gateway.hosts.routable()).to.deep.equal([]);
    });
  });
});

/** A raw HTTP/1.1 exchange (absolute-form targets and the like); the whole answer as text. */
function rawRequest(url: string, text: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1", () => socket.write(text));
    let answer = "";
    socket.on("data", (chunk) => (answer += chunk.toString("latin1")));
    socket.on("end", () => resolve(answer));
    socket.on("error", reject);
  });
}

/** Asks for a host link and returns the switched socket (which then speaks no HTTP/2 at all). */
function rawUpgrade(url: string, registration: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/hosts/connect`, {
      headers: { connection: "upgrade", upgrade: "edge-jobs/1", "x-edge-registration": registration },
    });
    req.on("upgrade", (_res, socket) => resolve(socket));
    req.on("response", (res) => reject(new Error(`refused: ${res.statusCode}`)));
    req.on("error", reject);
    req.end();
  });
}
