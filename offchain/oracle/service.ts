/**
 * The score oracle service.
 *
 * - Ingestion: gateways POST signed job reports, stargates signed heartbeats (EIP-712, offchain/common/messages).
 *   Each is verified, checked against the chain view (the sender must hold a stake of its kind), stored once in
 *   SQLite, and relayed to peer instances.
 * - Closing: once an epoch has ended plus the grace period, a second chain view, which only ever advances to the
 *   last block before an epoch's end, gives the admitted set at that end; the epoch is scored (./scoring) and cut
 *   into batches of (stake id, score), all saved in one transaction.
 * - Posting: each batch is signed by this instance's committee keys and, up to the threshold, by peers that
 *   recompute the same batch from their own data; the transaction goes through TxSender (persisted before it is
 *   broadcast). The chain is asked first (`isBatchPosted`), so a restart never posts a batch twice.
 * - Transparency: every epoch's inputs and results over HTTP in the recompute CLI's own formats.
 */
import type { FastifyBaseLogger } from "fastify";
import { Type } from "@fastify/type-provider-typebox";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import {
  type Address,
  type Hex,
  type PublicClient,
  type TypedDataDomain,
  createPublicClient,
  encodeFunctionData,
  http,
} from "viem";
import { type PrivateKeyAccount, privateKeyToAccount } from "viem/accounts";

import { rewardsManagerAbi } from "../common/generated/abis";
import { type AddressBook, contractEntry, readAddressBook } from "../common/addressBook";
import { toBatches } from "../common/batches";
import { lastBlockBefore } from "../common/blocks";
import { ChainView } from "../common/chainView";
import { type TypedApp, createServiceApp } from "../common/http";
import {
  ErrorReplySchema,
  HeartbeatBodySchema,
  JobReportBodySchema,
  SignReplySchema,
  SignRequestBodySchema,
  SmallDecimalSchema,
  canonicalDecimal,
  verifyHeartbeat,
  verifyJobReport,
} from "../common/protocol";
import { SCORE_BATCH_TYPES, entriesHash as packedEntriesHash, packEntries } from "../common/scoreBatch";
import { StakeType } from "../common/stakeMap";
import { TxSender } from "../common/txSender";
import { errorFactory } from "../common/errors";
import { WorkLoop } from "../common/workLoop";
import type { OracleConfig } from "./config";
import { type AdmittedInput, type Score, scoreEpoch } from "./scoring";
import { OracleStore } from "./store";

export const ORACLE_ERRORS = {
  ORACLE_EPOCH_IN_FUTURE: 400,
  ORACLE_EPOCH_MISMATCH: 400,
  ORACLE_DUPLICATE_HOST: 400,
  ORACLE_JOBS_OUT_OF_RANGE: 400,
  ORACLE_TIMESTAMP_OUT_OF_RANGE: 400,
  ORACLE_BAD_SIGNATURE: 401,
  ORACLE_SENDER_NOT_STAKED: 403,
  ORACLE_SENDER_NOT_ADMITTED: 403,
  ORACLE_EPOCH_CLOSED: 409,
  ORACLE_REPORT_CONFLICT: 409,
  ORACLE_EPOCH_NOT_CLOSED: 409,
  ORACLE_BATCH_MISMATCH: 409,
  ORACLE_UNKNOWN_EPOCH: 404,
} as const;

export const oracleError = errorFactory(ORACLE_ERRORS);

const EpochParams = Type.Object({ epoch: SmallDecimalSchema });

/** Clock tolerance for heartbeat timestamps. */
const CLOCK_SKEW_SECONDS = 300n;

export interface OracleDeps {
  logger?: FastifyBaseLogger;
  now?: () => number;
}

export class OracleService {
  readonly app: TypedApp;
  readonly store: OracleStore;
  private readonly client: PublicClient;
  private readonly view: ChainView;
  private readonly epochView: ChainView;
  private readonly signers: PrivateKeyAccount[];
  private readonly sender: TxSender | null;
  private readonly registry = new Registry();
  private readonly metrics;
  private readonly rewards: Address;
  private readonly now: () => number;
  private domain: TypedDataDomain | null = null;
  private lastEndBlock = 0n;
  private headTime = 0n;
  private stopView?: () => Promise<void>;
  private readonly loop: WorkLoop;

