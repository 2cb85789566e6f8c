/**
 * The stargate's configuration stream server (proto/config.proto, D53).
 *
 * Each Subscribe call: the stargate speaks first with a Challenge (32 fresh random bytes and its address); the
 * node answers with a Hello signed over it by the device it names. Cheap checks come before the signature (shape,
 * sizes, role, region (D68), the device admitted for its role: a map lookup), so an unknown device costs no recovery;
 * a refusal ends the call with a gRPC status and a message (INVALID_ARGUMENT, PERMISSION_DENIED). A hello not sent
 * within `helloTimeoutMs` ends it with DEADLINE_EXCEEDED. Then the node gets what it lacks (a Snapshot if it holds
 * an older version, then the deltas after its seq), then every change as the store makes it, and the latest
 * catalogue. Acks and Nacks are recorded per device: the view (`subscribers()`, GET /config/view in
 * configRoutes.ts, the metric).
 *
 * Bounds: node messages over 16 KiB are refused by gRPC (RESOURCE_EXHAUSTED); at most `maxSubscribers` devices
 * are known (a disconnected one is forgotten to make room; with none, RESOURCE_EXHAUSTED); at most
 * `maxPendingHandshakes` calls wait for their hello, and at most `maxPendingPerClient` of one client address
 * (R17-6); a connection carries at most `maxStreamsPerConnection` calls (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS;
 * a node needs one); a client address whose hellos failed `failedHellosBurst` times is refused (RESOURCE_EXHAUSTED)
 * until its bucket refills (`failedHellosPerSecond`), before any check or signature recovery; one stream per
 * device: a new one replaces the old. While the stargate is out of its group (`setLeaving`, D59) new calls are refused
 * (UNAVAILABLE) and the current ones ended, so subscribers resume from their version at the next stargate.
 */
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { Counter, Gauge } from "prom-client";
import { type Address, type Hex, getAddress } from "viem";

import { type Region, recoverHelloSigner, regionFields } from "../../../offchain/common/protocol";
import { StakeType } from "../../../offchain/common/stakeMap";
import { TokenBucket } from "../../../offchain/common/tokenBucket";
import {
  type CatalogueMsg,
  type HelloMsg,
  MAX_REASON,
  type NodeMessage,
  SERVER_OPTIONS,
  type StargateMessage,
  type SubscribeCall,
  catalogueMsgOf,
  configStream,
  statusError,
} from "../../configWire";
import type { Catalogue, StargateContext } from "../../context";
import type { ConfigStore } from "./configStore";
import type { EndpointRole } from "./health";
import { type HelloProof, type ProvenHellos, helloProblem } from "./helloProofs";

export interface SubscriberView {
  device: Address;
  role: string;
  url: string;
  /** The version and seq it last acknowledged (its hello's until its first Ack). */
  version: number;
  seq: number;
  connected: boolean;
  lastAckAt: number | null;
  lastNack?: { version: number; seq: number; reason: string; at: number };
  /** Where it said it runs, in its signed hello (D68); absent: undeclared. */
  region?: Region;
}

export interface ConfigServerOptions {
  host: string;
  port: number;
  maxSubscribers?: number;
  maxPendingHandshakes?: number;
  /** Calls of one client address waiting for their hello (R17-6). */
  maxPendingPerClient?: number;
  maxStreamsPerConnection?: number;
  failedHellosPerSecond?: number;
  failedHellosBurst?: number;
  helloTimeoutMs?: number;
}

/** Client addresses whose failed hellos are tracked at most (the longest known is forgotten first). */
const MAX_TRACKED_CLIENTS = 10_000;

/** A call's client address: its peer without the port ("1.2.3.4:5" -> "1.2.3.4", "::1:5" -> "::1"). */
const clientOf = (call: SubscribeCall): string => call.getPeer().replace(/:\d+$/, "");

const ROLES: Record<string, StakeType> = {
  gateway: StakeType.Gateway,
  host: StakeType.Host,
  stargate: StakeType.Stargate,
};

type Ctx = Pick<StargateContext, "signer" | "log" | "chainAdmits" | "metrics">;

