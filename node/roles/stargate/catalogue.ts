/**
 * The stargates' catalogue of endpoints and their health (D55): this stargate's verdicts plus its peers'.
 *
 * - Each stargate serves its own verdicts at `GET /health/verdicts`, signed by its device key (EIP-712
 *   `HealthVerdicts` over the verdicts' canonical JSON hash), re-signed once per interval. A receiver takes a
 *   peer's verdicts only when the signature is canonical and recovers to the stargate the body names, the chain
 *   admits that stargate with a Stargate stake, the body was signed less than 3 intervals ago (and not more than
 *   one interval ahead of the receiver's clock), and it fits in `maxBodyBytes` within `timeoutMs`.
 * - Rule: a verdict is fresh when it was checked less than 3 intervals ago. An endpoint is healthy when the chain
 *   admits it for its role and at least as many stargates with a fresh verdict on it say healthy as say unhealthy
 *   (ties: healthy). So an endpoint is removed only when a strict majority of the stargates that see it say so: one
 *   lying or partitioned stargate cannot remove an endpoint another vouches for, and a stargate alone decides
 *   alone. A stargate that is down has no fresh verdict and simply stops counting: no single point of failure.
 * - Each stargate also checks the endpoints its peers check (admitted ones only), so every stargate votes on
 *   every endpoint, not just on its own configuration subscribers. A peer's verdict counts (as a vote and as a
 *   target) only with the device's own signed hello for its role and URL (helloProofs.ts, R17-5): a lying
 *   stargate cannot make the others probe, or the catalogue name, a URL the device never signed.
 * - The catalogue is rebuilt every min(interval, 1 s) and published (`publish`) only when an endpoint's health,
 *   URL, role, version or region changed, or one came or went. An endpoint's region (D68) is the one its hello
 *   proof signs (this stargate's own subscribers' first, then its peers' proven ones); none: undeclared.
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import type { Registry } from "prom-client";
import { Counter } from "prom-client";
import { Agent } from "undici";
import { Value } from "typebox/value";
import { type Address, type Hex, keccak256 } from "viem";

import type { TypedApp } from "../../../offchain/common/http";
import {
  AddressSchema,
  SignatureSchema,
  canonicalBytes,
  checkSignature,
  regionKey,
  signMessage,
} from "../../../offchain/common/protocol";
import type { Catalogue, CatalogueEndpoint, Signer } from "../../context";
import type { LoadReport } from "../../loadReport";
import type { EndpointRole, HealthTarget, Verdict } from "./health";
import * as proofs from "./helloProofs";
import { getJson } from "./peerFetch";

export const FRESH_INTERVALS = 3;
/** 10,000 verdicts take about 2 MB. */
export const MAX_VERDICTS_BYTES = 8 * 1024 * 1024;

const RoleSchema = Type.Union([Type.Literal("gateway"), Type.Literal("host"), Type.Literal("stargate")]);
const Ms = Type.Integer({ minimum: 0, maximum: 2 ** 52 });
export const PeerVerdictSchema = Type.Object(
  {
    device: AddressSchema,
    role: RoleSchema,
    url: Type.String({ maxLength: 2048, pattern: "^https?://[^\\s]+$" }),
    version: Ms,
    healthy: Type.Boolean(),
    checkedAt: Ms,
    /** The device's signed hello for this role and URL (R17-5); a peer's verdict without one is not taken. */
    hello: Type.Optional(proofs.HelloProofSchema),
  },
  { additionalProperties: false },
);
export const SignedVerdictsSchema = Type.Object(
  {
    stargate: AddressSchema,
    atMs: Ms,
    verdicts: Type.Array(PeerVerdictSchema, { maxItems: 1_000_000 }),
    signature: SignatureSchema,
  },
  { additionalProperties: false },
);
export type PeerVerdict = Omit<Static<typeof PeerVerdictSchema>, "device" | "hello"> & {
  device: Address;
  hello?: proofs.HelloProof;
};
export type SignedVerdicts = Omit<Static<typeof SignedVerdictsSchema>, "stargate" | "verdicts" | "signature"> & {
  stargate: Address;
  verdicts: PeerVerdict[];
  signature: Hex;
};

/** One stargate's verdicts, as the majority rule takes them. */
export interface VerdictSet {
  stargate: string;
  verdicts: readonly PeerVerdict[];
}

