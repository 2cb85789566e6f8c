/**
 * Newton through DNS (D58): DNS probe targets (rcode and latency, in the summary and the metrics) and HTTP targets
 * resolved through named DNS servers (answers kept for their TTL, addresses taken in turn, an address the answer
 * drops gets no new request, failed lookups counted as errors of kind `dns`). Against a real authoritative DNS
 * server over UDP in the test (dns-packet) and real HTTP servers on two loopback addresses: node:dns is not mocked.
 */
import { expect } from "chai";
import { type Socket, createSocket } from "node:dgram";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";

import * as dnsPacket from "dns-packet";

import { loadNewtonConfig } from "../../../offchain/newton/config";
import { type Target, LoadRun } from "../../../offchain/newton/engine";
import { NewtonMetrics } from "../../../offchain/newton/metrics";
import { NewtonService } from "../../../offchain/newton/service";
import { promtoolProblems } from "../../shared/promtool";

const TOKEN = "newton-dns-test-token-0001";

/** An authoritative server for `site.test`: A records from `answers` (TTL `ttl`), NXDOMAIN below, REFUSED outside. */
class ZoneServer {
  answers: string[] = [];
  ttl = 1;
  servfail = false;
  queries = 0;
  private socket!: Socket;
  port = 0;

  async start(): Promise<this> {
    this.socket = createSocket("udp4");
    this.socket.on("message", (message, peer) => {
      const query = dnsPacket.decode(message);
      const question = query.questions![0];
      this.queries += 1;
      const name = question.name.toLowerCase();
      const inZone = name === "site.test" || name.endsWith(".site.test");
      const rcode = this.servfail ? "SERVFAIL" : !inZone ? "REFUSED" : name === "site.test" ? "NOERROR" : "NXDOMAIN";
      const answers =
        rcode === "NOERROR" && question.type === "A"
          ? this.answers.map((data) => ({ name: question.name, type: "A" as const, ttl: this.ttl, data }))
          : [];
      const reply = dnsPacket.encode({
        type: "response",
        id: query.id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | (rcodeNumber[rcode] ?? 0),
        questions: [question],
        answers,
      });
      this.socket.send(reply, peer.port, peer.address);
    });
    await new Promise<void>((resolve) => this.socket.bind(0, "127.0.0.1", resolve));
    this.port = (this.socket.address() as AddressInfo).port;
    return this;
  }

  close(): void {
    this.socket.close();
  }
}
const rcodeNumber: Record<string, number> = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 };

