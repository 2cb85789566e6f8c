/**
 * A small network for the rollout queue's tests, made of real servers: one HTTP server per node (/status, /ready,
 * /metrics, /admin/leave, /admin/join) on its own loopback address, a stargate HTTP server (the Network API's node drain and
 * /health/catalogue) and a UDP DNS server (dns-packet) answering the site with the gateways not drained. Gateways
 * count requests while DNS returns them; updates restart a node (not ready for a while).
 */
import { createSocket } from "node:dgram";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import * as dnsPacket from "dns-packet";

export const TOKEN = "sim-token";
export const SITE = "site.example";

export interface SimNode {
  name: string;
  role: "gateway" | "stargate";
  device: string;
  address: string;
  url: string;
  restarting: boolean;
  requests: number;
  /** A gateway's traffic goes on even when drained (a client that ignores DNS). */
  stubborn: boolean;
  inGroup: boolean;
  subscribers: number;
  /** Requests in flight its /metrics reports. */
  inFlight: number;
  /** Hosts linked to it (edge_node_routable_hosts): a restarted gateway has none until they link again. */
  hosts: number;
  /** The device its /status names when it is not its own (a node lying about who it is). */
  claims?: string;
  /** The URL the stargates' catalogue lists for the device (default: its url, as a gateway's signed hello names). */
  catalogueUrl?: string;
  queries: number;
  server: Server;
}

export class Sim {
  readonly nodes: SimNode[] = [];
  readonly draining = new Set<string>();
  /** What happened, in order: "drain gw-1", "update gw-1", ... */
  readonly log: string[] = [];
  api = "";
  dns = "";
  private apiServer: Server | undefined;
  private udp = createSocket("udp4");

  async start(specs: { name: string; role: "gateway" | "stargate" }[]): Promise<void> {
    for (const [i, spec] of specs.entries()) {
      const node: SimNode = {
        ...spec,
        device: `0x${(i + 1).toString(16).padStart(40, "0")}`,
        address: `127.0.0.${11 + i}`,
        url: "",
        restarting: false,
        requests: 0,
        stubborn: false,
        inGroup: true,
        subscribers: 2,
        queries: 0,
        inFlight: 0,
        hosts: 1,
        server: createServer((req, res) => this.nodeRoute(node, req, res)),
      };
      node.url = await listen(node.server, node.address);
      this.nodes.push(node);
    }
    this.apiServer = createServer((req, res) => this.apiRoute(req, res));
    this.api = await listen(this.apiServer);
    this.udp.on("message", (message, peer) => this.answer(message, peer));
    await new Promise<void>((resolve) => this.udp.bind(0, "127.0.0.1", resolve));
    this.dns = `127.0.0.1:${(this.udp.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const server of [...this.nodes.map((n) => n.server), this.apiServer!])
      await new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve())));
    this.udp.close();
  }

  node(name: string): SimNode {
    return this.nodes.find((n) => n.name === name)!;
  }

  /** The update: a restart of `restartMs` during which the node is not ready. */
  async restart(name: string, restartMs = 150): Promise<void> {
    const node = this.node(name);
    this.log.push(
      `update ${name}${this.draining.has(node.device) ? " (drained)" : ""}${node.inGroup ? "" : " (left)"}`,
    );
    node.restarting = true;
    await new Promise((r) => setTimeout(r, restartMs));
    node.restarting = false;
    node.inGroup = true;
  }

  private serving(node: SimNode): boolean {
    return !node.restarting && !this.draining.has(node.device);
  }

  private nodeRoute(node: SimNode, req: IncomingMessage, res: ServerResponse): void {
    const send = (status: number, body: unknown): void =>
      void res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (node.restarting) return void req.socket.destroy();
    if (req.url === "/ready") return send(200, { ready: true });
    if (req.url === "/status") {
      const group = { inGroup: node.inGroup, subscribers: node.subscribers };
      return send(200, {
        device: node.claims ?? node.device,
        ...(node.role === "stargate" ? { stargate: { group } } : {}),
      });
    }
    if (req.url === "/metrics") {
      // A gateway DNS still returns (or a stubborn client) gets requests; a stargate in its group gets queries.
      if (node.role === "gateway" && (node.stubborn || !this.draining.has(node.device))) node.requests += 1;
      if (node.role === "stargate" && node.inGroup) node.queries += 1;
      const text =
        node.role === "gateway"
          ? `edge_cdn_requests_total{site="a"} ${node.requests}\nedge_cdn_requests_total{site="b"} 1\nedge_node_jobs_in_flight ${node.inFlight}\nedge_node_routable_hosts ${node.hosts}\n`
          : `edge_dns_queries_total{rcode="NOERROR",kind="zone"} ${node.queries}\n`;
      return void res.writeHead(200, { "content-type": "text/plain" }).end(text);
    }
    if (req.method === "POST" && (req.url === "/admin/leave" || req.url === "/admin/join")) {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { code: "EDGE_NODE_UNAUTHORIZED" });
      node.inGroup = req.url === "/admin/join";
      this.log.push(`${node.inGroup ? "join" : "leave"} ${node.name}`);
      if (!node.inGroup) setTimeout(() => (node.subscribers = 0), 100);
      return send(200, { inGroup: node.inGroup, subscribers: node.subscribers });
    }
    send(404, { code: "NOT_FOUND" });
  }

  private apiRoute(req: IncomingMessage, res: ServerResponse): void {
    const send = (status: number, body: unknown): void =>
      void res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (req.url === "/health/catalogue") {
      const endpoints = this.nodes.map((n) => ({
        device: n.device,
        role: n.role,
        url: n.catalogueUrl ?? n.url,
        healthy: !n.restarting,
        version: 1,
      }));
      return send(200, { atMs: Date.now(), endpoints });
    }
    const drain = /^\/api\/nodes\/(0x[0-9a-f]{40})\/drain$/.exec(req.url ?? "");
    if (drain && (req.method === "POST" || req.method === "DELETE")) {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { code: "EDGE_NODE_UNAUTHORIZED" });
      const node = this.nodes.find((n) => n.device === drain[1]);
      if (!node) return send(404, { code: "EDGE_NODE_UNKNOWN_DEVICE", error: `${drain[1]} is not admitted` });
      if (req.method === "POST") this.draining.add(node.device);
      else this.draining.delete(node.device);
      this.log.push(`${req.method === "POST" ? "drain" : "undrain"} ${node.name}`);
      return send(200, { applied: { base: 1, seq: this.log.length } });
    }
    send(404, { code: "NOT_FOUND" });
  }

  private answer(message: Buffer, peer: { address: string; port: number }): void {
    const query = dnsPacket.decode(message);
    const question = query.questions?.[0];
    const gateways = this.nodes.filter((n) => n.role === "gateway" && this.serving(n));
    const answers =
      question?.name === SITE && question.type === "A"
        ? gateways.map((g) => ({ name: SITE, type: "A" as const, ttl: 5, data: g.address }))
        : [];
    const rcode = question?.name !== SITE ? "NXDOMAIN" : gateways.length === 0 ? "SERVFAIL" : "NOERROR";
    const reply = dnsPacket.encode({
      id: query.id,
      type: "response",
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (rcode === "NXDOMAIN" ? 3 : rcode === "SERVFAIL" ? 2 : 0),
      questions: query.questions,
      answers,
    });
    this.udp.send(reply, peer.port, peer.address);
  }
}

async function listen(server: Server, host = "127.0.0.1"): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return `http://${host}:${(server.address() as AddressInfo).port}`;
}