const verdictsHash = (verdicts: readonly PeerVerdict[]): Hex => keccak256(canonicalBytes(verdicts));

export const toPeerVerdict = (v: Verdict): PeerVerdict => ({
  device: v.device,
  role: v.role,
  url: v.url,
  version: v.version,
  healthy: v.healthy,
  checkedAt: v.checkedAt,
});

export async function signVerdicts(signer: Signer, atMs: number, verdicts: PeerVerdict[]): Promise<SignedVerdicts> {
  const stargate = signer.account.address;
  const message = { stargate, atMs: BigInt(atMs), verdictsHash: verdictsHash(verdicts) };
  const signature = await signMessage(signer.account, signer.chainId, "HealthVerdicts", message);
  return { stargate, atMs, verdicts, signature };
}

export interface VerifyOptions {
  chainId: number;
  /** Whether the chain admits `stargate` with a Stargate stake. */
  admitsStargate(stargate: Address): boolean;
  nowMs: number;
  intervalMs: number;
}

/** The peer's verdicts, or why they are refused. */
export async function verifyVerdicts(body: unknown, opts: VerifyOptions): Promise<SignedVerdicts | string> {
  if (!Value.Check(SignedVerdictsSchema, body)) return "the verdicts do not match their schema";
  const signed = body as SignedVerdicts;
  const message = { stargate: signed.stargate, atMs: BigInt(signed.atMs), verdictsHash: verdictsHash(signed.verdicts) };
  const check = await checkSignature(opts.chainId, "HealthVerdicts", message, signed.signature as Hex, signed.stargate);
  if (!check.ok) return check.message;
  if (!opts.admitsStargate(signed.stargate)) return `${signed.stargate} is not an admitted stargate`;
  const age = opts.nowMs - signed.atMs;
  if (age >= FRESH_INTERVALS * opts.intervalMs) return `the verdicts are stale (signed ${age} ms ago)`;
  if (age < -opts.intervalMs) return `the verdicts are signed ${-age} ms in the future`;
  return signed;
}

export interface MajorityOptions {
  nowMs: number;
  intervalMs: number;
  /** Whether the chain admits `device` for `role`. */
  admits(device: Address, role: EndpointRole): boolean;
}

/**
 * The majority rule over stargates' verdict sets (one set per distinct stargate; the first set's details win, so
 * pass this stargate's own set first). Endpoints sorted by device.
 */
export function majority(sets: readonly VerdictSet[], opts: MajorityOptions): CatalogueEndpoint[] {
  const maxAge = FRESH_INTERVALS * opts.intervalMs;
  const tally = new Map<string, { yes: number; no: number; first: PeerVerdict; source: number; voter: number }>();
  const stargates = new Set<string>();
  sets.forEach((set, source) => {
    const stargate = set.stargate.toLowerCase();
    if (stargates.has(stargate)) return; // one set per stargate
    stargates.add(stargate);
    for (const v of set.verdicts) {
      const age = opts.nowMs - v.checkedAt;
      if (age >= maxAge || age < -opts.intervalMs) continue;
      const key = v.device.toLowerCase();
      let entry = tally.get(key);
      if (!entry) tally.set(key, (entry = { yes: 0, no: 0, first: v, source, voter: -1 }));
      if (entry.voter === source) continue; // one vote per stargate, however often a set lists the endpoint
      entry.voter = source;
      // Details from this stargate's own verdict (set 0), else from the freshest peer's.
      if (entry.source !== 0 && v.checkedAt > entry.first.checkedAt) {
        entry.first = v;
        entry.source = source;
      }
      if (v.healthy) entry.yes++;
      else entry.no++;
    }
  });
  const keys = [...tally.keys()].sort();
  return keys.map((key) => {
    const { yes, no, first } = tally.get(key)!;
    return {
      device: first.device,
      role: first.role,
      url: first.url,
      version: first.version,
      healthy: yes >= no && opts.admits(first.device, first.role),
      ...(first.hello?.region ? { region: first.hello.region } : {}), // signed by the device (D68)
    };
  });
}

const keyOf = (e: CatalogueEndpoint) => (e.region ? regionKey(e.region) : "");
const sameEndpoint = (a: CatalogueEndpoint, b: CatalogueEndpoint) =>
  a.device === b.device &&
  a.role === b.role &&
  a.url === b.url &&
  a.healthy === b.healthy &&
  a.version === b.version &&
  keyOf(a) === keyOf(b);

