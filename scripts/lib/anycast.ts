/**
 * A loopback "anycast router" standing in for BGP (issue 18, D60; docs/dns.md "Network model"). In production the
 * stargates share one anycast address announced over BGP; here one address:port (UDP and TCP) forwards each client
 * flow to one announced member, and members announce and withdraw themselves over HTTP (the "route announcer" API a
 * stargate reaches with --dns-announce <url>):
 *
 *   POST <url>/announce {"action", "member": "0x…", "address": "127.0.0.x", "port": N, "at", "signature"} -> 200
 *   POST <url>/withdraw {"action", "member": "0x…", "at", "signature"}                             -> 200
 *   (each answered {"members": [...]}; signed with the member's device key, see `AnycastOptions.authenticate`)
 *   GET  <url>/members -> 200 {"members": [...], "counts": {...}};  GET <url>/metrics -> Prometheus text
 *
 * What it models: a flow (the client's address:port) goes to one member chosen by rendezvous hashing over the
 * announced members, so announcing or withdrawing a member moves only the flows that member gains or loses, as
 * ECMP over equal BGP paths does. A withdrawn member gets no new datagrams or connections; answers to datagrams
 * already forwarded to it are still relayed back (stragglers), and TCP connections it already holds stay with it
 * until they close. With no member announced, datagrams are dropped and connections reset (a black hole).
 * What it does not model: propagation delay of a withdrawal across the internet, routing by topology (every member is
 * "nearest"), or TCP connections broken by a route change. Production would put an exabgp/bird adapter behind the
 * same two calls; that adapter is not built.
 */
import { createHash } from "node:crypto";
import { type Socket as UdpSocket, createSocket } from "node:dgram";
import { type IncomingMessage, type Server as HttpServer, type ServerResponse, createServer } from "node:http";
import { type AddressInfo, type Server as TcpServer, type Socket, connect, createServer as createTcp } from "node:net";
import { Counter, Gauge, Registry } from "prom-client";
import { isAddress, isHex, recoverMessageAddress } from "viem";

import { announcementMessage } from "../../node/roles/stargate/dnsGroup";

export interface AnycastMember {
  member: string;
  address: string;
  port: number;
}

export interface MemberCounts {
  /** Datagrams forwarded to it. */
  udp: number;
  /** Datagrams it answered that were relayed back. */
  answers: number;
  /** TCP connections forwarded to it. */
  tcp: number;
  /** Datagrams or connections sent to it after it withdrew that it still answered: stragglers' answers. */
  straggling: number;
}

export interface AnycastRouter {
  /** The anycast address (UDP and TCP). */
  host: string;
  port: number;
  /** The announcer API's base URL (--dns-announce). */
  url: string;
  members(): AnycastMember[];
  /** Per member id (including withdrawn ones) since start. */
  counts(): Record<string, MemberCounts>;
  /** Every announce and withdraw in order, with its time: lets a test line DNS answers up with membership. */
  history(): Array<{ at: number; op: "announce" | "withdraw"; member: string }>;
  registry: Registry;
  close(): Promise<void>;
}

export interface AnycastOptions {
  host?: string;
  /** The anycast port (UDP and TCP); 0 picks a free one (the same for both). */
  port?: number;
  /** The announcer API's address and port (0: a free one). */
  apiHost?: string;
  apiPort?: number;
  /** A flow's upstream socket closes after this long without traffic. */
  flowIdleMs?: number;
  /**
   * Require signed calls (R18-9, default true): `member` a device address whose EIP-191 signature over the
   * canonical {action, member, address, port, at} (node/roles/stargate/dnsGroup.ts) recovers it, `at` within 30 s
   * and newer than the member's last, and an announcing member bound to its first address until it withdraws.
   * false: any caller (tests of the forwarding alone).
   */
  authenticate?: boolean;
}

/** How old a signed call may be. */
export const ANNOUNCE_MAX_AGE_MS = 30_000;

/** Rendezvous (highest random weight) hashing: the member whose hash with the flow is highest. */
export function pickMember(flow: string, members: AnycastMember[]): AnycastMember | undefined {
  let best: AnycastMember | undefined;
  let bestWeight = -1n;
  for (const member of members) {
    const weight = createHash("sha256").update(`${member.member}\n${flow}`).digest().readBigUInt64BE(0);
    if (weight > bestWeight) [best, bestWeight] = [member, weight];
  }
  return best;
}

interface Flow {
  socket: UdpSocket;
  member: string;
  timer?: NodeJS.Timeout;
}

const MEMBER = /^[0-9A-Za-z._:-]{1,100}$/;

function parseMember(body: unknown, withAddress: boolean): AnycastMember | string {
  if (typeof body !== "object" || body === null) return "the body must be a JSON object";
  const { member, address, port } = body as Record<string, unknown>;
  if (typeof member !== "string" || !MEMBER.test(member)) return "member must be a device address or name";
  if (!withAddress) return { member: member.toLowerCase(), address: "", port: 0 };
  if (typeof address !== "string" || !/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) return "address must be an IPv4 literal";
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) return "port must be 1-65535";
  return { member: member.toLowerCase(), address, port };
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  let text = "";
  for await (const chunk of request) {
    text += chunk;
    if (text.length > 4096) throw new Error("the body is too large");
  }
  return JSON.parse(text);
}