  private constructor(
    private readonly config: OracleConfig,
    book: AddressBook,
    private readonly chainId: number,
    private readonly epochs: { genesis: bigint; duration: bigint },
    deps: OracleDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.app = createServiceApp({
      name: "oracle",
      codePrefix: "ORACLE",
      logLevel: config.logLevel,
      logger: deps.logger,
      openapi: {
        title: "Edge Network score oracle",
        description: "Signed job reports and heartbeats in; every epoch's inputs and scores out.",
      },
      registry: this.registry,
      onRejected: (route, code) => {
        const counter =
          route === "/reports" ? this.metrics.reports : route === "/heartbeats" ? this.metrics.heartbeats : null;
        counter?.inc({ outcome: `rejected_${code.toLowerCase()}` });
      },
      routes: (api) => this.routes(api),
    });
    this.store = new OracleStore(config.db);
    this.client = createPublicClient({
      transport: http(config.rpc, { retryCount: 0, timeout: 30_000 }),
    }) as PublicClient;
    const staking = contractEntry(book, "StakeManager");
    this.rewards = contractEntry(book, "RewardsManager").address as Address;
    const viewOptions = {
      client: this.client,
      stakeManager: staking.address as Address,
      fromBlock: BigInt(staking.blockNumber),
      pollIntervalMs: config.pollIntervalMs,
    };
    this.view = new ChainView({
      ...viewOptions,
      confirmations: config.confirmations,
      logger: this.app.log.child({ component: "view" }),
    });
    // Advanced only to epoch ends (it never needs confirmations: the closer caps it below the confirmed head).
    this.epochView = new ChainView({
      ...viewOptions,
      confirmations: 0,
      logger: this.app.log.child({ component: "epoch-view" }),
    });
    this.signers = config.keys.map((key) => privateKeyToAccount(key as Hex));
    const submitterKey = config.submitterKey ?? config.keys[0];
    this.sender =
      config.submit && submitterKey
        ? new TxSender(
            this.store.db,
            this.client,
            privateKeyToAccount(submitterKey as Hex),
            chainId,
            this.app.log.child({ component: "tx" }),
          )
        : null;
    this.metrics = this.createMetrics();
    this.loop = new WorkLoop(
      () => this.work(),
      config.pollIntervalMs,
      (error) => this.app.log.warn({ err: error.message.split("\n")[0] }, "oracle work failed; retrying"),
    );
  }

  /** Reads the address book and the chain's epochs; builds the service (not started). */
  static async create(config: OracleConfig, deps: OracleDeps = {}): Promise<OracleService> {
    const book = readAddressBook(config.addresses);
    const client = createPublicClient({ transport: http(config.rpc, { retryCount: 2, timeout: 10_000 }) });
    const chainId = await client.getChainId();
    if (chainId !== book.chainId)
      throw new Error(`the RPC serves chain ${chainId} but ${config.addresses} is for chain ${book.chainId}`);
    const rewards = contractEntry(book, "RewardsManager").address as Address;
    const [genesis, duration] = await Promise.all([
      client.readContract({ address: rewards, abi: rewardsManagerAbi, functionName: "genesis" }),
      client.readContract({ address: rewards, abi: rewardsManagerAbi, functionName: "epochDuration" }),
    ]);
    return new OracleService(config, book, chainId, { genesis, duration }, deps);
  }

  epochAt(seconds: bigint): bigint {
    return seconds < this.epochs.genesis ? 0n : (seconds - this.epochs.genesis) / this.epochs.duration;
  }

  window(epoch: bigint): { start: bigint; end: bigint } {
    const start = this.epochs.genesis + epoch * this.epochs.duration;
    return { start, end: start + this.epochs.duration };
  }