export function sameEndpoints(a: readonly CatalogueEndpoint[], b: readonly CatalogueEndpoint[]): boolean {
  return a.length === b.length && a.every((e, i) => sameEndpoint(e, b[i]));
}

export interface CatalogueOptions {
  signer: Signer;
  /** Whether the chain admits `device` for `role` (StakeType by role). */
  admits(device: Address, role: EndpointRole): boolean;
  /** This stargate's own verdicts (the health checker's). */
  ownVerdicts(): Verdict[];
  /** The hellos this stargate's subscribers signed (ConfigServer.helloProofs), relayed with its verdicts. */
  helloProofs?(): proofs.ProvenHellos;
  /** Peer stargates' HTTP base URLs (--peers). */
  peers: readonly string[];
  intervalMs: number;
  /** Called with each new catalogue (only when it changed). */
  publish?(catalogue: Catalogue): void;
  /** An endpoint's load from this stargate's own last check (D71), added to GET /health/catalogue's answer only. */
  loadOf?(device: Address): LoadReport | undefined;
  onPeerError?(peer: string, message: string): void;
  registry?: Registry;
  timeoutMs?: number;
  maxBodyBytes?: number;
  now?: () => number;
}

interface PeerState {
  url: string;
  stargate?: Address;
  atMs?: number;
  error?: string;
  unproven?: number; // verdicts of its last body dropped for want of a valid hello proof (R17-5)
}

/** Signs and serves this stargate's verdicts, fetches its peers', and keeps the catalogue by the majority rule. */
export class CatalogueProducer {
  private readonly agent: Agent;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;
  /** Fresh peers' verified verdicts, by stargate (lower case). */
  private readonly peerSets = new Map<string, SignedVerdicts>();
  private readonly peerStates: PeerState[];
  private signed: { atMs: number; json: string } | undefined;
  private current: Catalogue = { atMs: 0, endpoints: [] };
  private published = 0;
  private readonly fetches?: Counter<"result">;
  private readonly proofs: proofs.HelloProofChecker;

  constructor(private readonly opts: CatalogueOptions) {
    this.proofs = new proofs.HelloProofChecker(opts.signer.chainId, opts.admits);
    this.now = opts.now ?? Date.now;
    this.timeoutMs = opts.timeoutMs ?? 2_000;
    this.maxBodyBytes = opts.maxBodyBytes ?? MAX_VERDICTS_BYTES;
    this.peerStates = opts.peers.map((url) => ({ url: url.replace(/\/+$/, "") }));
    this.agent = new Agent({
      connections: 1,
      keepAliveTimeout: 2 * opts.intervalMs + this.timeoutMs,
      connect: { timeout: this.timeoutMs },
    });
    if (opts.registry) {
      this.fetches = new Counter({
        name: "edge_health_peer_fetches_total",
        help: "Fetches of peer stargates' verdicts by result (ok, refused: bad signer, stale, malformed; failed)",
        labelNames: ["result"],
        registers: [opts.registry],
      });
    }
  }

  register(app: TypedApp): void {
    app.get("/health/verdicts", async (_request, reply) => {
      const signed = this.signed ?? (await this.sign());
      reply.header("content-type", "application/json; charset=utf-8");
      return reply.send(signed.json);
    });
    app.get("/health/catalogue", async () => this.withLoad());
  }

  catalogue(): Catalogue {
    return this.current;
  }

  /** The endpoints fresh peer verdicts name that the chain admits: this stargate checks them too. */
  peerTargets(): HealthTarget[] {
    const seen = new Set<string>();
    const targets: HealthTarget[] = [];
    const maxAge = FRESH_INTERVALS * this.opts.intervalMs;
    const nowMs = this.now();
    for (const set of this.peerSets.values()) {
      for (const v of set.verdicts) {
        const key = v.device.toLowerCase();
        if (seen.has(key) || nowMs - v.checkedAt >= maxAge || !this.opts.admits(v.device, v.role)) continue;
        seen.add(key);
        targets.push({ device: v.device, role: v.role, url: v.url, version: v.version });
      }
    }
    return targets;
  }

