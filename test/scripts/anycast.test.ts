/**
 * The loopback anycast router (scripts/lib/anycast.ts, D60) with real sockets: small DNS responders (dns-packet over
 * UDP and TCP) announce themselves over its HTTP API, and queries sent to the anycast address reach one of them.
 */
import { expect } from "chai";
import { type Socket as UdpSocket, createSocket } from "node:dgram";
import { type Server as TcpServer, type Socket, connect, createServer } from "node:net";
import * as dnsPacket from "dns-packet";

import { type AnycastRouter, startAnycastRouter } from "../../scripts/lib/anycast";

interface Responder {
  member: string;
  port: number;
  /** Delays the next answers by this many milliseconds. */
  delayMs: number;
  udp: UdpSocket;
  tcp: TcpServer;
}

/** A DNS responder on 127.0.0.1 that answers every A query with 10.0.0.<n> (UDP and TCP, one port). */
async function responder(n: number): Promise<Responder> {
  const udp = createSocket("udp4");
  await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
  const port = udp.address().port;
  const self: Responder = { member: `0x${String(n).repeat(40)}`, port, delayMs: 0, udp, tcp: createServer() };
  const answer = (query: Buffer) => {
    const packet = dnsPacket.decode(query);
    return dnsPacket.encode({
      id: packet.id,
      type: "response",
      flags: dnsPacket.AUTHORITATIVE_ANSWER,
      questions: packet.questions,
      answers: [{ type: "A", name: packet.questions![0].name, ttl: 5, data: `10.0.0.${n}` }],
    });
  };
  udp.on("message", (message, from) => {
    setTimeout(() => udp.send(answer(message), from.port, from.address), self.delayMs);
  });
  self.tcp.on("connection", (socket) => {
    socket.on("data", (data) => {
      const reply = answer(data.subarray(2));
      const length = Buffer.alloc(2);
      length.writeUInt16BE(reply.length);
      socket.write(Buffer.concat([length, reply]));
    });
  });
  await new Promise<void>((resolve) => self.tcp.listen(port, "127.0.0.1", resolve));
  return self;
}

const query = (id: number) =>
  dnsPacket.encode({
    id,
    type: "query",
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: "A", name: "a.test" }],
  });

/** One query from a fresh source port; the answer's address, or undefined after `timeoutMs`. */
async function askUdp(router: AnycastRouter, timeoutMs = 1_000, socket?: UdpSocket): Promise<string | undefined> {
  const own = !socket;
  const client = socket ?? createSocket("udp4");
  try {
    return await new Promise<string | undefined>((resolve) => {
      const id = Math.floor(Math.random() * 65535);
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      const onMessage = (message: Buffer) => {
        const packet = dnsPacket.decode(message);
        if (packet.id !== id) return;
        clearTimeout(timer);
        client.off("message", onMessage);
        resolve((packet.answers![0] as { data: string }).data);
      };
      client.on("message", onMessage);
      client.send(query(id), router.port, router.host);
    });
  } finally {
    if (own) client.close();
  }
}

async function askTcp(router: AnycastRouter): Promise<string | undefined> {
  const socket: Socket = connect({ host: router.host, port: router.port });
  try {
    return await new Promise<string | undefined>((resolve) => {
      socket.on("error", () => resolve(undefined));
      socket.on("close", () => resolve(undefined));
      socket.on("data", (data) => resolve((dnsPacket.decode(data.subarray(2)).answers![0] as { data: string }).data));
      const packet = query(7);
      const length = Buffer.alloc(2);
      length.writeUInt16BE(packet.length);
      socket.write(Buffer.concat([length, packet]));
    });
  } finally {
    socket.destroy();
  }
}

