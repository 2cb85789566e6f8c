/**
 * GET /api/regions on the Console server (console/regionsApi.ts, regionSource.ts) against a real chain and a
 * stand-in stargate: the figures from the chain's admissions and posted scores and the catalogue's regions and
 * loads; one catalogue read for a flood of requests; and clear 502/503 answers, never a crash, when the stargate
 * is down, slow, wrong, oversized or malformed, when the RPC is down, or when no stargate was given.
 */
import { expect } from "chai";

import { main as consoleMain } from "../../console/cli";
import { loadConsoleConfig } from "../../console/config";
import { ConsoleServer, CONTENT_SECURITY_POLICY, type ConsoleOptions } from "../../console/server";
import type { RegionMap } from "../../console/regionsView";
import { type RpcProxy, startRpcProxy } from "../shared/rpc";
import {
  type Answer,
  type RegionsChain,
  type StandInStargate,
  json,
  regionsChain,
  standInStargate,
} from "./regionsFixture";

describe("Console: GET /api/regions", function () {
  this.timeout(60_000);
  let chain: RegionsChain;
  let stargate: StandInStargate;
  const servers: ConsoleServer[] = [];

  const consoleFor = async (options: Partial<ConsoleOptions> = {}) => {
    const server = await ConsoleServer.create({
      rpcUrl: chain.rpc.url,
      addressesFile: chain.bookFile,
      stargateUrl: stargate.url,
      logLevel: "silent",
      ...options,
    });
    servers.push(server);
    return server;
  };
  const get = async (server: ConsoleServer) => server.app.inject({ url: "/api/regions" });
  /** The answer of a fresh Console (nothing cached) while the stargate answers `answer`. */
  const refusal = async (answer: Answer, regions: ConsoleOptions["regions"] = {}) => {
    stargate.answer = answer;
    const response = await get(await consoleFor({ regions }));
    return { status: response.statusCode, body: response.json() as { code: string; error: string } };
  };

  before(async () => {
    chain = await regionsChain();
    stargate = await standInStargate(json(chain.catalogue));
  });
  after(async () => {
    for (const server of servers) await server.close();
    await stargate?.close();
    await chain?.rpc.close();
  });

  it("maps the admitted hosts and gateways by region: scores, APR at them, capacity used; best first", async () => {
    const response = await get(await consoleFor());
    expect(response.statusCode).to.equal(200);
    expect(response.headers["content-security-policy"]).to.equal(CONTENT_SECURITY_POLICY);
    const map = response.json() as RegionMap;
    expect(map.epoch).to.equal(String(chain.epoch));
    expect(map.regions.map((r) => r.key)).to.deep.equal(["DE/eu-central", "US/us-east", "undeclared"]);
    const [de, us, undeclared] = map.regions;
    // host-de-1 12,000 and host-de-2 9,000: average 10,500, so a new host earns 10% x 1.05.
    expect(de.host).to.deep.equal({
      admitted: 2,
      healthy: 1,
      scored: 2,
      averageScore: 10_500,
      aprBps: 1_050,
      load: { reporting: 2, inFlight: 4, capacity: 16, queueDepth: 1, usedBps: 2_500, maxP99Ms: 40 },
    });
    expect(de.gateway).to.include({ admitted: 1, scored: 1, averageScore: 10_000, aprBps: 1_500 });
    expect(de.gateway.load).to.include({ reporting: 0, usedBps: null });
    // host-unstaked is in the catalogue but the chain does not admit it.
    expect(us.host).to.include({ admitted: 1, scored: 1, averageScore: 8_000, aprBps: 800 });
    expect(us.gateway).to.include({ admitted: 1, averageScore: 14_000, aprBps: 2_100 });
    expect(undeclared).to.not.have.property("country");
    expect(undeclared.host).to.include({ admitted: 1, averageScore: 10_000, aprBps: 1_000 });
    expect(map).to.include({ regionCount: 3, truncated: false, catalogueAtMs: chain.catalogue.atMs });
    expect(map.totals.host).to.include({ admitted: 4, scored: 4, averageScore: 9_750 });
  });

  it("reads the stargate once for a flood of requests, then keeps the map for its time to live", async () => {
    const server = await consoleFor({ regions: { ttlMs: 60_000 } });
    const before = stargate.requests;
    const answers = await Promise.all(Array.from({ length: 25 }, () => get(server)));
    expect(answers.every((a) => a.statusCode === 200)).to.equal(true);
    expect(await get(server).then((a) => a.statusCode)).to.equal(200);
    expect(stargate.requests - before).to.equal(1);
    expect(server.regions!.counts).to.deep.equal({ catalogue: 1, chain: 1 });
  });

  it("answers 502 naming the reason when the stargate is down, failing, slow or oversized", async () => {
    const down = await standInStargate(json({}));
    await down.close();
    let response = await get(await consoleFor({ stargateUrl: down.url }));
    expect(response.statusCode).to.equal(502);
    expect(response.json()).to.include({ code: "CONSOLE_STARGATE_UNAVAILABLE" });
    expect(response.json().error).to.match(/^cannot read the stargate's catalogue \(http:\/\/127\.0\.0\.1:\d+\/…\): /);

    let r = await refusal(json({ error: "boom" }, 500));
    expect(r).to.deep.include({ status: 502 });
    expect(r.body.error).to.contain("answered 500");

    r = await refusal(() => {}, { timeoutMs: 300 }); // never answers
    expect(r.status).to.equal(502);
    expect(r.body.error).to.contain("no answer within 300 ms");

    const big = { ...chain.catalogue, padding: "x".repeat(5_000) };
    const bigText = JSON.stringify(big);
    r = await refusal(
      (_request, response) => void response.writeHead(200, { "content-length": bigText.length }).end(bigText),
      { maxBytes: 4_096 },
    );
    expect(r.status).to.equal(502);
    expect(r.body.error).to.match(/its answer is \d+ bytes, over the 4096 allowed/);
    r = await refusal(
      (_request, response) => {
        response.writeHead(200, { "content-type": "application/json" }); // chunked: no length announced
        response.write(bigText.slice(0, 3_000));
        response.end(bigText.slice(3_000));
      },
      { maxBytes: 4_096 },
    );
    expect(r.status).to.equal(502);
    expect(r.body.error).to.contain("over the 4096 bytes allowed");
  });

  it("answers 502 when the catalogue is not JSON or not a catalogue", async () => {
    let r = await refusal((_request, response) => void response.writeHead(200).end("<html>not json"));
    expect(r).to.deep.include({ status: 502 });
    expect(r.body).to.include({ code: "CONSOLE_STARGATE_UNAVAILABLE" });
    expect(r.body.error).to.contain("its answer is not JSON");

    const endpoints = chain.catalogue.endpoints as Array<Record<string, unknown>>;
    r = await refusal(json({ ...chain.catalogue, endpoints: [{ ...endpoints[0], device: "0x1234" }] }));
    expect(r.status).to.equal(502);
    expect(r.body.error).to.match(/is malformed: at \/endpoints\/0\/device/);
    r = await refusal(json({ ...chain.catalogue, endpoints: [{ ...endpoints[0], load: { inFlight: "many" } }] }));
    expect(r.body.error).to.match(/is malformed: at \/endpoints\/0\/load/);
    r = await refusal(json([1, 2, 3]));
    expect(r.body.error).to.contain("is malformed");
  });

  it("answers 502 when the chain cannot be read, and recovers when it can", async () => {
    let proxy: RpcProxy | undefined;
    try {
      proxy = await startRpcProxy(chain.rpc.port);
      stargate.answer = json(chain.catalogue);
      const server = await consoleFor({ rpcUrl: proxy.url, regions: { ttlMs: 0, failureTtlMs: 0 } });
      proxy.down();
      const response = await get(server);
      expect(response.statusCode).to.equal(502);
      expect(response.json()).to.include({ code: "CONSOLE_CHAIN_UNAVAILABLE" });
      expect(response.json().error).to.match(/^cannot read the chain through the Console's RPC: /);
      proxy.up();
      expect((await get(server)).statusCode).to.equal(200);
    } finally {
      await proxy?.close();
    }
  });

  it("answers 503 when the Console was started without a stargate URL", async () => {
    const response = await get(await consoleFor({ stargateUrl: undefined }));
    expect(response.statusCode).to.equal(503);
    expect(response.json()).to.deep.equal({
      statusCode: 503,
      code: "CONSOLE_REGIONS_NOT_CONFIGURED",
      error: "this Console was started without --stargate-url, so it has no map of regions",
    });
  });

  it("takes --stargate-url or EDGE_CONSOLE_STARGATE_URL, and refuses one that is not a URL (exit 2)", async () => {
    const base = ["--rpc", "http://127.0.0.1:8545", "--addresses", "book.json"];
    expect(loadConsoleConfig([...base, "--stargate-url", "http://127.0.0.1:7001"], {}).stargateUrl).to.equal(
      "http://127.0.0.1:7001",
    );
    expect(loadConsoleConfig(base, { EDGE_CONSOLE_STARGATE_URL: "https://sg.example" }).stargateUrl).to.equal(
      "https://sg.example",
    );
    expect(loadConsoleConfig(base, {}).stargateUrl).to.equal(undefined);
    const write = process.stderr.write.bind(process.stderr);
    const stderr: string[] = [];
    process.stderr.write = ((chunk: string) => stderr.push(String(chunk)) > 0) as typeof process.stderr.write;
    try {
      expect(await consoleMain([...base, "--stargate-url", "127.0.0.1:7001"], {})).to.equal(2);
    } finally {
      process.stderr.write = write;
    }
    expect(stderr.join("")).to.contain("--stargate-url");
  });
});
