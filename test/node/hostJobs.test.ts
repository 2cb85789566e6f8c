/**
 * A host's cdn jobs against real origins (D49): answers HTTP/2 cannot carry as the origin sent them (a single-value
 * header repeated, a status outside 200..599), and objects over the host's own fill cap. Real pieces: a node:http
 * origin, the host's HostJobs with its cache and origin fetcher behind an h2c server, an HTTP/2 client as the
 * gateway.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { type Server, createServer } from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Counter } from "prom-client";
import { privateKeyToAccount } from "viem/accounts";

import { HostCache } from "../../node/roles/host/cache";
import { HostJobs, hostFillCap, relayable } from "../../node/roles/host/jobs";
import { createOriginFetcher } from "../../node/roles/host/origin";
import { WorkTracker } from "../../node/workTracker";
import { initTracing } from "../../offchain/common/tracing";

const MIB = 1024 * 1024;
const silentLog = { info() {}, warn() {}, error() {}, debug() {}, child: () => silentLog } as never;

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

describe("host cdn jobs: relayable answers and the fill cap (D49)", function () {
  let dir: string;
  let origin: Server;
  let originUrl: string;
  const asked = new Map<string, number>();
  let h2: http2.Http2Server;
  let session: http2.ClientHttp2Session;
  let cache: HostCache;
  let jobs: HostJobs;
  const fetcher = createOriginFetcher({ allowPrivateOrigins: true });
  const MEMORY = 8 * MIB; // the fill cap is 1 MiB

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-host-jobs-"));
    origin = createServer((req, res) => {
      const path = req.url ?? "/";
      asked.set(path, (asked.get(path) ?? 0) + 1);
      if (path === "/two-types") {
        res.setHeader("content-type", ["text/plain", "text/html"]);
        res.setHeader("set-cookie", ["a=1", "b=2"]);
        res.setHeader("cache-control", ["no-store", "no-transform"]);
        return void res.end("typed twice");
      }
      if (path === "/status-600") return void res.writeHead(600, { "content-type": "text/plain" }).end("odd");
      const size = Number(new URL(path, "http://x").searchParams.get("size"));
      res.writeHead(200, { "cache-control": "max-age=60", "content-length": size, etag: `"${size}"` });
      res.end(Buffer.alloc(size, path));
    });
    await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    cache = new HostCache({ origin: fetcher, dir, memoryBytes: MEMORY, diskBytes: 0, log: silentLog });
    jobs = new HostJobs(
      {
        signer: { account: privateKeyToAccount(`0x${"71".repeat(32)}`), chainId: 31337 },
        log: silentLog,
        work: new WorkTracker(),
        serving: () => true,
        tracing: initTracing({ serviceName: "edge-host", env: {} }),
        metrics: { jobs: new Counter({ name: "j", help: "j", labelNames: ["outcome"] as const, registers: [] }) },
      },
      { cache, memoryBytes: MEMORY, tallies: null, gateway: () => null, maxJobRounds: 1_000 },
    );
    h2 = http2.createServer((request, response) => jobs.handle(request, response));
    await new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve));
    session = http2.connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`);
  });

  after(async function () {
    session.close();
    await new Promise((resolve) => h2.close(resolve));
    await cache.close();
    await fetcher.close();
    origin.closeAllConnections();
    await new Promise((resolve) => origin.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  /** A cdn job for `path` at the origin, as the gateway sends it (site limit 100 MiB). */
  function job(path: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const stream = session.request({
        ":path": path,
        "x-edge-kind": "cdn",
        "x-edge-site": "site",
        "x-edge-origin": originUrl,
        "x-edge-ttl": "60",
        "x-edge-max-object": String(100 * MIB),
      });
      const chunks: Buffer[] = [];
      let headers: http2.IncomingHttpHeaders = {};
      stream.on("response", (h) => (headers = h));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => resolve({ status: Number(headers[":status"]), headers, body: Buffer.concat(chunks) }));
      stream.on("error", reject);
      stream.end();
    });
  }

  it("R15: two Content-Type headers from the origin are relayed as the first; repeated list headers and cookies stay", async function () {
    const answer = await job("/two-types");
    expect(answer.status).to.equal(200);
    expect(answer.headers["content-type"]).to.equal("text/plain");
    expect(answer.headers["set-cookie"]).to.deep.equal(["a=1", "b=2"]);
    expect(answer.headers["cache-control"]).to.equal("no-store, no-transform");
    expect(answer.body.toString()).to.equal("typed twice");
    expect(asked.get("/two-types")).to.equal(1);
    expect(relayable({ etag: ['"a"', '"b"'], vary: ["accept", "origin"], connection: "close" })).to.deep.equal({
      etag: '"a"',
      vary: ["accept", "origin"],
    });
  });

  it("R15: a status outside 200..599 is a 502 EDGE_NODE_ORIGIN_INVALID, not counted, and the next job still works", async function () {
    const before = jobs.executed;
    const answer = await job("/status-600");
    expect(answer.status).to.equal(502);
    expect(answer.headers["x-edge-error"]).to.equal("EDGE_NODE_ORIGIN_INVALID");
    expect(answer.headers["content-type"]).to.equal("application/json");
    expect(JSON.parse(answer.body.toString())).to.deep.include({ code: "EDGE_NODE_ORIGIN_INVALID" });
    expect(asked.get("/status-600")).to.equal(1);
    expect(jobs.executed).to.equal(before);
    expect((await job("/ok?size=10")).status).to.equal(200);
  });

  it("R7: an object over the host's fill cap (max(1 MiB, memory / 8)) is served whole and not stored; smaller ones are", async function () {
    expect(hostFillCap(MEMORY)).to.equal(MIB);
    expect(hostFillCap(64 * MIB)).to.equal(8 * MIB);
    expect(hostFillCap(0)).to.equal(MIB);
    const big = `/big?size=${2 * MIB}`;
    const entries = cache.stats().entries;
    for (const round of [1, 2]) {
      const answer = await job(big);
      expect(answer.body.length, `round ${round}`).to.equal(2 * MIB);
      expect(answer.body.equals(Buffer.alloc(2 * MIB, big))).to.equal(true);
      expect(answer.headers["x-edge-cache"]).to.equal("miss");
    }
    expect(asked.get(big)).to.equal(2);
    expect(cache.stats().entries).to.equal(entries);
    const small = `/small?size=${MIB / 2}`;
    expect((await job(small)).headers["x-edge-cache"]).to.equal("miss");
    expect((await job(small)).headers["x-edge-cache"]).to.equal("hit");
    expect(asked.get(small)).to.equal(1);
  });
});
