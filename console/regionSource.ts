/**
 * Where the Console server's map of regions (GET /api/regions, regionsView.ts) gets its figures, all public:
 *
 * - the stargate's catalogue, `GET <stargate>/health/catalogue`: each endpoint's device, role, health, signed
 *   region and (when the stargates' health probe knows it) load. Fetched server-side, since the page may fetch only
 *   its own server (CSP): within `timeoutMs` and `maxBytes`, no redirects, and checked against CatalogueSchema
 *   before use (a stargate's answer is not trusted to be well formed: a malformed or oversized one is refused);
 * - the chain, through the Console's RPC URL: which devices StakeManager admits and with which stake (the chain
 *   view, offchain/common/chainView.ts, synced on demand), the scores posted for the latest scored epoch
 *   (offchain/common/postedScores.ts) and the yield parameters (offchain/common/apr.ts).
 *
 * A map is kept `ttlMs` (a failure `failureTtlMs`), and at most one is built at a time: concurrent requests share
 * it, so a flood of requests costs the stargate and the RPC one read per `ttlMs` at most. Failures are errors with
 * a status the API answers with: 502 CONSOLE_STARGATE_UNAVAILABLE (unreachable, not 200, too slow, too large, not
 * JSON, malformed) or 502 CONSOLE_CHAIN_UNAVAILABLE (the RPC failed). Nothing here holds a key.
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import { Compile } from "typebox/compile";
import { Agent } from "undici";
import { type Address, type PublicClient, createPublicClient, http } from "viem";

import { getJson } from "../node/roles/stargate/peerFetch";
import { type AddressBook, contractEntry } from "../offchain/common/addressBook";
import { readYieldParams } from "../offchain/common/apr";
import { ChainView } from "../offchain/common/chainView";
import { errorClass, messageOf } from "../offchain/common/errors";
import { PostedScores } from "../offchain/common/postedScores";
import { RegionSchema } from "../offchain/common/protocol/regions";
import { redactUrls } from "../offchain/common/redact";
import { DEFAULT_YIELD_PARAMS } from "../offchain/common/yield";
import { type RegionMap, regionMap } from "./regionsView";

export const CATALOGUE_MAX_BYTES = 8 * 1024 * 1024;
export const CATALOGUE_MAX_ENDPOINTS = 50_000;
export const CATALOGUE_TIMEOUT_MS = 5_000;
export const REGIONS_TTL_MS = 5_000;
export const REGIONS_FAILURE_TTL_MS = 1_000;
/** A load figure above this is not a real one. */
const MAX_LOAD = 1_000_000_000;

export const ConsoleStargateError = errorClass("ConsoleStargateError", "CONSOLE_STARGATE_UNAVAILABLE", 502);
/** The RPC is unreachable or failed (at start: on another chain). */
export const ConsoleChainError = errorClass("ConsoleChainError", "CONSOLE_CHAIN_UNAVAILABLE", 502);
export type ConsoleChainError = InstanceType<typeof ConsoleChainError>;

const LoadSchema = Type.Object({
  inFlight: Type.Number({ minimum: 0, maximum: MAX_LOAD }),
  capacity: Type.Number({ minimum: 0, maximum: MAX_LOAD }),
  queueDepth: Type.Number({ minimum: 0, maximum: MAX_LOAD }),
  p99Ms: Type.Number({ minimum: 0, maximum: MAX_LOAD }),
});

/** The public catalogue as the map reads it (fields it does not read may be added by newer stargates). */
export const CatalogueSchema = Type.Object({
  atMs: Type.Integer({ minimum: 0 }),
  endpoints: Type.Array(
    Type.Object({
      device: Type.String({ pattern: "^0x[0-9a-fA-F]{40}$" }),
      role: Type.String({ maxLength: 16 }),
      url: Type.String({ maxLength: 2048 }),
      healthy: Type.Boolean(),
      region: Type.Optional(RegionSchema),
      load: Type.Optional(LoadSchema),
    }),
    { maxItems: CATALOGUE_MAX_ENDPOINTS },
  ),
});
export type PublicCatalogue = Static<typeof CatalogueSchema>;

/** Compiled once: 50,000 endpoints check in ~50 ms (the interpreted Value.Check takes seconds). */
let compiled: { Check(value: unknown): boolean; Errors(value: unknown): unknown[] } | undefined;

/** Why `value` is not a catalogue (the first problem, with its path), or undefined. */
export function catalogueProblem(value: unknown): string | undefined {
  const endpoints = (value as { endpoints?: unknown } | null)?.endpoints;
  if (Array.isArray(endpoints) && endpoints.length > CATALOGUE_MAX_ENDPOINTS)
    return `at /endpoints: ${endpoints.length} endpoints, over the ${CATALOGUE_MAX_ENDPOINTS} allowed`;
  const check = (compiled ??= Compile(CatalogueSchema) as NonNullable<typeof compiled>);
  if (check.Check(value)) return undefined;
  const first = check.Errors(value)[0] as { instancePath?: string; message?: string } | undefined;
  return `${first?.instancePath ? `at ${first.instancePath}: ` : ""}${first?.message ?? "not a catalogue"}`;
}