interface Session extends SubscriberView {
  call: SubscribeCall | null;
  /** What was sent to it: the next change starts after this. */
  sentVersion: number;
  sentSeq: number;
  /** Its hello as signed (R17-5: peers probe only a URL its device signed). */
  hello: HelloProof;
}

export class ConfigServer {
  private readonly server: grpc.Server;
  private readonly sessions = new Map<string, Session>();
  private readonly ackListeners: ((device: Address, version: number, seq: number) => void)[] = [];
  private pending = 0;
  private readonly pendingOf = new Map<string, number>();
  private readonly failures = new Map<string, TokenBucket>();
  private catalogue: CatalogueMsg | undefined;
  private readonly nacks: Counter<"role">;
  private port = 0;
  private leaving: string | undefined;

  constructor(
    private readonly ctx: Ctx,
    private readonly store: ConfigStore,
    private readonly options: ConfigServerOptions,
  ) {
    this.server = new grpc.Server({
      ...SERVER_OPTIONS,
      "grpc.max_concurrent_streams": options.maxStreamsPerConnection ?? 4,
    });
    this.server.addService(configStream().service, {
      Subscribe: (call: SubscribeCall) => this.subscribe(call),
    });
    store.onChange(() => {
      for (const session of this.sessions.values()) if (session.call) this.catchUp(session);
    });
    const registry = ctx.metrics.registry;
    const sessions = this.sessions;
    new Gauge({
      name: "edge_config_subscribers",
      help: "Connected configuration subscribers by the version they last acknowledged",
      labelNames: ["version"],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of sessions.values()) if (s.connected) this.inc({ version: String(s.version) });
      },
    });
    this.nacks = new Counter({
      name: "edge_config_nacks_total",
      help: "Configurations subscribers refused (Nack), by their role",
      labelNames: ["role"],
      registers: [registry],
    });
  }

  /** Listens on host:port; resolves with the port bound. */
  async start(): Promise<number> {
    const address = `${this.options.host.includes(":") ? `[${this.options.host}]` : this.options.host}:${this.options.port}`;
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
    this.ctx.log.info({ port: this.port }, "configuration stream listening");
    return this.port;
  }

  get boundPort(): number {
    return this.port;
  }

  async stop(): Promise<void> {
    for (const session of this.sessions.values())
      session.call?.emit("error", statusError(grpc.status.UNAVAILABLE, "the stargate is stopping"));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => (this.server.forceShutdown(), resolve()), 2_000);
      this.server.tryShutdown(() => (clearTimeout(timer), resolve()));
    });
  }

  /** With a reason: refuses new calls and ends the current ones with UNAVAILABLE; undefined takes them again. */
  setLeaving(reason: string | undefined): void {
    this.leaving = reason;
    if (reason)
      for (const s of this.sessions.values()) s.call?.emit("error", statusError(grpc.status.UNAVAILABLE, reason));
  }

  subscribers(): SubscriberView[] {
    return [...this.sessions.values()].map((s) => {
      const { device, role, url, version, seq, connected, lastAckAt, lastNack, region } = s;
      const view: SubscriberView = { device, role, url, version, seq, connected, lastAckAt };
      return { ...view, ...(lastNack ? { lastNack } : {}), ...(region ? { region } : {}) };
    });
  }

  /** Each known subscriber's hello as it signed it, by device (lower case): relayed with the verdicts (R17-5). */
  helloProofs(): ProvenHellos {
    const out = new Map<string, { role: EndpointRole; url: string; hello: HelloProof }>();
    for (const [key, s] of this.sessions) out.set(key, { role: s.role as EndpointRole, url: s.url, hello: s.hello });
    return out;
  }

  /** Called with every Ack as it arrives (the propagation benchmark times them). */
  onAck(listener: (device: Address, version: number, seq: number) => void): void {
    this.ackListeners.push(listener);
  }

  /** Pushes the catalogue to every subscriber when it differs from the last one. */
  publishCatalogue(catalogue: Catalogue): void {
    const message: CatalogueMsg = catalogueMsgOf(catalogue);
    const same =
      this.catalogue !== undefined && JSON.stringify(this.catalogue.endpoints) === JSON.stringify(message.endpoints);
    this.catalogue = message;
    if (same) return;
    for (const session of this.sessions.values()) session.call?.write({ body: "catalogue", catalogue: message });
  }

  private subscribe(call: SubscribeCall): void {
    const refuse = (code: grpc.status, message: string) => void call.emit("error", statusError(code, message));
    if (this.leaving) return refuse(grpc.status.UNAVAILABLE, this.leaving);
    if (this.pending >= (this.options.maxPendingHandshakes ?? 1_000))
      return refuse(grpc.status.RESOURCE_EXHAUSTED, "too many handshakes in progress: retry later");
    const client = clientOf(call);
    const own = this.pendingOf.get(client) ?? 0;
    if (own >= (this.options.maxPendingPerClient ?? 16))
      return refuse(grpc.status.RESOURCE_EXHAUSTED, `too many handshakes in progress from ${client}: retry later`);
    this.pending += 1;
    this.pendingOf.set(client, own + 1);
    let counted = true;
    let helloSeen = false;
    const done = () => {
      if (counted) {
        this.pending -= 1;
        const left = (this.pendingOf.get(client) ?? 1) - 1;
        if (left > 0) this.pendingOf.set(client, left);
        else this.pendingOf.delete(client);
      }
      counted = false;
      clearTimeout(timer);
    };
    const timeoutMs = this.options.helloTimeoutMs ?? 5_000;
    const timer = setTimeout(() => {
      done();
      refuse(grpc.status.DEADLINE_EXCEEDED, `no hello within ${timeoutMs} ms of the challenge`);
    }, timeoutMs);
    timer.unref();
    const challenge = {
      stargate: this.ctx.signer.account.address,
      nonce: `0x${randomBytes(32).toString("hex")}` as Hex,
    };
    let session: Session | undefined;
    call.on("data", (message: NodeMessage) => {
      if (!helloSeen) {
        if (message.body !== "hello") return refuse(grpc.status.INVALID_ARGUMENT, "the first message must be a hello");
        helloSeen = true; // later messages are not hellos, even while this one is checked
        void this.hello(call, client, message.hello, challenge).then(
          (s) => {
            done();
            session = s;
          },
          (error: grpc.StatusObject) => {
            done();
            if (error.code !== grpc.status.CANCELLED) this.failed(client);
            refuse(error.code ?? grpc.status.INTERNAL, error.details ?? String(error));
          },
        );
        return;
      }
      if (session) this.answer(session, message);
    });
    const ended = () => {
      done();
      if (session && session.call === call) {
        session.call = null;
        session.connected = false;
      }
    };
    call.on("error", ended);
    call.on("cancelled", ended);
    call.on("close", ended);
    call.on("end", () => call.end());
    call.write({
      body: "challenge",
      challenge: { stargate: challenge.stargate, nonce: Buffer.from(challenge.nonce.slice(2), "hex") },
    });
  }

  /** Checks a hello (cheap checks first), registers its device's session and sends what it lacks. */
  private async hello(
    call: SubscribeCall,
    client: string,
    hello: HelloMsg,
    challenge: { stargate: Address; nonce: Hex },
  ): Promise<Session> {
    const fail = (code: grpc.status, details: string) => Promise.reject({ code, details });
    const bucket = this.failures.get(client);
    const now = Date.now();
    if (bucket && now < bucket.lastUsed + bucket.waitMs())
      return fail(grpc.status.RESOURCE_EXHAUSTED, `too many failed hellos from ${client}: retry later`);
    const shape = helloProblem(hello); // the region's shape too (D68): before any signature work
    if ("problem" in shape) return fail(grpc.status.INVALID_ARGUMENT, shape.problem);
    const { region } = shape;
    const device = getAddress(hello.node);
    if (!this.ctx.chainAdmits(device, ROLES[hello.role]))
      return fail(grpc.status.PERMISSION_DENIED, `${device} is not admitted as a ${hello.role}`);
    const { role, url, version, seq } = hello;
    const signer = await recoverHelloSigner(
      this.ctx.signer.chainId,
      { node: device, role, url, ...regionFields(region), version, seq },
      challenge,
      hello.signature as Hex,
    ).catch(() => undefined);
    if (signer !== device)
      return fail(grpc.status.PERMISSION_DENIED, `the hello is not signed by ${device} over this stream's challenge`);
    if (call.cancelled || call.destroyed) return fail(grpc.status.CANCELLED, "the call ended during the handshake");
    if (this.leaving) return fail(grpc.status.UNAVAILABLE, this.leaving);
    const key = device.toLowerCase();
    const old = this.sessions.get(key);
    if (!old && this.sessions.size >= (this.options.maxSubscribers ?? 10_000) && !this.forgetOne())
      return fail(grpc.status.RESOURCE_EXHAUSTED, `this stargate serves ${this.sessions.size} subscribers, its most`);
    if (old?.call)
      old.call.emit("error", statusError(grpc.status.ALREADY_EXISTS, "replaced by a newer stream of this device"));
    const session: Session = {
      device,
      role: hello.role,
      url: hello.url,
      version: hello.version,
      seq: hello.seq,
      connected: true,
      lastAckAt: old?.lastAckAt ?? null,
      ...(old?.lastNack ? { lastNack: old.lastNack } : {}),
      call,
      sentVersion: hello.version,
      sentSeq: hello.seq,
      hello: { ...challenge, version, seq, signature: hello.signature as Hex, ...(region ? { region } : {}) },
      ...(region ? { region } : {}),
    };
    this.sessions.set(key, session);
    this.catchUp(session);
    if (this.catalogue) call.write({ body: "catalogue", catalogue: this.catalogue });
    return session;
  }

  /** Counts a failed hello against its client address (R17-6). */
  private failed(client: string): void {
    const now = Date.now();
    let bucket = this.failures.get(client);
    if (!bucket) {
      if (this.failures.size >= MAX_TRACKED_CLIENTS) this.failures.delete(this.failures.keys().next().value!);
      const burst = this.options.failedHellosBurst ?? 10;
      this.failures.set(client, (bucket = new TokenBucket(this.options.failedHellosPerSecond ?? 1, burst, now)));
    }
    bucket.take(now);
  }

  /** Forgets one disconnected subscriber to make room; false when every one is connected. */
  private forgetOne(): boolean {
    for (const [key, session] of this.sessions) if (!session.connected) return this.sessions.delete(key);
    return false;
  }

  /** Sends the session what it lacks: the latest snapshot if it holds an older version, then the deltas after. */
  private catchUp(session: Session): void {
    const call = session.call;
    const latest = this.store.latest();
    if (!call || !latest || session.sentVersion > latest.version) return;
    const write = (message: StargateMessage) => call.write(message);
    if (session.sentVersion < latest.version) {
      write({ body: "snapshot", snapshot: { version: latest.version, document: latest.bytes } });
      session.sentVersion = latest.version;
      session.sentSeq = 0;
    }
    for (const delta of this.store.currentDeltas().slice(session.sentSeq)) {
      write({
        body: "delta",
        delta: { base: delta.base, seq: delta.seq, body: delta.body, signature: delta.signature },
      });
      session.sentSeq = delta.seq;
    }
  }

  private answer(session: Session, message: NodeMessage): void {
    const at = Date.now();
    if (message.body === "ack") {
      session.version = message.ack.version;
      session.seq = message.ack.seq;
      session.lastAckAt = at;
      for (const listener of this.ackListeners) listener(session.device, message.ack.version, message.ack.seq);
    } else if (message.body === "nack") {
      const { version, seq } = message.nack;
      session.lastNack = { version, seq, reason: message.nack.reason.slice(0, MAX_REASON), at };
      this.nacks.inc({ role: session.role });
      this.ctx.log.warn(
        { device: session.device, version, seq, reason: session.lastNack.reason },
        "configuration refused",
      );
    } else {
      session.call?.emit("error", statusError(grpc.status.INVALID_ARGUMENT, "one hello per stream"));
    }
  }
}
