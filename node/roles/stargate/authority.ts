/**
 * The configuration authority (D53): a stargate started with --config-key (a key ConfigRegistry grants
 * DELTA_SIGNER_ROLE and PUBLISHER_ROLE) turns changes into signed deltas at once, and folds them into the next
 * anchored version on a timer, so enforcement never waits for a block and every change is anchored soon after.
 *
 * - `append(op)`: signs a delta on the latest anchored version (base) with the next seq, stores it (the store
 *   tells the server, which pushes it to every subscriber) and returns where it went.
 * - every `intervalMs` with deltas pending: the next document is the latest with the deltas applied (expired
 *   revocations dropped) and version + 1; it is anchored on-chain, then stored (the server pushes the snapshot).
 *   Deltas appended while the transaction was in flight are signed again on the new version (seq from 1), so none
 *   is lost; the ones folded in are dropped with their base.
 * - `adopt(version)`: a version anchored by someone else (uploaded with POST /config/versions) replaces the latest;
 *   the pending deltas are signed again on it (their operations are idempotent).
 * Appends and the store's changes are serialised; the anchoring transaction runs outside the lock. Nothing is
 * signed or anchored that subscribers would refuse (configCheck.ts, R17-2); a fold's candidate is stored before its
 * transaction and adopted when the chain anchors it (R17-7).
 */
import { Value } from "typebox/value";
import type { Hex, LocalAccount } from "viem";

import { messageOf } from "../../../offchain/common/errors";
import {
  type DeltaBody,
  type DeltaOp,
  DeltaOpSchema,
  MAX_DOCUMENT_BYTES,
  type NetworkConfig,
  applyDeltas,
  documentHash,
  encodeDocument,
  parseDeltaBody,
  signDelta,
} from "../../../offchain/common/protocol";
import { WorkLoop } from "../../../offchain/common/workLoop";
import type { AnchorReader } from "../../configWire";
import type { StargateContext } from "../../context";
import { nodeError } from "../../errors";
import { canonical, checkAppend, checkDocument, illFormedString } from "./configCheck";
import type { ConfigStore, StoredDelta, StoredVersion } from "./configStore";

export interface AuthorityOptions {
  /** The config key's account: signs the deltas. */
  account: Pick<LocalAccount, "address" | "signTypedData">;
  anchor: AnchorReader;
  /** Anchors (version, hash) on-chain and resolves once the transaction is included. */
  publish(version: number, hash: Hex): Promise<void>;
  intervalMs: number;
}

export class ConfigAuthority {
  private lock: Promise<unknown> = Promise.resolve();
  private readonly loop: WorkLoop;
  private anchoredCount = 0;
  private lastError: string | null = null;
  private folding: Promise<void> | null = null;
  private size: { version: number; seq: number; bytes: number } | undefined;