/** Binds UDP then TCP to the same port (retrying when port 0 gave a UDP port TCP cannot have). */
async function bindBoth(host: string, port: number): Promise<{ udp: UdpSocket; tcp: TcpServer; port: number }> {
  for (let attempt = 0; ; attempt += 1) {
    const udp = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(port, host, () => resolve());
    });
    const bound = udp.address().port;
    const tcp = createTcp();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen(bound, host, () => resolve());
      });
      return { udp, tcp, port: bound };
    } catch (error) {
      udp.close();
      if (port !== 0 || attempt >= 20) throw error;
    }
  }
}

/** What the UDP, TCP and API parts share. */
class RouterState {
  readonly announced = new Map<string, AnycastMember>();
  readonly counts = new Map<string, MemberCounts>();
  readonly history: Array<{ at: number; op: "announce" | "withdraw"; member: string }> = [];
  readonly flows = new Map<string, Flow>();
  readonly connections = new Set<Socket>();
  /** member -> the `at` of its last accepted call (kept after a withdrawal: no replay ever). */
  readonly lastAt = new Map<string, number>();
  /** member -> the address it announced first (until it withdraws). */
  readonly bound = new Map<string, string>();
  readonly registry = new Registry();
  readonly forwarded = new Counter({
    name: "edge_anycast_forwarded_total",
    help: "Datagrams and TCP connections the anycast router forwarded, by member and transport",
    labelNames: ["member", "transport"] as const,
    registers: [this.registry],
  });
  readonly dropped = new Counter({
    name: "edge_anycast_dropped_total",
    help: "Datagrams or connections with no announced member to take them",
    labelNames: ["transport"] as const,
    registers: [this.registry],
  });

  constructor() {
    const announced = this.announced;
    new Gauge({
      name: "edge_anycast_members",
      help: "Members announced",
      registers: [this.registry],
      collect() {
        this.set(announced.size);
      },
    });
  }

  countOf(member: string): MemberCounts {
    let entry = this.counts.get(member);
    if (!entry) this.counts.set(member, (entry = { udp: 0, answers: 0, tcp: 0, straggling: 0 }));
    return entry;
  }

  pick(flow: string, transport: "udp" | "tcp"): AnycastMember | undefined {
    const target = pickMember(flow, [...this.announced.values()]);
    if (!target) this.dropped.inc({ transport });
    else this.forwarded.inc({ member: target.member, transport });
    return target;
  }

  members(): AnycastMember[] {
    return [...this.announced.values()].sort((a, b) => a.member.localeCompare(b.member));
  }
}

/** Each client flow gets its own upstream socket per member, so answers (stragglers' too) find their way back. */
function forwardUdp(state: RouterState, udp: UdpSocket, flowIdleMs: number): void {
  udp.on("message", (message, client) => {
    const key = `${client.address}:${client.port}`;
    const target = state.pick(key, "udp");
    if (!target) return;
    const flowKey = `${key}>${target.member}`;
    let flow = state.flows.get(flowKey);
    if (!flow) {
      const member = target.member;
      flow = { socket: createSocket("udp4"), member };
      flow.socket.on("message", (answer) => {
        const entry = state.countOf(member);
        entry.answers += 1;
        if (!state.announced.has(member)) entry.straggling += 1;
        udp.send(answer, client.port, client.address);
      });
      flow.socket.on("error", () => undefined);
      flow.socket.bind(0, "127.0.0.1");
      state.flows.set(flowKey, flow);
    }
    const current = flow;
    clearTimeout(current.timer);
    current.timer = setTimeout(() => {
      state.flows.delete(flowKey);
      current.socket.close();
    }, flowIdleMs).unref();
    state.countOf(target.member).udp += 1;
    current.socket.send(message, target.port, target.address);
  });
  udp.on("error", () => undefined);
}