  /**
   * The present for ingestion: the wall clock, or the chain's head time if that is ahead (a devnet whose time was
   * moved forward). Closing goes by the chain alone, so every instance closes an epoch at the same block.
   */
  private nowSeconds(): bigint {
    const wall = BigInt(Math.floor(this.now() / 1000));
    return wall > this.headTime ? wall : this.headTime;
  }

  async start(): Promise<string> {
    this.headTime = (await this.client.getBlock({ blockTag: "latest" })).timestamp;
    if (this.store.getMeta("firstEpoch") === undefined) {
      this.store.setMeta("firstEpoch", String(this.config.firstEpoch ?? this.epochAt(this.nowSeconds())));
    }
    await this.sender?.reconcile();
    await this.view
      .syncOnce()
      .catch((error: Error) => this.app.log.warn({ err: error.message }, "initial sync failed; retrying"));
    this.stopView = this.view.start();
    const url = await this.app.listen({ host: this.config.listenHost, port: this.config.port });
    this.loop.start();
    this.app.log.info(
      { url, firstEpoch: this.store.getMeta("firstEpoch"), signers: this.signers.map((s) => s.address) },
      "oracle started",
    );
    return url;
  }

  async close(): Promise<void> {
    await this.loop.stop();
    await this.stopView?.();
    await this.app.close();
    this.store.close();
  }

  /** One pass of the background work; the loop never runs two at once. */
  async work(): Promise<void> {
    await this.sender?.reconcile();
    await this.closeDueEpochs();
    await this.postClosedEpochs();
    await this.flushRelay();
  }

  // ------------------------------------------------------------------------------------------ closing

  private async closeDueEpochs(): Promise<void> {
    const first = BigInt(this.store.getMeta("firstEpoch") ?? "0");
    const last = this.store.lastClosedEpoch();
    let epoch = last === undefined ? first : BigInt(last) + 1n;
    this.headTime = (await this.client.getBlock({ blockTag: "latest" })).timestamp;
    while (this.window(epoch).end + BigInt(this.config.graceSeconds) <= this.headTime) {
      if (!(await this.closeEpoch(epoch))) return;
      epoch += 1n;
    }
  }

  /** Scores one ended epoch and saves it with its batches. False when the chain is not far enough yet. */
  async closeEpoch(epoch: bigint): Promise<boolean> {
    const { end } = this.window(epoch);
    const endBlock = await lastBlockBefore(this.client, end, this.lastEndBlock);
    const head = await this.client.getBlockNumber();
    // The epoch's last block is final once a later block exists (so no more can join the epoch) and is buried
    // under `confirmations` more.
    if (endBlock < 0n || head < endBlock + 1n + BigInt(this.config.confirmations)) return false;
    await this.epochView.syncOnce(endBlock);
    if (this.epochView.cursor?.number !== endBlock) return false;
    this.lastEndBlock = endBlock;
    const map = this.epochView.map;
    const admitted: AdmittedInput = { hosts: [], gateways: [], stargates: [] };
    for (const device of map.devices()) {
      if (!device.admitted) continue;
      const list =
        device.stakeType === StakeType.Host
          ? admitted.hosts
          : device.stakeType === StakeType.Gateway
            ? admitted.gateways
            : admitted.stargates;
      list.push(device.device);
    }
    for (const list of Object.values(admitted)) list.sort();
    const e = Number(epoch);
    const scores = scoreEpoch(epoch, this.store.reports(e), admitted, this.store.heartbeats(e));
    const stakes: Record<string, string> = {};
    const entries = scores
      .map((s) => {
        const stakeId = map.stakeOfDevice(s.device)!.stakeId;
        stakes[s.device] = stakeId.toString();
        return { stakeId, score: BigInt(s.score) };
      })
      .sort((a, b) => (a.stakeId < b.stakeId ? -1 : 1));
    const batches = toBatches(entries, this.config.batchSize).map((batch) => {
      const packed = packEntries(batch);
      return { entries: packed, entriesHash: packedEntriesHash(packed) };
    });
    this.store.saveClosedEpoch(
      {
        epoch: e,
        status: "closed",
        endBlock: Number(endBlock),
        admitted,
        scores,
        stakes,
        closedAt: this.now(),
        postedAt: null,
      },
      batches,
    );
    if (batches.length === 0) this.store.markEpochPosted(e, this.now());
    this.app.log.info(
      { epoch: e, endBlock: Number(endBlock), scores: scores.length, batches: batches.length },
      "epoch closed",
    );
    return true;
  }