/** An HTTP server on `host` that notes when each request came and with which Host header. */
async function httpServer(
  host: string,
  port = 0,
): Promise<{ server: Server; port: number; seen: Array<[number, string]> }> {
  const seen: Array<[number, string]> = [];
  const server = createServer((request, response) => {
    seen.push([Date.now(), request.headers.host ?? ""]);
    response.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

describe("newton through DNS (D58)", function () {
  this.timeout(60_000);
  let zone: ZoneServer;
  let silent: Socket;
  let silentPort: number;
  const servers: Server[] = [];

  beforeEach(async function () {
    zone = await new ZoneServer().start();
    silent = createSocket("udp4"); // takes queries, never answers
    await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
    silentPort = (silent.address() as AddressInfo).port;
  });
  afterEach(async function () {
    zone.close();
    silent.close();
    for (const server of servers.splice(0)) await new Promise((r) => server.close(r));
  });

  it("D58: DNS targets are probed at the plan's rate; rcodes and latency in the summary and the metrics", async function () {
    zone.answers = ["127.0.0.1"];
    const server = `127.0.0.1:${zone.port}`;
    const targets: Target[] = [
      { kind: "dns", id: "ok", server, name: "site.test", type: "A" },
      { kind: "dns", id: "missing", server, name: "nope.site.test", type: "A" },
      { kind: "dns", id: "outside", server, name: "example.org", type: "AAAA" },
      { kind: "dns", id: "silent", server: `127.0.0.1:${silentPort}`, name: "site.test", type: "A" },
    ];
    const metrics = new NewtonMetrics();
    const run = new LoadRun(targets, { rate: 20, durationMs: 1_000, maxConcurrency: 50, timeoutMs: 300 }, metrics);
    const summary = Object.fromEntries((await run.start()).map((s) => [s.target, s]));
    for (const [id, rcode] of [
      ["ok", "NOERROR"],
      ["missing", "NXDOMAIN"],
      ["outside", "REFUSED"],
    ]) {
      const s = summary[id];
      expect(s.sent, id).to.equal(20);
      expect(s.rcodes, id).to.deep.equal({ [rcode]: 20 });
      expect([s.responses, s.errors], id).to.deep.equal([20, 0]);
      expect(s.latencyMs.p50, id).to.be.greaterThan(0).and.below(200);
    }
    expect(summary.silent).to.deep.include({ responses: 0, errors: 20, errorsByKind: { timeout: 20 }, rcodes: {} });
    expect(zone.queries).to.equal(60);
    const text = await metrics.registry.metrics();
    expect(text).to.include('newton_dns_probes_total{target="ok",rcode="NOERROR"} 20');
    expect(text).to.include('newton_dns_probes_total{target="outside",rcode="REFUSED"} 20');
    expect(text).to.include('newton_dns_probe_seconds_count{target="missing"} 20');
    expect(text).to.include('newton_errors_total{target="silent",kind="timeout"} 20');
    expect(promtoolProblems(text)).to.equal("");
  });

  it("D58: an HTTP target with resolve takes DNS's addresses in turn, keeps answers for their TTL, and leaves an address DNS drops", async function () {
    const a = await httpServer("127.0.0.1");
    const b = await httpServer("127.0.0.2", a.port); // the same front door port on another address, as gateways
    servers.push(a.server, b.server);
    zone.answers = ["127.0.0.1", "127.0.0.2"];
    zone.ttl = 1;
    const url = `http://site.test:${a.port}/`;
    const target: Target = {
      id: "site",
      url,
      method: "GET",
      headers: {},
      resolve: { servers: [`127.0.0.1:${zone.port}`] },
    };
    const run = new LoadRun([target], { rate: 50, durationMs: 3_000, maxConcurrency: 50, timeoutMs: 2_000 });
    const done = run.start();
    await new Promise((r) => setTimeout(r, 1_000));
    const dropped = Date.now();
    zone.answers = ["127.0.0.2"]; // 127.0.0.1 drained out of DNS
    const [summary] = await done;
    expect(summary).to.deep.include({ sent: 150, responses: 150, errors: 0, statuses: { 200: 150 } });
    expect(a.seen.length + b.seen.length).to.equal(150);
    // In turn while both were in the answer.
    const early = (s: typeof a) => s.seen.filter(([t]) => t < dropped).length;
    expect(Math.abs(early(a) - early(b))).to.be.at.most(3);
    // Nothing new to the dropped address once its answer expired (TTL 1 s; 500 ms for a loaded machine).
    expect(a.seen.filter(([t]) => t > dropped + 1_500)).to.deep.equal([]);
    expect(b.seen.filter(([t]) => t > dropped + 1_500).length).to.be.greaterThan(15); // ~25 in the last 500 ms
    // Every request names the site, not the address.
    expect(new Set([...a.seen, ...b.seen].map(([, host]) => host))).to.deep.equal(new Set([`site.test:${a.port}`]));
    // Answers kept for their TTL: about one lookup a second, not one per request.
    expect(zone.queries).to.be.within(2, 8);
  });

  it("D58: a failed lookup is an error of kind dns; the API takes DNS targets and refuses a server that is not address:port", async function () {
    zone.servfail = true;
    const service = new NewtonService(
      loadNewtonConfig(["--port", "0", "--log-level", "silent"], { EDGE_NEWTON_TOKEN: TOKEN }),
    );
    const base = await service.start();
    try {
      const call = async (method: string, path: string, body?: unknown) => {
        const response = await fetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
          body: body ? JSON.stringify(body) : undefined,
        });
        return { status: response.status, json: (await response.json()) as Record<string, any> };
      };
      const resolveVia = { servers: [`127.0.0.1:${zone.port}`] };
      const http = await call("POST", "/targets", { id: "site", url: "http://site.test:9/", resolve: resolveVia });
      expect(http.status, JSON.stringify(http.json)).to.equal(201);
      expect(http.json.target).to.deep.include({ method: "GET", headers: {}, resolve: resolveVia });
      const probe = { kind: "dns", server: `127.0.0.1:${zone.port}`, name: "site.test", type: "A" };
      const dns = await call("POST", "/targets", { id: "probe", ...probe });
      expect([dns.status, dns.json.target]).to.deep.equal([201, { id: "probe", ...probe }]);
      for (const server of ["localhost:53", "127.0.0.1", "127.0.0.1:99999"]) {
        const bad = await call("POST", "/targets", { ...probe, server });
        expect([bad.status, bad.json.code], server).to.deep.equal([400, "NEWTON_BAD_DNS_SERVER"]);
      }
      const badResolve = await call("PUT", "/targets/site", {
        url: "http://site.test:9/",
        resolve: { servers: ["localhost:53"] },
      });
      expect(badResolve.json.code).to.equal("NEWTON_BAD_DNS_SERVER");
      const wrongType = await call("POST", "/targets", { ...probe, type: "ANY" });
      expect([wrongType.status, wrongType.json.code]).to.deep.equal([400, "FST_ERR_VALIDATION"]);

      expect((await call("POST", "/plan", { rate: 10, durationSeconds: 1, timeoutMs: 1_000 })).status).to.equal(202);
      await new Promise((r) => setTimeout(r, 2_000));
      const summary = Object.fromEntries(
        ((await call("GET", "/summary")).json.targets as Array<{ target: string }>).map((s) => [s.target, s]),
      );
      expect(summary.site).to.deep.include({ sent: 10, responses: 0, errors: 10, errorsByKind: { dns: 10 } });
      expect(summary.probe).to.deep.include({ sent: 10, responses: 10, rcodes: { SERVFAIL: 10 } });
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).to.include('newton_errors_total{target="site",kind="dns"} 10');
      expect(metrics).to.include('newton_dns_probes_total{target="probe",rcode="SERVFAIL"} 10');
    } finally {
      await service.close();
    }
  });
});