/** A connection stays with the member it was given until either side closes it. */
function forwardTcp(state: RouterState, tcp: TcpServer): void {
  tcp.on("connection", (client) => {
    state.connections.add(client);
    client.on("close", () => state.connections.delete(client));
    client.on("error", () => undefined);
    const target = state.pick(`${client.remoteAddress}:${client.remotePort}`, "tcp");
    if (!target) return void client.resetAndDestroy();
    state.countOf(target.member).tcp += 1;
    const upstream = connect({ host: target.address, port: target.port });
    state.connections.add(upstream);
    upstream.on("close", () => {
      state.connections.delete(upstream);
      client.destroy();
    });
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
}

/** Why a call is refused (R18-9), or undefined: the member signed it, it is fresh, and the address is its own. */
async function checkSigned(
  state: RouterState,
  body: Record<string, unknown>,
  parsed: AnycastMember,
  announce: boolean,
): Promise<{ status: number; code: string; message: string } | undefined> {
  const { at, signature } = body;
  const action = body.action as "announce" | "withdraw";
  const bad = (message: string) => ({ status: 400, code: "BAD_REQUEST", message });
  if (!isAddress(parsed.member)) return bad("member must be the device's address");
  if (action !== (announce ? "announce" : "withdraw"))
    return bad(`action must be ${announce ? "announce" : "withdraw"}`);
  if (typeof at !== "number" || !Number.isSafeInteger(at)) return bad("at must be the time in milliseconds");
  if (typeof signature !== "string" || !isHex(signature)) return bad("signature must be a hex signature");
  const message = announcementMessage({
    action,
    member: body.member as string,
    ...(announce && { address: parsed.address, port: parsed.port }),
    at,
  });
  let signer: string;
  try {
    signer = (await recoverMessageAddress({ message, signature })).toLowerCase();
  } catch {
    signer = "";
  }
  if (signer !== parsed.member) return { status: 401, code: "BAD_SIGNATURE", message: "the signature is not the member's" }; // prettier-ignore
  if (Math.abs(Date.now() - at) > ANNOUNCE_MAX_AGE_MS)
    return { status: 401, code: "STALE", message: `at is more than ${ANNOUNCE_MAX_AGE_MS / 1000} s from now` };
  if (at <= (state.lastAt.get(parsed.member) ?? 0))
    return { status: 409, code: "REPLAYED", message: "at is not newer than the member's last call" };
  const bound = state.bound.get(parsed.member);
  if (announce && bound !== undefined && bound !== parsed.address)
    return { status: 409, code: "ADDRESS_BOUND", message: `the member is bound to ${bound} until it withdraws` };
  state.lastAt.set(parsed.member, at);
  return undefined;
}

function answer(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

/** The route announcer API: announce, withdraw, members, metrics. */
async function routeApi(
  state: RouterState,
  authenticate: boolean,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const path = (request.url ?? "/").split("?")[0];
  if (request.method === "GET" && path === "/members") {
    return answer(response, 200, { members: state.members(), counts: Object.fromEntries(state.counts) });
  }
  if (request.method === "GET" && path === "/metrics") {
    response.writeHead(200, { "content-type": state.registry.contentType });
    return void response.end(await state.registry.metrics());
  }
  if (request.method !== "POST" || (path !== "/announce" && path !== "/withdraw")) {
    return answer(response, 404, { error: { code: "NOT_FOUND", message: `no route ${request.method} ${path}` } });
  }
  let body: unknown;
  try {
    body = await readJson(request);
  } catch (error) {
    return answer(response, 400, { error: { code: "BAD_REQUEST", message: (error as Error).message } });
  }
  const parsed = parseMember(body, path === "/announce");
  if (typeof parsed === "string") return answer(response, 400, { error: { code: "BAD_REQUEST", message: parsed } });
  if (authenticate) {
    const refused = await checkSigned(state, body as Record<string, unknown>, parsed, path === "/announce");
    if (refused) return answer(response, refused.status, { error: { code: refused.code, message: refused.message } });
  }
  if (path === "/announce") state.announced.set(parsed.member, parsed);
  else state.announced.delete(parsed.member);
  if (path === "/withdraw") state.bound.delete(parsed.member);
  else if (!state.bound.has(parsed.member)) state.bound.set(parsed.member, parsed.address);
  state.history.push({ at: Date.now(), op: path === "/announce" ? "announce" : "withdraw", member: parsed.member });
  answer(response, 200, { members: state.members() });
}

export async function startAnycastRouter(options: AnycastOptions = {}): Promise<AnycastRouter> {
  const host = options.host ?? "127.0.0.1";
  const state = new RouterState();
  const { udp, tcp, port } = await bindBoth(host, options.port ?? 0);
  forwardUdp(state, udp, options.flowIdleMs ?? 10_000);
  forwardTcp(state, tcp);
  const api: HttpServer = createServer(
    (request, response) => void routeApi(state, options.authenticate ?? true, request, response),
  );
  await new Promise<void>((resolve) => api.listen(options.apiPort ?? 0, options.apiHost ?? "127.0.0.1", resolve));
  const apiAddress = api.address() as AddressInfo;

  return {
    host,
    port,
    url: `http://${apiAddress.address}:${apiAddress.port}`,
    members: () => state.members(),
    counts: () => Object.fromEntries([...state.counts].map(([member, entry]) => [member, { ...entry }])),
    history: () => state.history.map((entry) => ({ ...entry })),
    registry: state.registry,
    async close() {
      for (const flow of state.flows.values()) {
        clearTimeout(flow.timer);
        flow.socket.close();
      }
      state.flows.clear();
      for (const socket of state.connections) socket.destroy();
      udp.close();
      api.closeAllConnections();
      await Promise.all([new Promise((resolve) => tcp.close(resolve)), new Promise((resolve) => api.close(resolve))]);
    },
  };
}