  // ------------------------------------------------------------------------------------------ posting

  private async postClosedEpochs(): Promise<void> {
    for (const epoch of this.store.unpostedEpochs()) {
      const record = this.store.epoch(epoch)!;
      let allPosted = true;
      for (const batch of this.store.batches(epoch)) {
        if (batch.posted) continue;
        const onChain = await this.client.readContract({
          address: this.rewards,
          abi: rewardsManagerAbi,
          functionName: "isBatchPosted",
          args: [BigInt(epoch), BigInt(batch.batchIndex)],
        });
        if (onChain) {
          const mined = this.sender?.byPurpose(this.purpose(epoch, batch.batchIndex)).find((t) => t.status === "mined");
          this.store.markBatchPosted(epoch, batch.batchIndex, mined?.minedHash ?? null);
          continue;
        }
        allPosted = false;
        if (!this.sender) continue; // a signing-only instance: another one submits
        await this.postBatch(epoch, batch.batchIndex, batch.entries as Hex);
      }
      if (allPosted) {
        this.store.markEpochPosted(epoch, this.now());
        this.metrics.postingDuration.observe((this.now() - record.closedAt) / 1000);
        this.app.log.info({ epoch }, "epoch posted");
      }
    }
  }

  private purpose(epoch: number, batchIndex: number): string {
    return `scores:${epoch}:${batchIndex}`;
  }

  private async postBatch(epoch: number, batchIndex: number, entries: Hex): Promise<void> {
    const signatures = await this.collectSignatures(epoch, batchIndex, entries);
    const [, threshold] = await this.committee();
    if (signatures.length < threshold) {
      this.app.log.warn(
        { epoch, batchIndex, have: signatures.length, threshold },
        "not enough committee signatures yet",
      );
      return;
    }
    const data = encodeFunctionData({
      abi: rewardsManagerAbi,
      functionName: "postScores",
      args: [BigInt(epoch), BigInt(batchIndex), entries, signatures],
    });
    const record = await this.sender!.send(this.purpose(epoch, batchIndex), this.rewards, data);
    const receipt = await this.sender!.wait(record);
    if (receipt.status === "success") {
      this.store.markBatchPosted(epoch, batchIndex, receipt.transactionHash);
      this.app.log.info({ epoch, batchIndex, tx: receipt.transactionHash }, "batch posted");
    }
  }

  private async committee(): Promise<[readonly Address[], number, bigint]> {
    const [members, threshold, version] = await this.client.readContract({
      address: this.rewards,
      abi: rewardsManagerAbi,
      functionName: "committee",
    });
    return [members, Number(threshold), version];
  }

  /** Signatures of this instance's keys that are current committee members. */
  async localSignatures(
    epoch: number,
    batchIndex: number,
    entries: Hex,
  ): Promise<Array<{ signer: Address; signature: Hex }>> {
    const [members, , version] = await this.committee();
    const current = new Set(members.map((m) => m.toLowerCase()));
    this.domain ??= await this.rewardsDomain();
    const message = {
      epoch: BigInt(epoch),
      batchIndex: BigInt(batchIndex),
      entriesHash: packedEntriesHash(entries),
      committeeVersion: version,
    };
    const out: Array<{ signer: Address; signature: Hex }> = [];
    for (const account of this.signers) {
      if (!current.has(account.address.toLowerCase())) continue;
      out.push({
        signer: account.address,
        signature: await account.signTypedData({
          domain: this.domain,
          types: SCORE_BATCH_TYPES,
          primaryType: "ScoreBatch",
          message,
        }),
      });
    }
    return out;
  }

