/**
 * A node's subscription to the stargates' configuration stream (proto/config.proto, D53): gateways, hosts and
 * relaying stargates.
 *
 * Nothing on the stream is trusted for being on it. A Snapshot is taken only if its version is newer than the one
 * held and keccak256 of its bytes is the hash ConfigRegistry anchors for that version (a parseable document of
 * that version); a Delta only if its body parses, it continues the held (version, seq) and its signer holds
 * DELTA_SIGNER_ROLE. A message that fails is answered with a Nack and the stream is dropped for the next stargate
 * of the list (the stargate is not trusted); a delta that skips a seq drops the stream to resume from the held
 * one. A verified configuration is handed to `apply` (the role's applyConfig): throwing refuses it (Nack with the
 * message; the last good one stays in force), returning accepts it (Ack, and it is persisted atomically when a
 * file is given, so a restart resumes from it after verifying it again). The stream's Challenge must name a
 * stargate the chain view admits (`isStargate`) before a hello is signed over it, and a Catalogue is applied only
 * from such a stream (R17-10, R17-4). The stream is plaintext: an on-path attacker can still relay it (no TLS
 * yet). The hello signs the node's region too (--region, D68). The connection reconnects with a capped, jittered
 * back-off, moving along the list after a failure.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { Address, Hex } from "viem";

import { messageOf } from "../offchain/common/errors";
import {
  type DeltaBody,
  type NetworkConfig,
  applyDeltas,
  documentHash,
  parseDeltaBody,
  parseDocument,
  type Region,
  recoverDeltaSigner,
  regionFields,
  signHello,
} from "../offchain/common/protocol";
import {
  type AnchorReader,
  CLIENT_OPTIONS,
  type DeltaMsg,
  MAX_REASON,
  type SnapshotMsg,
  type StargateMessage,
  type SubscribeClientCall,
  catalogueOf,
  configStream,
} from "./configWire";
import { LagWatch } from "./configLag";
import type { AppliedConfig, Catalogue, RoleContext } from "./context";

/** A verified configuration: the anchored document's bytes and the signed deltas applied on top of it. */
export interface HeldConfig {
  version: number;
  hash: Hex;
  bytes: Buffer;
  document: NetworkConfig;
  deltas: { body: Buffer; signature: Hex; parsed: DeltaBody }[];
  /** The document with the deltas applied. */
  effective: NetworkConfig;
}

export type ConfigChange =
  | { kind: "snapshot"; version: number; hash: Hex; bytes: Buffer; document: NetworkConfig }
  | { kind: "delta"; base: number; seq: number; body: Buffer; signature: Hex; parsed: DeltaBody };

export interface ConfigSubscriberOptions {
  role: "gateway" | "host" | "stargate";
  /** Read at each connection (a node on port 0 learns its URL once it listens). */
  url: () => string;
  region?: Region /* --region, signed into each hello; undefined: undeclared */;
  stargates: readonly string[];
  anchor: AnchorReader;
  /** Whether the chain view admits `address` as a stargate: a challenge from anyone else gets no hello (R17-10). */
  isStargate(address: Address): boolean;
  /** Applies a verified configuration; throwing refuses it (Nack). */
  apply(config: AppliedConfig, change: ConfigChange): void;
  applyCatalogue?(catalogue: Catalogue): void;
  /** Where the last good configuration is kept (none: not persisted). */
  file?: string;
  /** The configuration held at each connection, for a relay whose store holds it (overrides the subscriber's). */
  held?: () => HeldConfig | undefined;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** How long a stream may stay behind the chain's latest anchored version before the next stargate (30 s). */
  maxBehindMs?: number;
}

export interface SubscriberStatus {
  version: number;
  seq: number;
  stargate: string | null;
  connected: boolean;
  lastError: string | null;
  lastNack: string | null;
}

const seqOf = (held: HeldConfig | undefined) => held?.deltas.length ?? 0;
const applied = (held: HeldConfig): AppliedConfig => ({
  version: held.version,
  seq: held.deltas.length,
  hash: held.hash,
  document: held.effective,
});

/** Ends a stream: `untrusted` moves on to the next stargate. */
class StreamFault extends Error {
  constructor(
    message: string,
    readonly untrusted: boolean,
  ) {
    super(message);
  }
}