export interface RegionSourceOptions {
  /** The stargate's node URL (its GET /health/catalogue is read). */
  stargateUrl: string;
  rpcUrl: string;
  book: AddressBook;
  ttlMs?: number;
  failureTtlMs?: number;
  timeoutMs?: number;
  maxBytes?: number;
  now?: () => number;
}

type Cached = { at: number; map: RegionMap } | { at: number; error: Error };

export class RegionSource {
  /** Catalogue fetches and chain reads started (tests read them). */
  readonly counts = { catalogue: 0, chain: 0 };
  private readonly client: PublicClient;
  private readonly view: ChainView;
  private readonly scores?: PostedScores;
  private readonly rewards?: Address;
  private readonly agent = new Agent({ connections: 2 });
  private readonly catalogueUrl: string;
  private readonly now: () => number;
  private cached?: Cached;
  private building: Promise<RegionMap> | null = null;

  constructor(private readonly options: RegionSourceOptions) {
    this.now = options.now ?? Date.now;
    this.catalogueUrl = `${options.stargateUrl.replace(/\/+$/, "")}/health/catalogue`;
    this.client = createPublicClient({
      transport: http(options.rpcUrl, { retryCount: 0, timeout: 10_000 }),
    }) as PublicClient;
    const staking = contractEntry(options.book, "StakeManager");
    this.view = new ChainView({
      client: this.client,
      stakeManager: staking.address as Address,
      fromBlock: BigInt(staking.blockNumber),
    });
    const rewards = options.book.contracts.RewardsManager;
    if (rewards) {
      this.rewards = rewards.address as Address;
      this.scores = new PostedScores(this.client, this.rewards, BigInt(rewards.blockNumber));
    }
  }

  /** The map, at most `ttlMs` old; throws the last failure for `failureTtlMs`. */
  async map(): Promise<RegionMap> {
    const cached = this.cached;
    if (cached) {
      const age = this.now() - cached.at;
      if ("map" in cached && age < (this.options.ttlMs ?? REGIONS_TTL_MS)) return cached.map;
      if ("error" in cached && age < (this.options.failureTtlMs ?? REGIONS_FAILURE_TTL_MS)) throw cached.error;
    }
    this.building ??= this.build()
      .then(
        (map) => {
          this.cached = { at: this.now(), map };
          return map;
        },
        (error: Error) => {
          this.cached = { at: this.now(), error };
          throw error;
        },
      )
      .finally(() => (this.building = null));
    return this.building;
  }

  async close(): Promise<void> {
    await this.building?.catch(() => {});
    await this.agent.close();
  }

  private async build(): Promise<RegionMap> {
    const [catalogue, chain] = await Promise.all([this.catalogue(), this.chain()]);
    return regionMap({
      endpoints: catalogue.endpoints,
      admitted: (device) => {
        const map = this.view.map;
        const stake = map.isAdmitted(device) ? map.stakeOfDevice(device) : undefined;
        return stake && { stakeId: stake.stakeId, stakeType: stake.stakeType };
      },
      ...chain,
      catalogueAtMs: catalogue.atMs,
      atMs: this.now(),
    });
  }

  private async catalogue(): Promise<PublicCatalogue> {
    this.counts.catalogue += 1;
    const what = "the stargate's catalogue";
    let body: unknown;
    try {
      body = await getJson(
        this.agent,
        this.catalogueUrl,
        this.options.timeoutMs ?? CATALOGUE_TIMEOUT_MS,
        this.options.maxBytes ?? CATALOGUE_MAX_BYTES,
      );
    } catch (error) {
      const reason = error instanceof SyntaxError ? "its answer is not JSON" : redactUrls(firstLine(error));
      throw new ConsoleStargateError(`cannot read ${what} (${redactUrls(this.catalogueUrl)}): ${reason}`);
    }
    const problem = catalogueProblem(body);
    if (problem) throw new ConsoleStargateError(`${what} (${redactUrls(this.catalogueUrl)}) is malformed: ${problem}`);
    return body as PublicCatalogue;
  }

  private async chain() {
    this.counts.chain += 1;
    try {
      await this.view.syncOnce();
      if (!this.scores || !this.rewards)
        return { epoch: null, scores: new Map<bigint, bigint>(), params: DEFAULT_YIELD_PARAMS };
      await this.scores.refresh();
      const epoch = this.scores.latestEpoch();
      const [scores, params] = await Promise.all([
        epoch === null ? new Map<bigint, bigint>() : this.scores.scoresOf(epoch),
        readYieldParams(this.client, this.rewards),
      ]);
      return { epoch, scores, params };
    } catch (error) {
      throw new ConsoleChainError(`cannot read the chain through the Console's RPC: ${redactUrls(firstLine(error))}`);
    }
  }
}

const firstLine = (error: unknown) => messageOf(error).split("\n")[0].slice(0, 300);
