/**
 * Posting: each closed epoch's batches go on-chain exactly once. The chain is asked first (`isBatchPosted`), so
 * a restart, a peer or an operator posting first never makes a second transaction; epochs go in order (L-4); each
 * batch is signed by this instance's committee keys and, up to the threshold, by peers that recompute it, each
 * peer signature checked before it counts (F8); the transaction goes through TxSender (persisted before it is
 * broadcast).
 */
import type { FastifyBaseLogger } from "fastify";
import { type Address, type Hex, type PublicClient, encodeFunctionData } from "viem";
import type { Histogram } from "prom-client";

import { rewardsManagerAbi } from "../common/generated/abis";
import type { SignReply, SignRequestBody } from "../common/protocol";
import type { TxSender } from "../common/txSender";
import { type Committee, isBatchPosted, readCommittee } from "./chain";
import { type BatchSignature, type BatchSigner, contractSigner } from "./sign";
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

/**
 * Posts closed epochs strictly in order (L-4): an epoch is taken up only once every earlier one is posted, so a
 * newer epoch can never push an older unposted one out of the contract's 128-epoch window. An epoch with nothing
 * to post counts as posted when it closes; an epoch that cannot gather signatures holds the later ones back.
 */
export async function postClosedEpochs(deps: PostDeps): Promise<void> {
  const { store } = deps;
  const unposted = store.unpostedEpochs();
  if (unposted.length === 0) return;
  // RewardsManager refuses epochs more than 128 behind the current one (EpochExpired): such an epoch can never be
  // posted, and waiting on it would hold every later epoch back for good. It is marked expired, loudly.
  const oldest = Number(
    await deps.client.readContract({
      address: deps.rewards,
      abi: rewardsManagerAbi,
      functionName: "oldestPostableEpoch",
    }),
  );
  for (const epoch of unposted) {
    const record = store.epoch(epoch)!;
    if (epoch < oldest) {
      store.markEpochExpired(epoch, deps.now());
      deps.log.error(
        { epoch, oldestPostable: oldest },
        "epoch expired unposted: RewardsManager no longer takes it; its scores earn nothing",
      );
      continue;
    }
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
    if (!allPosted) {
      deps.log.info({ epoch }, "epoch not fully posted yet: later epochs wait for it");
      return;
    }
    store.markEpochPosted(epoch, deps.now());
    deps.postingDuration.observe((deps.now() - record.closedAt) / 1000);
    deps.log.info({ epoch }, "epoch posted");
  }
}

async function postBatch(deps: PostDeps, sender: TxSender, epoch: number, batchIndex: number, entries: Hex) {
  const committee = await readCommittee(deps.client, deps.rewards);
  const signatures = await collectSignatures(deps, committee, epoch, batchIndex, entries);
  if (signatures.length < committee.threshold) {
    deps.log.warn(
      { epoch, batchIndex, have: signatures.length, threshold: committee.threshold },
      "not enough committee signatures yet",
    );
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

/**
 * This instance's signatures, then peers' until the threshold of valid ones is met; at most `threshold` of them.
 * F8: a peer's signature counts only if it recovers (as the contract does: v 27/28, low s) to the signer it names,
 * a current committee member not counted yet; a bogus one is logged and the next peer asked.
 */
async function collectSignatures(
  deps: PostDeps,
  committee: Committee,
  epoch: number,
  batchIndex: number,
  entries: Hex,
): Promise<Hex[]> {
  const { threshold, members, version } = committee;
  const current = new Set(members.map((m) => m.toLowerCase()));
  const bySigner = new Map<string, Hex>();
  for (const s of await deps.signer.localSignatures(epoch, batchIndex, entries))
    bySigner.set(s.signer.toLowerCase(), s.signature as Hex);
  const digest = await deps.signer.batchDigest(epoch, batchIndex, entries, version);
  for (const peer of deps.peers) {
    if (bySigner.size >= threshold) break;
    const request = await deps.signer.signRequest(members, { epoch, batchIndex, entries });
    if (!request) {
      deps.log.warn({ epoch, batchIndex }, "no key of this instance is in the committee: cannot ask peers to sign");
      break;
    }
    for (const s of await askPeer(deps, peer, request)) {
      const signer = contractSigner(digest, s.signature)?.toLowerCase();
      if (signer === undefined || signer !== s.signer.toLowerCase() || !current.has(signer)) {
        deps.log.warn({ peer, epoch, batchIndex, claimed: s.signer, recovered: signer }, "peer signature refused");
        continue;
      }
      bySigner.set(signer, s.signature as Hex);
    }
  }
  return [...bySigner.values()].slice(0, Math.max(threshold, 1));
}

/** A peer's signatures for the request, or none when it refuses or cannot be reached. */
async function askPeer(deps: PostDeps, peer: string, request: SignRequestBody): Promise<BatchSignature[]> {
  const { epoch, batchIndex } = request;
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
      return [];
    }
    return Array.isArray(body.signatures) ? body.signatures.filter(isSignature) : [];
  } catch (error) {
    deps.log.warn({ peer, err: (error as Error).message }, "peer unreachable for signing");
    return [];
  }
}

function isSignature(s: unknown): s is BatchSignature {
  const { signer, signature } = (s ?? {}) as Partial<BatchSignature>;
  return typeof signer === "string" && typeof signature === "string";
}