export class ConfigSubscriber {
  private good: HeldConfig | undefined;
  /** What this stream verified so far (ahead of `good` while the role refuses it). */
  private latest: HeldConfig | undefined;
  private call: SubscribeClientCall | null = null;
  private client: InstanceType<ReturnType<typeof configStream>["Client"]> | null = null;
  private index = 0;
  private wanted = false;
  private retry: NodeJS.Timeout | null = null;
  private backoff: number;
  private connected = false;
  private lastError: string | null = null;
  private lastNack: string | null = null;
  /** This stream's challenger is an admitted stargate (a catalogue is taken only then). */
  private admitted = false;
  private queue: Promise<void> = Promise.resolve();
  /** Ends this stream as untrusted (the lag watch's verdict, R17-8): the next stargate. */
  private dropStream: ((reason: string) => void) | null = null;
  private readonly lag: LagWatch;

  constructor(
    private readonly ctx: Pick<RoleContext, "signer" | "log">,
    private readonly options: ConfigSubscriberOptions,
  ) {
    if (options.stargates.length === 0) throw new Error("a configuration subscriber needs stargates");
    this.backoff = options.minBackoffMs ?? 250;
    this.lag = new LagWatch({
      latest: async () => (await options.anchor.latest()).version,
      delivered: () => (this.connected ? (this.latest?.version ?? 0) : undefined),
      drop: (reason) => this.dropStream?.(reason),
      maxBehindMs: options.maxBehindMs ?? 30_000,
    });
  }

  /** The last good configuration. */
  current(): AppliedConfig | undefined {
    return this.good && applied(this.good);
  }

  status(): SubscriberStatus {
    return {
      version: this.good?.version ?? 0,
      seq: seqOf(this.good),
      stargate: this.options.stargates[this.index] ?? null,
      connected: this.connected,
      lastError: this.lastError,
      lastNack: this.lastNack,
    };
  }

  /** Restores the persisted configuration (verified again) and connects. */
  async start(): Promise<void> {
    this.wanted = true;
    if (this.options.file && existsSync(this.options.file)) await this.restore(this.options.file);
    this.connect();
    this.lag.start();
  }

  async stop(): Promise<void> {
    this.wanted = false;
    this.lag.stop();
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.call?.cancel();
    this.client?.close();
    await this.queue;
  }