  constructor(
    private readonly ctx: Pick<StargateContext, "signer" | "log">,
    private readonly store: ConfigStore,
    private readonly options: AuthorityOptions,
  ) {
    this.loop = new WorkLoop(
      () => this.fold(),
      options.intervalMs,
      (error) => {
        this.lastError = messageOf(error);
        ctx.log.error({ err: this.lastError }, "anchoring the pending deltas failed; retried next interval");
      },
    );
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  status(): Record<string, unknown> {
    return {
      signer: this.options.account.address,
      pending: this.store.seq(),
      anchored: this.anchoredCount,
      lastError: this.lastError,
    };
  }

  /**
   * Signs, stores and broadcasts a delta on the latest anchored version. `op` may be a function of the configuration
   * in force, run under the lock (the Network API checks ownership and hostnames there, R17-2). The document the
   * delta makes is checked as every subscriber will check it (configCheck.ts) before anything is signed.
   */
  async append(op: DeltaOp | ((current: NetworkConfig) => DeltaOp)): Promise<{ base: number; seq: number }> {
    return this.locked(async () => {
      const latest = this.store.latest();
      const current = this.store.effectiveConfig()?.document;
      if (!latest || !current)
        throw nodeError("EDGE_NODE_CONFIG_NONE", "no anchored version yet: publish one first (config:publish)");
      const made = typeof op === "function" ? op(current) : op;
      if (!Value.Check(DeltaOpSchema, made) || illFormedString(made))
        throw nodeError("EDGE_NODE_CONFIG_INVALID", "the operation is not a delta operation");
      const seq = this.store.seq();
      const size = this.sizeOf(latest.version, seq, current) + canonical(made).length;
      checkAppend(applyDeltas(current, [{ base: latest.version, seq: 1, issuedAt: 0, op: made }]), made, size);
      const delta = await this.sign({
        base: latest.version,
        seq: this.store.seq() + 1,
        issuedAt: Date.now(),
        op: made,
      });
      this.store.putDelta(delta);
      this.size = { version: latest.version, seq: delta.seq, bytes: size };
      return { base: delta.base, seq: delta.seq };
    });
  }

  /** An upper bound of the encoded size of the configuration in force at (version, seq): encoded once, then summed. */
  private sizeOf(version: number, seq: number, current: NetworkConfig): number {
    if (this.size?.version !== version || this.size.seq !== seq)
      this.size = { version, seq, bytes: encodeDocument(current).length };
    return this.size.bytes;
  }

  /** Stores a version anchored elsewhere (verified by the caller) and re-signs the pending deltas on it. */
  adopt(version: StoredVersion): Promise<void> {
    return this.locked(() => this.replace(version, 0));
  }

  /** One anchoring pass: folds the pending deltas into version + 1, anchors it, stores it (calls join). */
  fold(): Promise<void> {
    this.folding ??= this.foldOnce().finally(() => (this.folding = null));
    return this.folding;
  }

  /**
   * Folds the pending deltas into a candidate for the next version, checked as subscribers check documents
   * (R17-2) and stored before its transaction is sent (R17-7): a retry or restart whose candidate the chain anchors
   * adopts it instead of making other bytes (new deltas, a new time) that the chain would never match.
   */
  private async foldOnce(): Promise<void> {
    const latest = this.store.latest();
    const deltas = this.store.currentDeltas().slice();
    if (!latest) return;
    let candidate = this.store.candidate();
    if (candidate && (candidate.version !== latest.version + 1 || candidate.folded > deltas.length)) {
      this.store.clearCandidate();
      candidate = undefined;
    }
    if (!candidate) {
      if (deltas.length === 0) return;
      const next = applyDeltas(
        latest.document,
        deltas.map((d) => d.parsed),
        Math.floor(Date.now() / 1000),
      );
      next.version = latest.version + 1;
      const bytes = checkDocument(next, MAX_DOCUMENT_BYTES);
      candidate = { version: next.version, hash: documentHash(bytes), bytes, document: next, folded: deltas.length };
      this.store.putCandidate(candidate);
    }
    const { version, hash, folded } = candidate;
    // A candidate whose transaction went through (before a failed receipt wait or a restart) is adopted as is.
    const anchored = await this.options.anchor.hashOf(version);
    if (anchored === undefined) await this.options.publish(version, hash);
    else if (anchored !== hash) {
      this.store.clearCandidate();
      throw new Error(
        `version ${version} is anchored with another document (${anchored}): upload it (POST /config/versions)`,
      );
    }
    const adopted = candidate;
    await this.locked(async () => {
      if (this.store.latest()?.version !== latest.version) return; // another version came in meanwhile
      await this.replace(adopted, folded);
      this.anchoredCount += 1;
      this.lastError = null;
      this.ctx.log.info({ version, hash, deltas: folded }, "anchored a configuration version");
    });
  }

  /** Stores `version` and signs again on it the pending deltas after the first `folded` ones. */
  private async replace(version: StoredVersion, folded: number): Promise<void> {
    const leftover: StoredDelta[] = [];
    for (const [i, old] of this.store.currentDeltas().slice(folded).entries())
      leftover.push(await this.sign({ ...old.parsed, base: version.version, seq: i + 1 }));
    this.store.putVersion({
      version: version.version,
      hash: version.hash,
      bytes: version.bytes,
      document: version.document,
    });
    for (const delta of leftover) this.store.putDelta(delta);
  }

  private async sign(body: DeltaBody): Promise<StoredDelta> {
    const signed = await signDelta(this.options.account, this.ctx.signer.chainId, body);
    const parsed = parseDeltaBody(signed.body);
    if (typeof parsed === "string") throw nodeError("EDGE_NODE_CONFIG_INVALID", parsed);
    return { base: body.base, seq: body.seq, body: signed.body, signature: signed.signature, parsed };
  }

  private locked<T>(task: () => Promise<T>): Promise<T> {
    const run = this.lock.then(task);
    this.lock = run.catch(() => undefined);
    return run;
  }
}
