import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { type IncomingMessage, type ServerResponse, createServer as createHttpServer } from "node:http";
import http2, { type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { createServer } from "node:net";
import { join } from "node:path";

import { ConfigError } from "../../../offchain/common/config";
import { loadNewtonConfig } from "../../../offchain/newton/config";
import { LoadRun, type Plan, type TargetSummary } from "../../../offchain/newton/engine";
import { NewtonService } from "../../../offchain/newton/service";
import { type TestServer, startTestServer } from "./testServer";
import { promtoolProblems } from "../../shared/promtool";

const ROOT = join(__dirname, "..", "..", "..");
const TOKEN = "newton-test-token-0123456789";

async function load(url: string, plan: Partial<Plan> & { rate: number; durationMs: number }): Promise<TargetSummary> {
  const run = new LoadRun([{ id: "t", url, method: "GET", headers: {} }], {
    maxConcurrency: 256,
    timeoutMs: 5_000,
    ...plan,
  });
  const [summary] = await run.start();
  return summary;
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("newton", function () {
  this.timeout(60_000);
  const servers: TestServer[] = [];
  const server = async (mode: string, options: Record<string, string | number> = {}) => {
    const started = await startTestServer(mode, options);
    servers.push(started);
    return started.url;
  };
  after(async () => {
    for (const s of servers) await s.close();
  });

  describe("measurement", function () {
    it("measures a fixed 50 ms server as 50 ms, every planned request sent once", async function () {
      const url = await server("fixed", { delay: 50 });
      await load(url, { rate: 50, durationMs: 300 }); // warm the connections
      const summary = await load(url, { rate: 100, durationMs: 2_000 });
      expect(summary).to.deep.include({ planned: 200, sent: 200, responses: 200, errors: 0, dropped: 0 });
      expect(summary.statuses).to.deep.equal({ 200: 200 });
      expect(summary.latencyMs.p50).to.be.within(50, 54);
      expect(summary.latencyMs.p90).to.be.within(50, 60);
      // The tail carries the server's timer jitter and this 2-core machine's scheduling (the benchmark measures it).
      expect(summary.latencyMs.p99).to.be.within(50, 90);
      expect(summary.ttfbMs.p50).to.be.within(50, summary.latencyMs.p50 + 0.5);
      expect(summary.scheduleLagMs.p50).to.be.below(1);
    });

    it("shows a periodically stalling server in the high percentiles (no coordinated omission)", async function () {
      // Every second, the server holds requests for 300 ms: 30% of requests wait 0-300 ms (uniformly), the rest get
      // an answer at once, so p90 is ~200 ms and p99 ~290 ms. A closed-loop client would send few requests during
      // the stalls and hide them.
      const url = await server("stall", { period: 1000, stall: 300 });
      const summary = await load(url, { rate: 200, durationMs: 3_000 });
      expect(summary.responses).to.equal(600);
      // The median is an immediate answer: far below the stalls (a CI run on the loaded 2-core machine measured 21 ms
      // when the answers released at each stall's end queued behind each other).
      expect(summary.latencyMs.p50).to.be.below(50);
      expect(summary.latencyMs.p90).to.be.within(150, 250);
      expect(summary.latencyMs.p99).to.be.within(250, 320);
      // Requests leave on their schedule, not after the stalled answers: the lag stays far below the 300 ms stalls (a
      // CI run on the loaded 2-core machine measured 12 ms at p99).
      expect(summary.scheduleLagMs.p99).to.be.below(50);
    });

    it("counts responses by status code", async function () {
      const url = await server("status", { codes: "200,200,404,500" });
      const summary = await load(url, { rate: 100, durationMs: 1_000 });
      expect(summary.statuses).to.deep.equal({ 200: 50, 404: 25, 500: 25 });
      expect(summary.errors).to.equal(0);
    });

    it("counts errors by kind, and requests it could not start under the concurrency ceiling", async function () {
      const refused = await load(`http://127.0.0.1:${await closedPort()}/`, { rate: 20, durationMs: 500 });
      expect(refused).to.deep.include({ sent: 10, responses: 0, errors: 10 });
      expect(refused.errorsByKind).to.deep.equal({ refused: 10 });

      const reset = await load(await server("reset"), { rate: 20, durationMs: 500 });
      expect(reset.errorsByKind).to.deep.equal({ reset: 10 });

      const hang = await server("hang");
      const timeout = await load(hang, { rate: 20, durationMs: 500, timeoutMs: 200 });
      expect(timeout.errorsByKind).to.deep.equal({ timeout: 10 });

      // 5 in flight at most against a server that never answers: the other 45 planned requests are dropped.
      const dropped = await load(hang, { rate: 50, durationMs: 1_000, maxConcurrency: 5, timeoutMs: 1_500 });
      expect(dropped).to.deep.include({ planned: 50, sent: 5, dropped: 45, errors: 5 });
    });

    it("reads every response body whole (a 1 MiB body is not cut at undici's default dump limit), with a Host header", async function () {
      let whole = 0;
      const hosts = new Set<string>();
      const body = Buffer.alloc(1024 * 1024, "x");
      const listening = createHttpServer((request, response) => {
        hosts.add(request.headers.host ?? "");
        response.on("finish", () => (whole += 1)); // every byte handed over: the client kept reading to the end
        response.writeHead(200, { "content-length": body.length });
        // In 8 pieces 10 ms apart: a client that gave up on the body early closes before the last one.
        let piece = 0;
        const next = () => {
          if (response.destroyed) return;
          const chunk = body.subarray(piece * 131_072, ++piece * 131_072);
          if (piece === 8) response.end(chunk);
          else response.write(chunk, () => setTimeout(next, 10));
        };
        next();
      });
      await new Promise<void>((resolve) => listening.listen(0, "127.0.0.1", resolve));
      const { port } = listening.address() as { port: number };
      const run = new LoadRun(
        [{ id: "big", url: `http://127.0.0.1:${port}/`, method: "GET", headers: { host: "demo.edge.test" } }],
        { rate: 20, durationMs: 500, maxConcurrency: 16, timeoutMs: 5_000 },
      );
      const [summary] = await run.start();
      await new Promise((resolve) => listening.close(resolve));
      expect(summary, JSON.stringify(summary)).to.deep.include({ planned: 10, responses: 10, errors: 0 });
      expect(whole).to.equal(10);
      expect([...hosts]).to.deep.equal(["demo.edge.test"]);
    });

    it("sends a target's requests to its paths in turn, over HTTP/1.1 or, when the plan says, h2c", async function () {
      for (const h2c of [false, true]) {
        const seen: string[] = [];
        const versions = new Set<string>();
        const answer = (
          request: IncomingMessage | Http2ServerRequest,
          response: ServerResponse | Http2ServerResponse,
        ) => {
          seen.push(request.url ?? "");
          versions.add(request.httpVersion);
          response.end("ok");
        };
        const listening = h2c ? http2.createServer(answer) : createHttpServer(answer);
        await new Promise<void>((resolve) => listening.listen(0, "127.0.0.1", resolve));
        const { port } = listening.address() as { port: number };
        const run = new LoadRun(
          [
            {
              id: "t",
              url: `http://127.0.0.1:${port}/ignored`,
              method: "GET",
              headers: {},
              paths: ["/a", "/b?x=1", "/c"],
            },
          ],
          { rate: 50, durationMs: 600, maxConcurrency: 64, timeoutMs: 5_000, h2c },
        );
        const [summary] = await run.start();
        await new Promise((resolve) => listening.close(resolve));
        expect(summary, JSON.stringify(summary)).to.deep.include({ planned: 30, responses: 30, errors: 0 });
        expect([...seen].sort()).to.deep.equal(["/a", "/b?x=1", "/c"].flatMap((path) => Array(10).fill(path)));
        expect([...versions]).to.deep.equal([h2c ? "2.0" : "1.1"]);
      }
      expect(
        () =>
          new LoadRun([{ id: "t", url: "http://127.0.0.1:9/", method: "GET", headers: {}, paths: [] }], {
            rate: 1,
            durationMs: 1,
            maxConcurrency: 1,
            timeoutMs: 1,
          }),
      ).to.throw(RangeError, /paths/);
    });
  });

  describe("API", function () {
    let service: NewtonService;
    let api: string;
    const call = async (method: string, path: string, body?: unknown, token: string | null = TOKEN) => {
      const response = await fetch(`${api}${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, json: text ? JSON.parse(text) : null };
    };

    before(async function () {
      service = new NewtonService(
        loadNewtonConfig(["--port", "0", "--log-level", "silent"], { EDGE_NEWTON_TOKEN: TOKEN }),
      );
      api = await service.start();
    });
    after(async () => service.close());

    it("manages targets and plans behind the bearer token, with 4xx and a message for bad input", async function () {
      const target = await server("fixed", { delay: 0 });
      expect((await call("GET", "/targets", undefined, null)).json.code).to.equal("NEWTON_UNAUTHORIZED");
      expect((await call("GET", "/targets", undefined, "x".repeat(TOKEN.length))).status).to.equal(401);
      expect((await call("POST", "/plan", { rate: 10, durationSeconds: 1 })).json.code).to.equal("NEWTON_NO_TARGETS");

      const added = await call("POST", "/targets", { url: `${target}/a` });
      expect(added.status).to.equal(201);
      expect(added.json.target).to.deep.equal({ id: "t1", url: `${target}/a`, method: "GET", headers: {} });
      expect((await call("POST", "/targets", { id: "t1", url: `${target}/b` })).json.code).to.equal(
        "NEWTON_TARGET_EXISTS",
      );
      expect(
        (await call("POST", "/targets", { id: "gw", url: `${target}/b`, method: "POST", body: "{}" })).status,
      ).to.equal(201);
      expect(
        (await call("PUT", "/targets/gw", { url: `${target}/c`, headers: { "x-k": "v" } })).json.target,
      ).to.deep.equal({
        id: "gw",
        url: `${target}/c`,
        method: "GET",
        headers: { "x-k": "v" },
      });
      expect((await call("GET", "/targets")).json.targets.map((t: { id: string }) => t.id)).to.deep.equal(["t1", "gw"]);
      expect((await call("GET", "/targets/nope")).json.code).to.equal("NEWTON_UNKNOWN_TARGET");
      expect((await call("DELETE", "/targets/t1")).status).to.equal(204);
      expect((await call("DELETE", "/targets/t1")).status).to.equal(404);

      for (const [body, field] of [
        [{ url: "ftp://x" }, /url/],
        [{ url: `${target}/`, method: "BREW" }, /method/],
        [{ url: `${target}/`, extra: 1 }, /additional properties/],
      ] as const) {
        const reply = await call("POST", "/targets", body);
        expect([reply.status, reply.json.code]).to.deep.equal([400, "FST_ERR_VALIDATION"]);
        expect(reply.json.error).to.match(field);
      }
      for (const body of [
        { rate: 0, durationSeconds: 1 },
        { rate: 10 },
        { rate: 10, durationSeconds: 1, maxConcurrency: 0 },
      ]) {
        expect((await call("POST", "/plan", body)).status).to.equal(400);
      }
      expect((await call("POST", "/plan", { rate: 10, durationSeconds: 1, targets: ["t1"] })).json.code).to.equal(
        "NEWTON_UNKNOWN_TARGET",
      );

      const started = await call("POST", "/plan", { rate: 100, durationSeconds: 30, targets: ["gw"] });
      expect(started.status).to.equal(202);
      expect((await call("POST", "/plan", { rate: 10, durationSeconds: 1 })).json.code).to.equal("NEWTON_PLAN_RUNNING");
      await new Promise((r) => setTimeout(r, 500));
      expect((await call("GET", "/plan")).json).to.deep.include({ running: true });
      expect((await call("DELETE", "/plan")).status).to.equal(200);
      await new Promise((r) => setTimeout(r, 200));
      expect((await call("DELETE", "/plan")).json.code).to.equal("NEWTON_NO_PLAN");
      const summary = (await call("GET", "/summary")).json;
      expect(summary.running).to.equal(false);
      expect(summary.targets[0].target).to.equal("gw");
      expect(summary.targets[0].responses).to.be.within(40, 70);
      expect(summary.targets[0].statuses["200"]).to.equal(summary.targets[0].responses);
    });

    it("F13: refuses a target URL the engine cannot parse with 400 and a message, on add and on replace", async function () {
      for (const url of ["http://[", "http://a:99999/", "https://exa%mple.com", "http://%zz/"]) {
        const added = await call("POST", "/targets", { id: "bad", url });
        expect([added.status, added.json.code], url).to.deep.equal([400, "NEWTON_BAD_TARGET_URL"]);
        expect(added.json.error).to.match(/not a valid URL/);
      }
      const target = await server("fixed", { delay: 0 });
      expect((await call("POST", "/targets", { id: "ok", url: `${target}/` })).status).to.equal(201);
      const replaced = await call("PUT", "/targets/ok", { url: "http://[::1" });
      expect([replaced.status, replaced.json.code]).to.deep.equal([400, "NEWTON_BAD_TARGET_URL"]);
      expect((await call("GET", "/targets/ok")).json.target.url).to.equal(`${target}/`);
      expect((await call("GET", "/targets/bad")).status).to.equal(404);
      const started = await call("POST", "/plan", { rate: 5, durationSeconds: 0.2, targets: ["ok"] });
      expect(started.status).to.equal(202);
      await new Promise((r) => setTimeout(r, 400));
      expect((await call("DELETE", "/targets/ok")).status).to.equal(204);
    });

    it("serves valid Prometheus metrics (promtool check metrics) and OpenAPI docs without the token", async function () {
      const text = await (await fetch(`${api}/metrics`)).text();
      const output = promtoolProblems(text);
      expect(output, output).to.equal("");
      for (const name of [
        'newton_responses_total{target="gw",code="200"}',
        "newton_request_duration_seconds_bucket",
        "newton_time_to_first_byte_seconds_bucket",
        "newton_schedule_lag_seconds_bucket",
        "newton_plan_running 0",
      ]) {
        expect(text).to.include(name);
      }
      const docs = (await (await fetch(`${api}/docs/json`)).json()) as { paths: Record<string, unknown> };
      for (const path of ["/targets", "/targets/{id}", "/plan", "/summary"]) expect(docs.paths).to.have.property(path);
    });

    it("validates its configuration", function () {
      expect(() => loadNewtonConfig([], {})).to.throw(ConfigError, /EDGE_NEWTON_TOKEN is required/);
      expect(() => loadNewtonConfig([], { EDGE_NEWTON_TOKEN: "short" })).to.throw(ConfigError, /16 to 256 characters/);
    });
  });

  describe("CLI", function () {
    const run = (args: string[]) =>
      spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "offchain/newton/cli.ts", ...args], {
        cwd: ROOT,
        encoding: "utf8",
      });

    it("prints only the JSON summary of a one-shot run, and exits 2 with a message on bad input", async function () {
      const url = await server("fixed", { delay: 0 });
      const result = run(["run", "--url", `${url}/`, "--rate", "50", "--duration", "1", "--header", "X-Test: 1"]);
      expect(result.status, result.stderr).to.equal(0);
      const summary = JSON.parse(result.stdout);
      expect(result.stdout).to.equal(JSON.stringify(summary) + "\n");
      expect(summary).to.deep.include({ planned: 50, sent: 50, responses: 50, errors: 0 });
      for (const [args, message] of [
        [["run", "--rate", "5", "--duration", "1"], /--url must be an http\(s\) URL/],
        [["run", "--url", "http://[", "--rate", "5", "--duration", "1"], /not a valid URL/],
        [["run", "--url", url, "--rate", "0", "--duration", "1"], /--rate must be a positive number/],
        [["run", "--url", url, "--rate", "5"], /--duration is required/],
        [["run", "--url", url, "--rate", "5", "--duration", "1", "--header", "bad"], /is not "Name: value"/],
        [["run", "--url", url, "--rate", "5", "--duration", "1", "--method", "BREW"], /not an HTTP method/],
        [["serve"], /EDGE_NEWTON_TOKEN is required/],
        [["fly"], /usage: run/],
      ] as const) {
        const bad = run([...args]);
        expect(bad.status, bad.stderr).to.equal(2);
        expect(bad.stderr).to.match(message);
      }
    });
  });
});
