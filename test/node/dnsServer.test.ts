/**
 * Edge DNS server (issue 18, D57) on real sockets: createDns with a stargate-like context from real parts (a
 * prom-client registry, a Fastify logger), queried over UDP and TCP.
 */
import { createSocket } from "node:dgram";
import { type IncomingMessage, type Server, createServer } from "node:http";
import { type AddressInfo, connect } from "node:net";

import { expect } from "chai";
import type { Address } from "viem";

import type { NetworkConfig } from "../../offchain/common/protocol";
import type { Catalogue } from "../../node/context";
import { type DnsOptions, type DnsServer, createDns } from "../../node/roles/stargate/dns";
import { promtoolProblems } from "../shared/promtool";
import {
  OWNER,
  SITE,
  catalogue,
  datas,
  decode,
  dnsConfig,
  dnsContext,
  edns,
  gateway,
  networkConfig,
  query,
  tcp,
  udp,
  udpRaw,
} from "./dnsFixture";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("node/dns server (issue 18, D57)", function () {
  this.timeout(30_000);
  const servers: DnsServer[] = [];
  let config: NetworkConfig | undefined;
  let cat: Catalogue;
  let bills: [Address, bigint][];
  let ctx: ReturnType<typeof dnsContext>;

  async function start(options: DnsOptions = {}, over = {}): Promise<number> {
    ctx = dnsContext();
    const server = createDns(ctx, dnsConfig(over), {
      config: () => config,
      catalogue: () => cat,
      bill: (owner, n) => bills.push([owner, n]),
    }, options)!; // prettier-ignore
    servers.push(server);
    await server.start();
    return server.address()!.port;
  }
  const metric = async (name: string) => (await ctx.metrics.registry.getSingleMetricAsString(name)).split("\n");
  const value = async (name: string, labels: string) =>
    Number(
      (await metric(name))
        .find((l) => !l.startsWith("#") && l.includes(labels))
        ?.split(" ")
        .pop() ?? NaN,
    );

  beforeEach(() => {
    config = networkConfig(7);
    cat = catalogue();
    bills = [];
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });

  it("returns undefined without --dns-port", () => {
    expect(createDns(dnsContext(), dnsConfig({ dnsPort: undefined }), {} as never)).to.equal(undefined);
  });

  it("answers over UDP and TCP (several queries on one connection); a truncated UDP answer comes whole over TCP", async () => {
    const port = await start();
    const www = await udp(port, query("www.example.com", "A"));
    expect(www.rcode).to.equal("NOERROR");
    expect(datas(www.answers)).to.have.length(2);
    const tc = await udp(port, query("long.example.com", "TXT"));
    expect(tc.flag_tc).to.equal(true);
    const [full, mx, site] = await tcp(port, [
      query("long.example.com", "TXT"),
      query("example.com", "MX"),
      query(SITE, "A"),
    ]);
    expect(full.flag_tc).to.equal(false);
    expect((full.answers![0] as { data: Buffer[] }).data.map((b) => b.toString()).join("")).to.have.length(1500);
    expect(mx.answers![0].type).to.equal("MX");
    expect(datas(site.answers)).to.have.length(2);
    const big = await udp(port, query("many.example.com", "A", edns(1232)));
    expect(big.flag_tc).to.equal(false);
    expect(big.answers).to.have.length(40);
    expect(await value("edge_dns_truncated_total", "edge_dns_truncated_total")).to.equal(1);
  });

  it("a drained or unhealthy gateway leaves the site's answers as soon as the configuration or catalogue changes", async () => {
    const port = await start();
    const addresses = async () =>
      datas((await udp(port, query(SITE, "A"))).answers)
        .map((d) => d.split('"')[1])
        .sort();
    expect(await addresses()).to.deep.equal(["127.0.0.11", "127.0.0.12"]);
    config = networkConfig(8, { draining: [gateway(2).device.toLowerCase() as Address] });
    expect(await addresses()).to.deep.equal(["127.0.0.11"]);
    cat = catalogue([gateway(1, false), gateway(2), gateway(3)]);
    expect(await addresses()).to.deep.equal(["127.0.0.13"]);
    // Rotation: two queries in a row lead with different gateways.
    cat = catalogue([gateway(1), gateway(2), gateway(3)]);
    config = networkConfig(9);
    const firsts = new Set<string>();
    for (let i = 0; i < 3; i++) firsts.add(datas((await udp(port, query(SITE, "A"))).answers)[0]);
    expect(firsts.size).to.equal(3);
    // Before a configuration: SERVFAIL (not ours to answer yet).
    config = undefined;
    expect((await udp(port, query(SITE, "A"))).rcode).to.equal("SERVFAIL");
  });

  it("a UDP flood from one client is bounded by its bucket and counted; another client is still answered", async () => {
    const port = await start({ limits: { perIpPerSecond: 20, perIpBurst: 20 } });
    const socket = createSocket("udp4");
    let answered = 0;
    socket.on("message", () => answered++);
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    for (let i = 0; i < 300; i++) socket.send(query("www.example.com", "A"), port, "127.0.0.1");
    await sleep(300);
    socket.close();
    expect(answered).to.be.within(20, 30);
    // The kernel may drop some of a burst before the server reads them: what it read past the bucket is counted.
    const dropped = await value("edge_dns_dropped_total", 'reason="rate"');
    expect(dropped).to.be.within(150, 280);
    expect(dropped + answered).to.be.at.most(300);
    const other = createSocket("udp4");
    await new Promise<void>((resolve) => other.bind(0, "127.0.0.2", resolve));
    const reply = new Promise<Buffer>((resolve) => other.once("message", resolve));
    other.send(query("www.example.com", "A"), port, "127.0.0.1");
    expect(decode(await reply).rcode).to.equal("NOERROR");
    other.close();
  });

  it("TCP: connections past the per-client cap are closed, idle ones time out, garbage and split frames are survived", async () => {
    const port = await start({ limits: { tcpPerIp: 2, tcpIdleMs: 300 } });
    const open = () =>
      new Promise<ReturnType<typeof connect>>((resolve) => {
        const s = connect(port, "127.0.0.1", () => resolve(s));
        s.on("error", () => {});
      });
    const closed = (s: ReturnType<typeof connect>) => new Promise<void>((resolve) => s.once("close", () => resolve()));
    const [a, b] = [await open(), await open()];
    const c = await open();
    await closed(c);
    expect(await value("edge_dns_dropped_total", 'reason="tcp_cap"')).to.equal(1);
    const started = Date.now();
    await Promise.all([closed(a), closed(b)]);
    expect(Date.now() - started).to.be.below(2_000);
    // A frame split across writes, then garbage in a frame, then a good query: two answers, the server lives.
    const s = await open();
    const msg = query("www.example.com", "A");
    const frame = Buffer.concat([Buffer.from([0, msg.length]), msg]);
    const answers: Buffer[] = [];
    s.on("data", (d) => answers.push(d));
    s.write(frame.subarray(0, 1));
    await sleep(20);
    s.write(frame.subarray(1, 9));
    await sleep(20);
    s.write(Buffer.concat([frame.subarray(9), Buffer.from([0, 3, 1, 2, 3]), frame]));
    await sleep(100);
    s.destroy();
    expect(Buffer.concat(answers).length).to.be.greaterThan(2 * msg.length);
    expect((await udp(port, query("www.example.com", "A"))).rcode).to.equal("NOERROR");
  });

  it("malformed UDP packets never stop the server: dropped or FORMERR, counted", async () => {
    const port = await start({ limits: { rrlPerSecond: 1e9, rrlBurst: 1e9 } }); // 200 FORMERRs: past RRL (R18-6)
    for (let i = 0; i < 200; i++) {
      const bytes = Buffer.from(Array.from({ length: i % 40 }, () => Math.floor(Math.random() * 256)));
      bytes[2] = (bytes[2] ?? 0) & 0x7f; // a query, so the larger ones get an answer
      await udpRaw(port, bytes, 5);
    }
    const formerr = Buffer.concat([query("x", "A").subarray(0, 12), Buffer.from([9, 9, 9])]);
    expect(decode((await udpRaw(port, formerr))!).rcode).to.equal("FORMERR");
    expect((await udp(port, query("www.example.com", "A"))).rcode).to.equal("NOERROR");
    expect(await value("edge_dns_queries_total", 'kind="malformed"')).to.be.greaterThan(0);
    expect(await value("edge_dns_dropped_total", 'reason="unreadable"')).to.be.greaterThan(0);
  });

  it("bills zones' answered queries per owner at most once per interval; site, refused and dropped ones are not billed", async () => {
    const port = await start({ billEveryMs: 300 });
    const started = Date.now();
    for (let i = 0; i < 20; i++) await udp(port, query("www.example.com", "A"));
    for (let i = 0; i < 5; i++) await udp(port, query("nothere.example.com", "A"));
    await udp(port, query(SITE, "A"));
    await udp(port, query("example.org", "A"));
    await sleep(700);
    const calls = bills.length;
    expect(calls).to.be.at.most(Math.ceil((Date.now() - started) / 300) + 1);
    expect(bills.every(([owner]) => owner === OWNER.toLowerCase())).to.equal(true);
    expect(bills.reduce((sum, [, n]) => sum + n, 0n)).to.equal(25n);
    expect(await value("edge_dns_queries_total", 'rcode="REFUSED",kind="refused"')).to.equal(1);
    expect(await value("edge_dns_queries_total", 'rcode="NOERROR",kind="site"')).to.equal(1);
  });

  it("its metrics pass promtool and its status says where it listens and what it serves", async () => {
    const port = await start();
    await udp(port, query("www.example.com", "A"));
    expect(promtoolProblems(await ctx.metrics.registry.metrics())).to.equal("");
    const status = servers[0].status();
    expect(status).to.deep.include({ address: "127.0.0.1", port, inGroup: true, queries: 1, zones: 1, sites: 2 });
    expect(await value("edge_dns_in_group", "edge_dns_in_group")).to.equal(1);
    expect(await value("edge_dns_zones", 'state="served"')).to.equal(1);
  });

  describe("serving group", () => {
    let announcer: Server;
    let calls: { path: string; body: Record<string, unknown> }[];
    let up: boolean;
    beforeEach(async () => {
      calls = [];
      up = false;
      announcer = createServer((req: IncomingMessage, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
          if (!up) return void res.writeHead(503).end();
          calls.push({ path: req.url!, body: JSON.parse(body) });
          res.writeHead(200, { "content-type": "application/json" }).end('{"members":[]}');
        });
      });
      await new Promise<void>((resolve) => announcer.listen(0, "127.0.0.1", resolve));
    });
    afterEach(() => announcer.close());

    it("announces once listening and configured (retrying until the announcer answers); leave withdraws but keeps answering; join announces again", async () => {
      const url = `http://127.0.0.1:${(announcer.address() as AddressInfo).port}`;
      config = undefined;
      const port = await start({ announceRetryMs: 100 }, { dnsAnnounce: url });
      await sleep(250);
      expect(calls).to.deep.equal([]); // no configuration yet
      config = networkConfig(7);
      await sleep(250);
      expect(calls).to.deep.equal([]); // the announcer is down
      expect(servers[0].status().inGroup).to.equal(false);
      up = true;
      for (let i = 0; i < 100 && calls.length === 0; i++) await sleep(50);
      const member = ctx.signer.account.address.toLowerCase();
      expect(calls.map((c) => c.path)).to.deep.equal(["/announce"]);
      expect(calls[0].body).to.include({ action: "announce", member, address: "127.0.0.1", port }); // signed (R18-9)
      expect(servers[0].status().inGroup).to.equal(true);
      await servers[0].leave();
      expect(calls[1].path).to.equal("/withdraw");
      expect(calls[1].body).to.include({ action: "withdraw", member });
      expect(servers[0].status().inGroup).to.equal(false);
      expect(await value("edge_dns_in_group", "edge_dns_in_group")).to.equal(0);
      expect((await udp(port, query("www.example.com", "A"))).rcode).to.equal("NOERROR");
      await sleep(250);
      expect(calls).to.have.length(2); // left: no re-announcement
      await servers[0].join();
      expect(calls[2].path).to.equal("/announce");
      expect(servers[0].status().inGroup).to.equal(true);
      up = false;
      let failed: Error | undefined;
      await servers[0].leave().catch((e: Error) => (failed = e));
      expect(failed?.message).to.match(/the route announcer did not take the withdrawal/);
    });

    it("a (re)started stargate announces only once its catalogue names a serving gateway for its sites (or 3 health intervals passed)", async () => {
      up = true;
      const url = `http://127.0.0.1:${(announcer.address() as AddressInfo).port}`;
      cat = catalogue([gateway(1, false)]); // checks not done yet: no healthy gateway
      await start({ announceRetryMs: 50 }, { dnsAnnounce: url, healthIntervalMs: 400 });
      await sleep(300);
      expect(calls, "not before a serving gateway").to.deep.equal([]);
      cat = catalogue([gateway(1)]);
      for (let i = 0; i < 100 && calls.length === 0; i++) await sleep(20);
      expect(calls.map((c) => c.path)).to.deep.equal(["/announce"]);
      // With no gateway at all, it joins after 3 health intervals (1.2 s here) so that customers' zones are answered.
      calls.length = 0;
      cat = catalogue([]);
      await start({ announceRetryMs: 50 }, { dnsAnnounce: url, healthIntervalMs: 400 });
      await sleep(600);
      expect(calls).to.deep.equal([]);
      for (let i = 0; i < 100 && calls.length === 0; i++) await sleep(20);
      expect(calls.map((c) => c.path)).to.deep.equal(["/announce"]);
    });
  });
});