  private connect(): void {
    if (!this.wanted) return;
    const target = this.options.stargates[this.index];
    const { Client } = configStream();
    this.client?.close();
    this.client = new Client(target, grpc.credentials.createInsecure(), CLIENT_OPTIONS);
    const call = this.client.Subscribe();
    this.call = call;
    if (this.options.held) this.good = this.options.held();
    this.latest = this.good;
    this.admitted = false;
    const openedAt = Date.now();
    let untrusted = false;
    let closing = false;
    this.dropStream = (reason) => {
      if (this.call !== call || closing) return;
      [closing, untrusted, this.lastError] = [true, true, reason];
      this.ctx.log.warn({ stargate: target, err: reason }, "configuration stream dropped");
      call.cancel();
    };
    call.on("data", (message: StargateMessage) => {
      this.queue = this.queue
        .then(() => (this.call === call && !closing ? this.handle(call, message) : undefined))
        .catch((error: unknown) => {
          if (this.call !== call || closing) return;
          closing = true;
          this.lastError = messageOf(error);
          untrusted = error instanceof StreamFault && error.untrusted;
          this.ctx.log.warn({ stargate: target, err: this.lastError }, "configuration stream dropped");
          // Half-close first so the Nack just written reaches the stargate; cancel if it does not end the call.
          call.end();
          setTimeout(() => call.cancel(), 1_000).unref();
        });
    });
    call.on("error", (error: grpc.ServiceError) => {
      if (error.code !== grpc.status.CANCELLED) this.lastError = error.details || error.message;
    });
    call.on("status", () => {
      if (this.call !== call) return;
      this.call = null;
      this.connected = false;
      // A stream that stayed up a while was good: the next attempt starts at the shortest back-off.
      if (Date.now() - openedAt > 5_000 && !untrusted) this.backoff = this.options.minBackoffMs ?? 250;
      // An untrusted or failing stargate: the next one of the list (a gap resumes from the same).
      if (untrusted || !this.lastError?.startsWith("gap:"))
        this.index = (this.index + 1) % this.options.stargates.length;
      this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    if (!this.wanted || this.retry) return;
    const max = this.options.maxBackoffMs ?? 10_000;
    const delay = Math.min(max, this.backoff) * (0.5 + Math.random() / 2);
    this.backoff = Math.min(max, this.backoff * 2);
    this.retry = setTimeout(() => {
      this.retry = null;
      this.connect();
    }, delay);
    this.retry.unref();
  }

  private async handle(call: SubscribeClientCall, message: StargateMessage): Promise<void> {
    switch (message.body) {
      case "challenge": {
        const stargate = message.challenge.stargate as Address;
        const nonce = `0x${message.challenge.nonce.toString("hex")}` as Hex;
        if (message.challenge.nonce.length !== 32 || !/^0x[0-9a-fA-F]{40}$/.test(stargate))
          throw new StreamFault("the challenge is malformed", true);
        // A hello signed for a non-stargate could be relayed by it to a real one (R17-10, R17-4).
        if (!this.options.isStargate(stargate))
          throw new StreamFault(`the challenger ${stargate} is not an admitted stargate: no hello`, true);
        this.admitted = true;
        const hello = {
          role: this.options.role,
          url: this.options.url(),
          ...regionFields(this.options.region),
          version: this.good?.version ?? 0,
          seq: seqOf(this.good),
        };
        const signature = await signHello(this.ctx.signer.account, this.ctx.signer.chainId, hello, { stargate, nonce });
        call.write({ body: "hello", hello: { ...hello, node: this.ctx.signer.account.address, signature } });
        this.connected = true;
        this.lastError = null;
        return;
      }
      case "snapshot":
        return this.take(call, await this.verifySnapshot(call, message.snapshot));
      case "delta":
        return this.take(call, await this.verifyDelta(call, message.delta));
      case "catalogue":
        if (!this.admitted) throw new StreamFault("a catalogue before the stargate's challenge", true);
        this.options.applyCatalogue?.(catalogueOf(message.catalogue));
        return;
    }
  }

  private async verifySnapshot(call: SubscribeClientCall, snapshot: SnapshotMsg): Promise<ConfigChange> {
    const { version, document: bytes } = snapshot;
    const refuse = (reason: string) => this.refuse(call, version, 0, reason);
    const held = this.latest?.version ?? 0;
    if (version <= held) return refuse(`version ${version} is not newer than the held ${held}`);
    const hash = documentHash(bytes);
    const anchored = await this.options.anchor.hashOf(version).catch((error: unknown) => {
      throw new StreamFault(`ConfigRegistry could not be read: ${messageOf(error)}`, false);
    });
    if (anchored !== hash)
      return refuse(`version ${version}'s hash ${hash} is not the anchored ${anchored ?? "(none)"}`);
    const document = parseDocument(bytes);
    if (typeof document === "string") return refuse(document);
    if (document.version !== version) return refuse(`the document says version ${document.version}, not ${version}`);
    this.latest = { version, hash, bytes, document, deltas: [], effective: document };
    return { kind: "snapshot", version, hash, bytes, document };
  }

  private async verifyDelta(call: SubscribeClientCall, delta: DeltaMsg): Promise<ConfigChange> {
    const latest = this.latest;
    const refuse = (reason: string) => this.refuse(call, delta.base, delta.seq, reason);
    if (!latest || delta.base !== latest.version || delta.seq !== latest.deltas.length + 1)
      throw new StreamFault(
        `gap: delta ${delta.base}/${delta.seq} does not follow ${latest?.version ?? 0}/${seqOf(latest)}`,
        false,
      );
    const parsed = parseDeltaBody(delta.body);
    if (typeof parsed === "string") return refuse(parsed);
    if (parsed.base !== delta.base || parsed.seq !== delta.seq)
      return refuse("the delta's body names another base or seq");
    if (!/^0x[0-9a-fA-F]{130}$/.test(delta.signature)) return refuse("the delta's signature is malformed");
    const signature = delta.signature as Hex;
    const signer = await recoverDeltaSigner(this.ctx.signer.chainId, parsed, delta.body, signature).catch(
      () => undefined,
    );
    const allowed =
      signer !== undefined &&
      (await this.options.anchor.isDeltaSigner(signer).catch((error: unknown) => {
        throw new StreamFault(`ConfigRegistry could not be read: ${messageOf(error)}`, false);
      }));
    if (!allowed) return refuse(`the delta is signed by ${signer ?? "nobody"}, who holds no DELTA_SIGNER_ROLE`);
    this.latest = {
      ...latest,
      deltas: [...latest.deltas, { body: delta.body, signature, parsed }],
      effective: applyDeltas(latest.effective, [parsed]),
    };
    return { kind: "delta", base: delta.base, seq: delta.seq, body: delta.body, signature, parsed };
  }

  /** Nacks what the stream sent and drops the stream: it is not trusted. */
  private refuse(call: SubscribeClientCall, version: number, seq: number, reason: string): never {
    this.nack(call, version, seq, reason);
    throw new StreamFault(reason, true);
  }

  private nack(call: SubscribeClientCall, version: number, seq: number, reason: string): void {
    this.lastNack = reason.slice(0, MAX_REASON);
    call.write({ body: "nack", nack: { version, seq, reason: this.lastNack } });
  }

  /** Hands the verified configuration to the role: Ack and keep it, or Nack and keep the last good one. */
  private take(call: SubscribeClientCall, change: ConfigChange): void {
    const next = this.latest!;
    try {
      this.options.apply(applied(next), change);
    } catch (error) {
      this.nack(call, next.version, seqOf(next), messageOf(error));
      this.ctx.log.warn({ version: next.version, seq: seqOf(next), reason: this.lastNack }, "configuration refused");
      return;
    }
    this.good = next;
    if (this.options.file) persist(this.options.file, next);
    call.write({ body: "ack", ack: { version: next.version, seq: seqOf(next) } });
  }

  /** Loads the persisted configuration and keeps what verifies again (the anchored hash, each delta's signer). */
  private async restore(file: string): Promise<void> {
    try {
      const saved = JSON.parse(readFileSync(file, "utf8")) as {
        version: number;
        document: string;
        deltas: { body: string; signature: Hex }[];
      };
      const bytes = Buffer.from(saved.document, "base64");
      const document = parseDocument(bytes);
      const hash = documentHash(bytes);
      if (typeof document === "string" || document.version !== saved.version)
        throw new Error("the document is invalid");
      if ((await this.options.anchor.hashOf(saved.version)) !== hash) throw new Error("its hash is not anchored");
      let held: HeldConfig = { version: saved.version, hash, bytes, document, deltas: [], effective: document };
      for (const d of saved.deltas) {
        const body = Buffer.from(d.body, "base64");
        const parsed = parseDeltaBody(body);
        if (typeof parsed === "string" || parsed.base !== held.version || parsed.seq !== held.deltas.length + 1) break;
        const signer = await recoverDeltaSigner(this.ctx.signer.chainId, parsed, body, d.signature).catch(
          () => undefined,
        );
        if (!signer || !(await this.options.anchor.isDeltaSigner(signer))) break;
        held = {
          ...held,
          deltas: [...held.deltas, { body, signature: d.signature, parsed }],
          effective: applyDeltas(held.effective, [parsed]),
        };
      }
      this.options.apply(applied(held), { kind: "snapshot", version: held.version, hash, bytes, document });
      this.good = held;
      this.ctx.log.info({ version: held.version, seq: seqOf(held) }, "configuration restored");
    } catch (error) {
      this.ctx.log.warn({ file, err: messageOf(error) }, "the saved configuration was not restored");
    }
  }
}

/** Writes the configuration atomically (a temporary file renamed over the last). */
function persist(file: string, held: HeldConfig): void {
  mkdirSync(dirname(file), { recursive: true });
  const deltas = held.deltas.map((d) => ({ body: d.body.toString("base64"), signature: d.signature }));
  const saved = { version: held.version, hash: held.hash, document: held.bytes.toString("base64"), deltas };
  writeFileSync(`${file}.tmp`, JSON.stringify(saved));
  renameSync(`${file}.tmp`, file);
}