  status(): Record<string, unknown> {
    const healthy = this.current.endpoints.filter((e) => e.healthy).length;
    return {
      endpoints: this.current.endpoints.length,
      healthy,
      atMs: this.current.atMs,
      published: this.published,
      peers: this.peerStates.map((p) => ({ ...p })),
    };
  }

  /** One pass: re-sign this stargate's verdicts and fetch the peers' (once per interval), then rebuild. */
  async pass(): Promise<void> {
    const nowMs = this.now();
    if (!this.signed || nowMs - this.signed.atMs >= this.opts.intervalMs) {
      await this.sign();
      await Promise.all(this.peerStates.map((peer) => this.fetchPeer(peer)));
    }
    this.rebuild();
  }

  /** Rebuilds the catalogue from the verdicts held now; publishes it when it changed. */
  rebuild(): Catalogue {
    const nowMs = this.now();
    const maxAge = FRESH_INTERVALS * this.opts.intervalMs;
    for (const [key, set] of this.peerSets) if (nowMs - set.atMs >= maxAge) this.peerSets.delete(key);
    const own: VerdictSet = { stargate: this.opts.signer.account.address, verdicts: this.ownWithProofs() };
    const endpoints = majority([own, ...this.peerSets.values()], {
      nowMs,
      intervalMs: this.opts.intervalMs,
      admits: this.opts.admits,
    });
    if (this.current.atMs !== 0 && sameEndpoints(endpoints, this.current.endpoints)) return this.current;
    this.current = { atMs: nowMs, endpoints };
    this.published++;
    this.opts.publish?.(this.current);
    return this.current;
  }

  async close(): Promise<void> {
    await this.agent.destroy();
  }

  private async sign(): Promise<{ atMs: number; json: string }> {
    const atMs = this.now();
    const body = await signVerdicts(this.opts.signer, atMs, this.ownWithProofs());
    this.signed = { atMs, json: JSON.stringify(body) };
    return this.signed;
  }

  /** This stargate's verdicts, each with the device's signed hello (its subscribers', then its peers' proven). */
  /**
   * The catalogue with each endpoint's load as this stargate last measured it (D71). Load is never part of the
   * catalogue itself: it changes at every check, and the catalogue is published only when health changes.
   */
  withLoad(): Catalogue {
    const loadOf = this.opts.loadOf;
    if (!loadOf) return this.current;
    const endpoints = this.current.endpoints.map((e) => {
      const load = loadOf(e.device);
      return load ? { ...e, load } : e;
    });
    return { atMs: this.current.atMs, endpoints };
  }

  private ownWithProofs(): PeerVerdict[] {
    const mine = this.opts.helloProofs?.() ?? new Map();
    const peers = proofs.proofsIn([...this.peerSets.values()].map((set) => set.verdicts));
    return proofs.withProofs(this.opts.ownVerdicts().map(toPeerVerdict), mine, peers);
  }

  private async fetchPeer(peer: PeerState): Promise<void> {
    try {
      const body = await getJson(this.agent, `${peer.url}/health/verdicts`, this.timeoutMs, this.maxBodyBytes);
      const verified = await verifyVerdicts(body, {
        chainId: this.opts.signer.chainId,
        admitsStargate: (stargate) => this.opts.admits(stargate, "stargate"),
        nowMs: this.now(),
        intervalMs: this.opts.intervalMs,
      });
      if (typeof verified === "string") {
        this.fetches?.inc({ result: "refused" });
        return this.peerFailed(peer, verified);
      }
      const key = verified.stargate.toLowerCase();
      if (key === this.opts.signer.account.address.toLowerCase()) return this.peerFailed(peer, "it is this stargate");
      const held = this.peerSets.get(key);
      const proven = await this.proofs.proven(verified.verdicts);
      if (!held || held.atMs <= verified.atMs) this.peerSets.set(key, { ...verified, verdicts: proven });
      const unproven = verified.verdicts.length - proven.length;
      Object.assign(peer, { stargate: verified.stargate, atMs: verified.atMs, error: undefined, unproven });
      this.fetches?.inc({ result: "ok" });
    } catch (error) {
      this.fetches?.inc({ result: "failed" });
      this.peerFailed(peer, (error as Error).message);
    }
  }

  private peerFailed(peer: PeerState, message: string): void {
    peer.error = message;
    this.opts.onPeerError?.(peer.url, message);
  }
}
