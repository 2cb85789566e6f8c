/**
 * Signing score batches with this instance's committee keys (RewardsManager's EIP-712 ScoreBatch, checked
 * on-chain), for its own posting and for a peer's POST /sign, which it answers only for a batch equal to the
 * one it computed from its own data.
 */
import type { Address, Hex, TypedDataDomain } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";

import type { SignReply, SignRequestBody } from "../common/protocol";
import { SCORE_BATCH_TYPES, entriesHash as packedEntriesHash } from "../common/scoreBatch";
import { type RewardsReader, readCommittee, readRewardsDomain } from "./chain";
import { oracleError } from "./errors";
import type { OracleStore } from "./store";

export type BatchSignature = SignReply["signatures"][number];

export class BatchSigner {
  private domain: TypedDataDomain | null = null;

  constructor(
    private readonly client: RewardsReader,
    private readonly rewards: Address,
    private readonly signers: readonly PrivateKeyAccount[],
  ) {}

  get addresses(): Address[] {
    return this.signers.map((s) => s.address);
  }

  /** Signatures of this instance's keys that are current committee members. */
  async localSignatures(epoch: number, batchIndex: number, entries: Hex): Promise<BatchSignature[]> {
    const { members, version } = await readCommittee(this.client, this.rewards);
    const current = new Set(members.map((m) => m.toLowerCase()));
    this.domain ??= await readRewardsDomain(this.client, this.rewards);
    const message = {
      epoch: BigInt(epoch),
      batchIndex: BigInt(batchIndex),
      entriesHash: packedEntriesHash(entries),
      committeeVersion: version,
    };
    const out: BatchSignature[] = [];
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

  /** A peer's request: signs only a batch this instance closed and computed identically. */
  async signForPeer(store: OracleStore, body: SignRequestBody): Promise<SignReply> {
    const epoch = Number(body.epoch);
    const batch = store.batches(epoch)[Number(body.batchIndex)];
    if (!store.epoch(epoch) || !batch)
      throw oracleError(
        "ORACLE_EPOCH_NOT_CLOSED",
        `this instance has not closed epoch ${epoch} (or has no such batch)`,
      );
    if (batch.entries.toLowerCase() !== body.entries.toLowerCase()) {
      throw oracleError("ORACLE_BATCH_MISMATCH", "this instance computed a different batch from its own data");
    }
    return { signatures: await this.localSignatures(epoch, Number(body.batchIndex), batch.entries as Hex) };
  }
}
