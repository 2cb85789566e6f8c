/**
 * Posting: each closed epoch's batches go on-chain exactly once. The chain is asked first (`isBatchPosted`), so
 * a restart, a peer or an operator posting first never makes a second transaction; each batch is signed by this
 * instance's committee keys and, up to the threshold, by peers that recompute it; the transaction goes through
 * TxSender (persisted before it is broadcast).
 */
import type { FastifyBaseLogger } from "fastify";
import { type Address, type Hex, type PublicClient, encodeFunctionData } from "viem";
import type { Histogram } from "prom-client";

import { rewardsManagerAbi } from "../common/generated/abis";
import type { SignReply, SignRequestBody } from "../common/protocol";
import type { TxSender } from "../common/txSender";
import { isBatchPosted, readCommittee } from "./chain";
import type { BatchSigner } from "./sign";
import type { OracleStore } from "./store";

export interface PostDeps {
  store: OracleStore;
  client: Pick<PublicClient, "readContract">;
  rewards: Address;
  /** None: a signing-only instance; another one submits. */
  sender: TxSender | null;
  signer: BatchSigner;
  peers: string[];
  postingDuration: Histogram;
  now: () => number;
  log: FastifyBaseLogger;
}

const purpose = (epoch: number, batchIndex: number) => `scores:${epoch}:${batchIndex}`;

export async function postClosedEpochs(deps: PostDeps): Promise<void> {
  const { store } = deps;
  for (const epoch of store.unpostedEpochs()) {
    const record = store.epoch(epoch)!;
    let allPosted = true;
    for (const batch of store.batches(epoch)) {
      if (batch.posted) continue;
      if (await isBatchPosted(deps.client, deps.rewards, epoch, batch.batchIndex)) {
        const mined = deps.sender?.byPurpose(purpose(epoch, batch.batchIndex)).find((t) => t.status === "mined");
        store.markBatchPosted(epoch, batch.batchIndex, mined?.minedHash ?? null);
        continue;
      }
      allPosted = false;
      if (!deps.sender) continue;
      await postBatch(deps, deps.sender, epoch, batch.batchIndex, batch.entries as Hex);
    }
    if (allPosted) {
      store.markEpochPosted(epoch, deps.now());
      deps.postingDuration.observe((deps.now() - record.closedAt) / 1000);
      deps.log.info({ epoch }, "epoch posted");
    }
  }
}

async function postBatch(deps: PostDeps, sender: TxSender, epoch: number, batchIndex: number, entries: Hex) {
  const signatures = await collectSignatures(deps, epoch, batchIndex, entries);
  const { threshold } = await readCommittee(deps.client, deps.rewards);
  if (signatures.length < threshold) {
    deps.log.warn({ epoch, batchIndex, have: signatures.length, threshold }, "not enough committee signatures yet");
    return;
  }
  const data = encodeFunctionData({
    abi: rewardsManagerAbi,
    functionName: "postScores",
    args: [BigInt(epoch), BigInt(batchIndex), entries, signatures],
  });
  const record = await sender.send(purpose(epoch, batchIndex), deps.rewards, data);
  const receipt = await sender.wait(record);
  if (receipt.status === "success") {
    deps.store.markBatchPosted(epoch, batchIndex, receipt.transactionHash);
    deps.log.info({ epoch, batchIndex, tx: receipt.transactionHash }, "batch posted");
  }
}

/** This instance's signatures, then peers' until the threshold is met; at most `threshold` of them. */
async function collectSignatures(deps: PostDeps, epoch: number, batchIndex: number, entries: Hex): Promise<Hex[]> {
  const { threshold } = await readCommittee(deps.client, deps.rewards);
  const bySigner = new Map<string, Hex>();
  for (const s of await deps.signer.localSignatures(epoch, batchIndex, entries))
    bySigner.set(s.signer.toLowerCase(), s.signature as Hex);
  const request: SignRequestBody = { epoch: String(epoch), batchIndex: String(batchIndex), entries };
  for (const peer of deps.peers) {
    if (bySigner.size >= threshold) break;
    try {
      const response = await fetch(`${peer.replace(/\/$/, "")}/sign`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(request),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await response.json()) as Partial<SignReply> & { error?: string };
      if (!response.ok) {
        deps.log.info({ peer, epoch, batchIndex, status: response.status, error: body.error }, "peer did not sign");
        continue;
      }
      for (const s of body.signatures ?? []) bySigner.set(s.signer.toLowerCase(), s.signature as Hex);
    } catch (error) {
      deps.log.warn({ peer, err: (error as Error).message }, "peer unreachable for signing");
    }
  }
  return [...bySigner.values()].slice(0, Math.max(threshold, 1));
}