  private async collectSignatures(epoch: number, batchIndex: number, entries: Hex): Promise<Hex[]> {
    const [, threshold] = await this.committee();
    const bySigner = new Map<string, Hex>();
    for (const s of await this.localSignatures(epoch, batchIndex, entries))
      bySigner.set(s.signer.toLowerCase(), s.signature);
    for (const peer of this.config.peers) {
      if (bySigner.size >= threshold) break;
      try {
        const response = await fetch(`${peer.replace(/\/$/, "")}/sign`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ epoch: String(epoch), batchIndex: String(batchIndex), entries }),
          signal: AbortSignal.timeout(10_000),
        });
        const body = (await response.json()) as {
          signatures?: Array<{ signer: string; signature: Hex }>;
          error?: string;
        };
        if (!response.ok) {
          this.app.log.info(
            { peer, epoch, batchIndex, status: response.status, error: body.error },
            "peer did not sign",
          );
          continue;
        }
        for (const s of body.signatures ?? []) bySigner.set(s.signer.toLowerCase(), s.signature);
      } catch (error) {
        this.app.log.warn({ peer, err: (error as Error).message }, "peer unreachable for signing");
      }
    }
    return [...bySigner.values()].slice(0, Math.max(threshold, 1));
  }

  private async rewardsDomain(): Promise<TypedDataDomain> {
    const [, name, version, chainId, verifyingContract] = await this.client.readContract({
      address: this.rewards,
      abi: rewardsManagerAbi,
      functionName: "eip712Domain",
    });
    return { name, version, chainId: Number(chainId), verifyingContract };
  }

  // ------------------------------------------------------------------------------------------ relay

  private async flushRelay(): Promise<void> {
    for (const item of this.store.relayItems()) {
      try {
        const response = await fetch(`${item.peer.replace(/\/$/, "")}${item.path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: item.body,
          signal: AbortSignal.timeout(5_000),
        });
        // Delivered, or refused for a reason resending cannot fix (the peer logs it): either way done.
        if (response.status < 500) this.store.dropRelay(item.id);
      } catch {
        return; // unreachable: keep the queue and its order, retry next pass
      }
    }
  }

  // ------------------------------------------------------------------------------------------ HTTP

  private createMetrics() {
    const registry = this.registry;
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    gauge(
      "edge_oracle_last_closed_epoch",
      "The latest epoch closed and scored",
      () => this.store.lastClosedEpoch() ?? -1,
    );
    gauge(
      "edge_oracle_last_posted_epoch",
      "The latest epoch whose scores are all on-chain",
      () => this.store.lastPostedEpoch() ?? -1,
    );
    gauge(
      "edge_oracle_pending_transactions",
      "Transactions sent and not yet mined",
      () => this.sender?.pending().length ?? 0,
    );
    gauge("edge_oracle_relay_pending", "Reports and heartbeats waiting to be relayed to peers", () =>
      this.store.relayPending(),
    );
    gauge(
      "edge_oracle_sync_staleness_seconds",
      "Seconds since the chain view last synced",
      () => (this.view.status().stalenessMs ?? NaN) / 1000,
    );
    return {
      reports: new Counter({
        name: "edge_oracle_reports_total",
        help: "Job reports by outcome",
        labelNames: ["outcome"],
        registers: [registry],
      }),
      heartbeats: new Counter({
        name: "edge_oracle_heartbeats_total",
        help: "Heartbeats by outcome",
        labelNames: ["outcome"],
        registers: [registry],
      }),
      postingDuration: new Histogram({
        name: "edge_oracle_posting_duration_seconds",
        help: "From closing an epoch to all its scores being on-chain",
        buckets: [1, 5, 10, 30, 60, 300, 900, 3600],
        registers: [registry],
      }),
    };
  }

  /** The sender must be bound to a stake of its kind that is admitted now (in the confirmed chain view). */
  private requireAdmitted(device: string, kind: StakeType): void {
    const stake = this.view.map.stakeOfDevice(device);
    const name = StakeType[kind].toLowerCase();
    if (!stake || stake.stakeType !== kind || stake.phase === "released")
      throw oracleError("ORACLE_SENDER_NOT_STAKED", `${device} holds no ${name} stake`);
    if (!this.view.map.isAdmitted(device))
      throw oracleError("ORACLE_SENDER_NOT_ADMITTED", `${device}'s ${name} stake is not admitted`);
  }

  private epochOpen(epoch: bigint): void {
    const current = this.epochAt(this.nowSeconds());
    if (epoch > current)
      throw oracleError("ORACLE_EPOCH_IN_FUTURE", `epoch ${epoch} has not started (current ${current})`);
    const first = BigInt(this.store.getMeta("firstEpoch") ?? "0");
    if (epoch < first || this.store.epoch(Number(epoch))) {
      throw oracleError("ORACLE_EPOCH_CLOSED", `epoch ${epoch} is closed: it no longer takes reports`);
    }
  }

  private routes(app: TypedApp): void {
    app.post(
      "/reports",
      {
        schema: {
          summary: "Submit a gateway's signed job report",
          body: JobReportBodySchema,
          response: { 200: Type.Object({ status: Type.String() }), "4xx": ErrorReplySchema },
        },
      },
      async (request) => {
        const body = request.body;
        const epoch = BigInt(body.epoch);
        this.epochOpen(epoch);
        const hosts = new Set<string>();
        // Stored and published canonical: lowercase hosts, job counts without leading zeros.
        const entries = body.entries.map((entry) => {
          const host = entry.host.toLowerCase();
          if (hosts.has(host)) throw oracleError("ORACLE_DUPLICATE_HOST", `host ${entry.host} appears twice`);
          hosts.add(host);
          return { host, jobs: canonicalDecimal(entry.jobs) };
        });
        let verified: { signed: boolean; entriesHash: Hex };
        try {
          verified = await verifyJobReport(this.chainId, { ...body, entries });
        } catch (error) {
          if (error instanceof RangeError) throw oracleError("ORACLE_JOBS_OUT_OF_RANGE", error.message);
          throw error;
        }
        const { entriesHash } = verified;
        if (!verified.signed) throw oracleError("ORACLE_BAD_SIGNATURE", "the report is not signed by its gateway");
        this.requireAdmitted(body.gateway, StakeType.Gateway);
        const outcome = this.store.insertReport(
          {
            gateway: body.gateway.toLowerCase(),
            epoch: Number(epoch),
            sequence: Number(body.sequence),
            entries,
            entriesHash,
            signature: body.signature,
            receivedAt: this.now(),
          },
          { peers: this.config.peers, body },
        );
        if (outcome === "conflict") {
          throw oracleError(
            "ORACLE_REPORT_CONFLICT",
            "another report with this gateway, epoch and sequence was accepted",
          );
        }
        this.metrics.reports.inc({ outcome: outcome === "inserted" ? "accepted" : "duplicate" });
        return { status: outcome === "inserted" ? "accepted" : "duplicate" };
      },
    );

    app.post(
      "/heartbeats",
      {
        schema: {
          summary: "Submit a stargate's signed heartbeat",
          body: HeartbeatBodySchema,
          response: { 200: Type.Object({ status: Type.String() }), "4xx": ErrorReplySchema },
        },
      },
      async (request) => {
        const body = request.body;
        const epoch = BigInt(body.epoch);
        const timestamp = BigInt(body.timestamp);
        this.epochOpen(epoch);
        const { start, end } = this.window(epoch);
        if (timestamp < start || timestamp >= end)
          throw oracleError("ORACLE_EPOCH_MISMATCH", `timestamp ${timestamp} is not in epoch ${epoch}`);
        const now = this.nowSeconds();
        if (timestamp > now + CLOCK_SKEW_SECONDS || timestamp < now - this.epochs.duration - CLOCK_SKEW_SECONDS) {
          throw oracleError("ORACLE_TIMESTAMP_OUT_OF_RANGE", "the heartbeat's timestamp is too far from now");
        }
        if (!(await verifyHeartbeat(this.chainId, body)))
          throw oracleError("ORACLE_BAD_SIGNATURE", "the heartbeat is not signed by its stargate");
        this.requireAdmitted(body.stargate, StakeType.Stargate);
        const outcome = this.store.insertHeartbeat(
          {
            stargate: body.stargate.toLowerCase(),
            epoch: Number(epoch),
            timestamp: Number(timestamp),
            signature: body.signature,
          },
          { peers: this.config.peers, body },
        );
        this.metrics.heartbeats.inc({ outcome: outcome === "inserted" ? "accepted" : "duplicate" });
        return { status: outcome === "inserted" ? "accepted" : "duplicate" };
      },
    );

    app.post(
      "/sign",
      {
        schema: {
          summary: "Peer signing: signs a batch only if it equals this instance's own",
          body: SignRequestBodySchema,
          response: { 200: SignReplySchema, "4xx": ErrorReplySchema },
        },
      },
      async (request) => {
        const body = request.body;
        const epoch = Number(body.epoch);
        const batch = this.store.batches(epoch)[Number(body.batchIndex)];
        if (!this.store.epoch(epoch) || !batch)
          throw oracleError(
            "ORACLE_EPOCH_NOT_CLOSED",
            `this instance has not closed epoch ${epoch} (or has no such batch)`,
          );
        if (batch.entries.toLowerCase() !== body.entries.toLowerCase()) {
          throw oracleError("ORACLE_BATCH_MISMATCH", "this instance computed a different batch from its own data");
        }
        return { signatures: await this.localSignatures(epoch, Number(body.batchIndex), batch.entries as Hex) };
      },
    );

    app.get("/epochs", { schema: { summary: "Closed epochs and whether their scores are on-chain" } }, async () => ({
      current: this.epochAt(this.nowSeconds()).toString(),
      epochs: this.store.epochs(),
    }));

    const epochOf = (params: unknown) => {
      const epoch = Number((params as { epoch: string }).epoch);
      return { epoch, record: this.store.epoch(epoch) };
    };

    app.get(
      "/epochs/:epoch",
      { schema: { summary: "An epoch: window, status, batches with their transactions", params: EpochParams } },
      async (request) => {
        const { epoch, record } = epochOf(request.params);
        const { start, end } = this.window(BigInt(epoch));
        return {
          epoch,
          window: { start: Number(start), end: Number(end) },
          status: record?.status ?? "open",
          endBlock: record?.endBlock ?? null,
          reports: this.store.reports(epoch).length,
          heartbeats: this.store.heartbeats(epoch).length,
          batches: this.store
            .batches(epoch)
            .map((b) => ({ index: b.batchIndex, entriesHash: b.entriesHash, posted: b.posted, txHash: b.txHash })),
          scores: record ? record.scores.map((s: Score) => ({ ...s, stakeId: record.stakes[s.device] })) : [],
        };
      },
    );
    app.get(
      "/epochs/:epoch/reports",
      { schema: { summary: "Accepted reports (the CLI's --reports format)", params: EpochParams } },
      async (request) => {
        const { epoch } = epochOf(request.params);
        return this.store.reports(epoch).map((r) => ({
          gateway: r.gateway,
          epoch: r.epoch,
          sequence: r.sequence,
          entries: r.entries,
          signature: r.signature,
        }));
      },
    );
    app.get(
      "/epochs/:epoch/heartbeats",
      { schema: { summary: "Accepted heartbeats (the CLI's --heartbeats format)", params: EpochParams } },
      async (request) => {
        const { epoch } = epochOf(request.params);
        return this.store.heartbeats(epoch);
      },
    );
    app.get(
      "/epochs/:epoch/admitted",
      { schema: { summary: "Devices admitted at the epoch's end (the CLI's --admitted format)", params: EpochParams } },
      async (request) => {
        const { epoch, record } = epochOf(request.params);
        if (!record) throw oracleError("ORACLE_UNKNOWN_EPOCH", `epoch ${epoch} is not closed yet`);
        return record.admitted;
      },
    );
    app.get(
      "/epochs/:epoch/scores",
      { schema: { summary: "The epoch's scores, exactly as the CLI prints them", params: EpochParams } },
      async (request) => {
        const { epoch, record } = epochOf(request.params);
        if (!record) throw oracleError("ORACLE_UNKNOWN_EPOCH", `epoch ${epoch} is not closed yet`);
        return { epoch, scores: record.scores };
      },
    );
  }
}