async function post(router: AnycastRouter, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${router.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

describe("anycast router (scripts/lib/anycast.ts)", function () {
  this.timeout(30_000);
  let router: AnycastRouter;
  let one: Responder;
  let two: Responder;

  beforeEach(async function () {
    router = await startAnycastRouter({ authenticate: false }); // the forwarding alone (signed calls: test/node/dnsAnnounce.test.ts)
    one = await responder(1);
    two = await responder(2);
  });

  afterEach(async function () {
    await router.close();
    for (const r of [one, two]) {
      r.udp.close();
      r.tcp.close();
    }
  });

  const announce = (r: Responder) =>
    post(router, "/announce", { member: r.member, address: "127.0.0.1", port: r.port });

  it("spreads UDP flows over the announced members, keeps a flow on its member, and counts queries per member", async function () {
    expect((await announce(one)).body.members).to.have.length(1);
    const { status, body } = await announce(two);
    expect(status).to.equal(200);
    expect(body.members.map((m: { member: string }) => m.member)).to.deep.equal([one.member, two.member]);
    const answers = await Promise.all(Array.from({ length: 60 }, () => askUdp(router)));
    const ones = answers.filter((a) => a === "10.0.0.1").length;
    const twos = answers.filter((a) => a === "10.0.0.2").length;
    expect(ones + twos).to.equal(60);
    expect(ones).to.be.greaterThan(5);
    expect(twos).to.be.greaterThan(5);
    expect(router.counts()[one.member].udp).to.equal(ones);
    expect(router.counts()[two.member].answers).to.equal(twos);
    // One source port is one flow: every query from it reaches the same member.
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    const sticky = new Set<string | undefined>();
    for (let i = 0; i < 10; i += 1) sticky.add(await askUdp(router, 1_000, socket));
    socket.close();
    expect(sticky.size).to.equal(1);
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    expect(metrics).to.match(
      new RegExp(`edge_anycast_forwarded_total\\{member="${one.member}",transport="udp"\\} \\d+`),
    );
    expect(metrics).to.include("edge_anycast_members 2");
  });

  it("sends no new flow to a withdrawn member but relays the answer it still gives to a query already sent (a straggler)", async function () {
    await announce(one);
    two.delayMs = 300;
    await announce(two);
    // A source port whose flow hashes to the slow member two.
    let socket: UdpSocket | undefined;
    for (let i = 0; i < 50 && !socket; i += 1) {
      const candidate = createSocket("udp4");
      await new Promise<void>((resolve) => candidate.bind(0, "127.0.0.1", resolve));
      const before = router.counts()[two.member]?.udp ?? 0;
      await askUdp(router, 1_000, candidate);
      if ((router.counts()[two.member]?.udp ?? 0) > before) socket = candidate;
      else candidate.close();
    }
    expect(socket, "a flow on member two").to.not.equal(undefined);
    const pending = askUdp(router, 2_000, socket);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const { body } = await post(router, "/withdraw", { member: two.member });
    expect(body.members.map((m: { member: string }) => m.member)).to.deep.equal([one.member]);
    expect(await pending).to.equal("10.0.0.2");
    expect(router.counts()[two.member].straggling).to.equal(1);
    // The same flow now reaches member one, as do all new flows.
    expect(await askUdp(router, 1_000, socket)).to.equal("10.0.0.1");
    socket!.close();
    const after = await Promise.all(Array.from({ length: 20 }, () => askUdp(router)));
    expect(new Set(after)).to.deep.equal(new Set(["10.0.0.1"]));
    expect(router.history().map((h) => `${h.op} ${h.member}`)).to.deep.equal([
      `announce ${one.member}`,
      `announce ${two.member}`,
      `withdraw ${two.member}`,
    ]);
  });

  it("forwards TCP connections on the same port, and only to announced members", async function () {
    await announce(one);
    await announce(two);
    const answers = await Promise.all(Array.from({ length: 20 }, () => askTcp(router)));
    expect(new Set(answers)).to.deep.equal(new Set(["10.0.0.1", "10.0.0.2"]));
    await post(router, "/withdraw", { member: one.member });
    const after = await Promise.all(Array.from({ length: 10 }, () => askTcp(router)));
    expect(new Set(after)).to.deep.equal(new Set(["10.0.0.2"]));
    expect(router.counts()[one.member].tcp + router.counts()[two.member].tcp).to.equal(30);
  });

  it("drops datagrams and resets connections with no member announced, and refuses bad announcements with 400", async function () {
    expect(await askUdp(router, 300)).to.equal(undefined);
    expect(await askTcp(router)).to.equal(undefined);
    const metrics = await (await fetch(`${router.url}/metrics`)).text();
    expect(metrics).to.include('edge_anycast_dropped_total{transport="udp"} 1');
    expect(metrics).to.include('edge_anycast_dropped_total{transport="tcp"} 1');
    for (const bad of [
      "not json",
      { member: "a b", address: "127.0.0.1", port: 53 },
      { member: one.member, address: "localhost", port: 53 },
      { member: one.member, address: "127.0.0.1", port: 70_000 },
    ]) {
      const { status, body } = await post(router, "/announce", bad);
      expect(status, JSON.stringify(bad)).to.equal(400);
      expect(body.error.message).to.be.a("string");
    }
    expect((await post(router, "/withdraw", {})).status).to.equal(400);
    expect((await fetch(`${router.url}/nowhere`)).status).to.equal(404);
    expect(router.members()).to.deep.equal([]);
  });
});
