/**
 * Edge DNS under abuse (issue 18 review, D61): TCP backpressure and caps (R18-2), client networks, message
 * deadlines and eviction (R18-5), minimal ANY, response rate limiting and the billed rate per zone (R18-6), on
 * real sockets.
 */
import { createSocket } from "node:dgram";
import { type Socket, connect } from "node:net";

import { expect } from "chai";
import type { Address } from "viem";

import type { NetworkConfig } from "../../offchain/common/protocol";
import type { Catalogue } from "../../node/context";
import { type DnsOptions, type DnsServer, createDns } from "../../node/roles/stargate/dns";
import { clientKey } from "../../node/roles/stargate/dnsLimits";
import { OWNER, catalogue, decode, dnsConfig, dnsContext, edns, networkConfig, query, udp } from "./dnsFixture";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const LIFTED = { perIpPerSecond: 1e9, perIpBurst: 1e9, rrlPerSecond: 1e9, rrlBurst: 1e9 };

const framed = (msg: Buffer) => {
  const frame = Buffer.alloc(2 + msg.length);
  frame.writeUInt16BE(msg.length, 0);
  msg.copy(frame, 2);
  return frame;
};

const open = (port: number) =>
  new Promise<Socket>((resolve) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.on("error", () => {});
  });
const closed = (s: Socket) =>
  new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once("close", () => resolve())));

/** Counts length-prefixed answers arriving on `s`. */
function counter(s: Socket): { answers: () => number; last: () => Buffer | undefined } {
  let pending = Buffer.alloc(0);
  let n = 0;
  let last: Buffer | undefined;
  s.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    let at = 0;
    while (pending.length - at >= 2 && pending.length - at - 2 >= pending.readUInt16BE(at)) {
      last = pending.subarray(at + 2, at + 2 + pending.readUInt16BE(at));
      at += 2 + pending.readUInt16BE(at);
      n++;
    }
    pending = pending.subarray(at);
  });
  return { answers: () => n, last: () => last };
}

/** Sends one datagram from `from` (a loopback address) and collects what comes back within `ms`. */
async function burst(port: number, from: string, msgs: Buffer[], ms = 300): Promise<Buffer[]> {
  const socket = createSocket("udp4");
  const got: Buffer[] = [];
  socket.on("message", (m) => got.push(m));
  await new Promise<void>((resolve) => socket.bind(0, from, resolve));
  for (const msg of msgs) socket.send(msg, port, "127.0.0.1");
  await sleep(ms);
  socket.close();
  return got;
}

describe("node/dns under abuse (issue 18 review, D61)", function () {
  this.timeout(60_000);
  const servers: DnsServer[] = [];
  let config: NetworkConfig | undefined;
  let cat: Catalogue;
  let bills: [Address, bigint][];
  let ctx: ReturnType<typeof dnsContext>;

  async function start(options: DnsOptions = {}): Promise<number> {
    ctx = dnsContext();
    const server = createDns(ctx, dnsConfig(), {
      config: () => config,
      catalogue: () => cat,
      bill: (owner, n) => bills.push([owner, n]),
    }, options)!; // prettier-ignore
    servers.push(server);
    await server.start();
    return server.address()!.port;
  }
  const value = async (name: string, labels = "") =>
    Number(
      (await ctx.metrics.registry.getSingleMetricAsString(name))
        .split("\n")
        .find((l) => !l.startsWith("#") && l.includes(labels))
        ?.split(" ")
        .pop() ?? NaN,
    );
  const status = () => servers[0].status() as { tcpUnsentBytes: number; tcpConnections: number };

  beforeEach(() => {
    config = networkConfig(7);
    cat = catalogue();
    bills = [];
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });

  it("R18-2: a client not reading its TCP answers holds at most the caps unsent; the rest waits and is answered in full once it reads", async () => {
    const limits = { ...LIFTED, tcpPendingBytes: 64 * 1024, tcpInFlight: 8, tcpUnsentTotal: 96 * 1024 };
    const port = await start({ limits });
    const n = 8_000; // 1.5 KB answers: 12 MB if all were answered at once
    const frames = Buffer.concat(Array.from({ length: n }, () => framed(query("long.example.com", "TXT"))));
    const [a, b] = [await open(port), await open(port)];
    const [ca, cb] = [counter(a), counter(b)];
    a.pause();
    b.pause();
    a.write(frames);
    b.write(frames);
    let most = 0;
    for (let i = 0; i < 20; i++, await sleep(50)) most = Math.max(most, status().tcpUnsentBytes);
    // Per connection 64 KiB (plus the answer that crossed it), and both together under the global 96 KiB.
    expect(most).to.be.at.most(96 * 1024 + 2 * 1600);
    expect(most).to.be.greaterThan(0);
    // Another client is still answered meanwhile.
    expect((await udp(port, query("www.example.com", "A"))).rcode).to.equal("NOERROR");
    a.resume();
    b.resume();
    for (let i = 0; i < 400 && (ca.answers() < n || cb.answers() < n); i++) await sleep(50);
    expect([ca.answers(), cb.answers()]).to.deep.equal([n, n]);
    expect(decode(ca.last()!).answers?.[0].type).to.equal("TXT");
    expect(status().tcpUnsentBytes).to.equal(0);
    a.destroy();
    b.destroy();
  });

  it("R18-5: limits are keyed by the client's /24 (IPv4) or /56 (IPv6)", async () => {
    expect(clientKey("192.0.2.7")).to.equal("192.0.2.0/24");
    expect(clientKey("::ffff:192.0.2.9")).to.equal("192.0.2.0/24");
    expect(clientKey("2001:db8:0:1200::1")).to.equal(clientKey("2001:db8::12ff:1:2:3:4"));
    expect(clientKey("2001:db8:0:1200::1")).to.equal("2001:db8:0:1200::/56");
    expect(clientKey("2001:db8:0:1300::1")).to.not.equal(clientKey("2001:db8:0:1200::1"));
    const port = await start({ limits: { perIpPerSecond: 1, perIpBurst: 5, tcpPerIp: 1 } });
    const q = query("www.example.com", "A");
    expect(await burst(port, "127.0.0.1", Array(5).fill(q), 100)).to.have.length(5);
    expect(await burst(port, "127.0.0.2", [q], 200)).to.have.length(0); // the same /24: its budget is spent
    expect(await burst(port, "127.0.1.2", [q], 200)).to.have.length(1); // another /24
    // TCP: one connection per /24, whatever the address in it.
    const first = await open(port);
    const second = connect({ port, host: "127.0.0.1", localAddress: "127.0.0.3" });
    second.on("error", () => {});
    await closed(second);
    expect(first.destroyed).to.equal(false);
    first.destroy();
  });

  it("R18-5: a TCP message must be whole within the deadline (trickled bytes do not extend it); at the cap the oldest idle connection makes room", async () => {
    const port = await start({ limits: { ...LIFTED, tcpMessageMs: 300, tcpIdleMs: 5_000, tcpConnections: 2 } });
    const slow = await open(port);
    const frame = framed(query("www.example.com", "A"));
    const started = Date.now();
    let sent = 0;
    const trickle = setInterval(() => slow.write(frame.subarray(sent, ++sent)), 100);
    await closed(slow);
    clearInterval(trickle);
    expect(Date.now() - started).to.be.below(1_500);
    expect(await value("edge_dns_dropped_total", 'reason="tcp_deadline"')).to.equal(1);

    const oldest = await open(port);
    await sleep(20);
    const busy = await open(port);
    busy.write(frame.subarray(0, 1)); // a message half sent: not idle
    await sleep(50);
    const fresh = await open(port);
    const answered = counter(fresh);
    fresh.write(frame);
    await closed(oldest);
    for (let i = 0; i < 40 && answered.answers() === 0; i++) await sleep(25);
    expect(answered.answers()).to.equal(1);
    expect(busy.destroyed).to.equal(false);
    expect(await value("edge_dns_dropped_total", 'reason="tcp_evicted"')).to.equal(1);
    // No idle connection left (busy is mid-message, fresh has just asked and is idle again: it goes next).
    busy.write(frame.subarray(1, 2)); // still mid-message
    const next = await open(port);
    await closed(fresh);
    expect(busy.destroyed).to.equal(false);
    next.destroy();
    busy.destroy();
  });

  it("R18-5: a frame of 65,535 bytes split in 1 KiB writes is read into one buffer and answered", async () => {
    const port = await start({ limits: LIFTED });
    const s = await open(port);
    const answered = counter(s);
    const big = Buffer.alloc(65_535, 7);
    query("www.example.com", "A").copy(big, 0, 0, 12); // a header: FORMERR for the rest
    const frame = framed(big);
    for (let at = 0; at < frame.length; at += 1024) s.write(frame.subarray(at, at + 1024));
    for (let i = 0; i < 40 && answered.answers() === 0; i++) await sleep(25);
    expect(answered.answers()).to.equal(1);
    expect(decode(answered.last()!).rcode).to.equal("FORMERR");
    s.destroy();
  });

  it("R18-6: ANY is answered with one record set (RFC 8482)", async () => {
    const port = await start();
    const apex = await udp(port, query("example.com", "ANY" as never));
    expect(apex.answers?.map((a) => a.type)).to.deep.equal(["SOA"]);
    const www = await udp(port, query("www.example.com", "ANY" as never));
    expect(new Set(www.answers?.map((a) => a.type)).size).to.equal(1);
    const many = await udp(port, query("many.example.com", "ANY" as never, edns(1232)));
    expect(many.answers).to.have.length(40); // one set: the name's A records
    expect((many.additionals ?? []).filter((a) => a.type !== "OPT")).to.have.length(0);
  });

  it("R18-6: identical UDP answers to one /24 past the rate are dropped, every 2nd sent truncated; other questions and networks are answered", async () => {
    const port = await start({ limits: { perIpPerSecond: 1e9, perIpBurst: 1e9, rrlPerSecond: 1, rrlBurst: 10 } });
    const got = await burst(port, "127.0.0.1", Array(60).fill(query("www.example.com", "A")));
    const full = got.filter((m) => decode(m).answers?.length);
    const slipped = got.filter((m) => decode(m).flag_tc);
    expect(full).to.have.length(10);
    expect(slipped).to.have.length(25);
    expect(decode(slipped[0]).questions?.[0].name).to.equal("www.example.com");
    expect(await value("edge_dns_rrl_slipped_total")).to.equal(25);
    expect(await value("edge_dns_dropped_total", 'reason="rrl"')).to.equal(25);
    // Random names of one zone (NXDOMAIN) share one budget.
    const random = Array.from({ length: 30 }, (_, i) => query(`r${i}x.example.com`, "A"));
    const nx = await burst(port, "127.0.0.1", random);
    expect(nx.filter((m) => decode(m).rcode === "NXDOMAIN" && !decode(m).flag_tc)).to.have.length(10);
    expect(await burst(port, "127.0.0.1", [query("example.com", "MX")])).to.have.length(1);
    expect(await burst(port, "127.0.1.1", [query("www.example.com", "A")])).to.have.length(1);
    // Over TCP there is no spoofing: no RRL.
    const s = await open(port);
    const answered = counter(s);
    for (let i = 0; i < 20; i++) s.write(framed(query("www.example.com", "A")));
    for (let i = 0; i < 40 && answered.answers() < 20; i++) await sleep(25);
    expect(answered.answers()).to.equal(20);
    s.destroy();
  });

  it("R18-6: a zone's queries past its billed rate are answered but not billed, and counted", async () => {
    const port = await start({ limits: { ...LIFTED, billedPerZonePerSecond: 10 }, billEveryMs: 100 });
    const got = await burst(
      port,
      "127.0.0.1",
      Array.from({ length: 40 }, () => query("www.example.com", "A")),
      400,
    );
    expect(got).to.have.length(40);
    const billed = bills.reduce((sum, [, n]) => sum + n, 0n);
    expect(Number(billed)).to.be.within(10, 16);
    expect(bills.every(([owner]) => owner === OWNER.toLowerCase())).to.equal(true);
    expect(await value("edge_dns_unbilled_total")).to.equal(40 - Number(billed));
  });
});
