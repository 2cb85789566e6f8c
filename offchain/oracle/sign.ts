/**
 * Signing score batches with this instance's committee keys (RewardsManager's EIP-712 ScoreBatch, checked
 * on-chain), for its own posting and for a peer's POST /sign, which it answers only to a current committee member
 * (a signed, fresh, never-seen request: L-4) and only for a batch equal to the one it computed from its own data.
 * A peer's signature is counted only when it would pass the contract's own check (F8).
 */
import { type Address, type Hex, type TypedDataDomain, hashTypedData } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";

import { recoverAddress } from "../common/crypto";
import { ReplayGuard } from "../common/replayGuard";
import {
  SIGN_REQUEST_TYPES,
  SIGN_REQUEST_TTL_SECONDS,
  type SignReply,
  type SignRequestBody,
  signRequestMessage,
  signSignRequest,
} from "../common/protocol";
import { SCORE_BATCH_TYPES, entriesHash as packedEntriesHash } from "../common/scoreBatch";
import { type Committee, type RewardsReader, readCommittee, readRewardsDomain } from "./chain";
import { oracleError } from "./errors";
import type { OracleStore } from "./store";

export type BatchSignature = SignReply["signatures"][number];

/** How long the committee read for authorising /sign requests is reused. */
const COMMITTEE_CACHE_MS = 10_000;
/** The most request digests remembered at once (all within twice the request TTL). */
export const MAX_SEEN_REQUESTS = 10_000;
/** secp256k1's n / 2: OpenZeppelin's ECDSA (the contract's check) refuses a larger s. */
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

/**
 * Who signed `digest` as the contract would see it: a 65-byte signature with v 27 or 28 and a low s, else
 * nobody (undefined).
 */
export function contractSigner(digest: Hex, signature: string): Address | undefined {
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) return undefined;
  const v = parseInt(signature.slice(130, 132), 16);
  if ((v !== 27 && v !== 28) || BigInt(`0x${signature.slice(66, 130)}`) > HALF_N) return undefined;
  return recoverAddress(digest, signature as Hex);
}

export class BatchSigner {
  private domain: TypedDataDomain | null = null;
  private cachedCommittee: { at: number; committee: Committee } | null = null;
  /** Digests of the requests answered, until their `issuedAt` window is over. */
  private readonly seen: ReplayGuard;

  constructor(
    private readonly client: RewardsReader,
    private readonly rewards: Address,
    private readonly signers: readonly PrivateKeyAccount[],
    private readonly now: () => number = Date.now,
  ) {
    this.seen = new ReplayGuard(MAX_SEEN_REQUESTS, now);
  }

  get addresses(): Address[] {
    return this.signers.map((s) => s.address);
  }

  async rewardsDomain(): Promise<TypedDataDomain> {
    return (this.domain ??= await readRewardsDomain(this.client, this.rewards));
  }

  /** The ScoreBatch digest the contract checks signatures against. */
  async batchDigest(epoch: number, batchIndex: number, entries: Hex, committeeVersion: bigint): Promise<Hex> {
    return hashTypedData({
      domain: await this.rewardsDomain(),
      types: SCORE_BATCH_TYPES,
      primaryType: "ScoreBatch",
      message: {
        epoch: BigInt(epoch),
        batchIndex: BigInt(batchIndex),
        entriesHash: packedEntriesHash(entries),
        committeeVersion,
      },
    });
  }

  /** Signatures of this instance's keys that are current committee members. */
  async localSignatures(epoch: number, batchIndex: number, entries: Hex): Promise<BatchSignature[]> {
    const { members, version } = await readCommittee(this.client, this.rewards);
    const current = new Set(members.map((m) => m.toLowerCase()));
    const domain = await this.rewardsDomain();
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
          domain,
          types: SCORE_BATCH_TYPES,
          primaryType: "ScoreBatch",
          message,
        }),
      });
    }
    return out;
  }

  /** A /sign request signed by this instance's first key in `members`, or null when it holds none. */
  async signRequest(
    members: readonly Address[],
    request: { epoch: number; batchIndex: number; entries: Hex },
  ): Promise<SignRequestBody | null> {
    const current = new Set(members.map((m) => m.toLowerCase()));
    const account = this.signers.find((s) => current.has(s.address.toLowerCase()));
    if (!account) return null;
    const issuedAt = this.now();
    return signSignRequest(account, await this.rewardsDomain(), { ...request, issuedAt });
  }

  /** A peer's request: answered only to a committee member's fresh, unseen request, for a batch it computed. */
  async signForPeer(store: OracleStore, body: SignRequestBody): Promise<SignReply> {
    await this.authorize(body);
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

  /**
   * L-4, before any work on the batch: fresh, from a current committee member (the claim first, a cached chain
   * read), signed by it, and a digest not answered before (remembered for twice the TTL, at most
   * MAX_SEEN_REQUESTS at once).
   */
  private async authorize(body: SignRequestBody): Promise<void> {
    const now = this.now();
    if (Math.abs(Number(body.issuedAt) - now) > SIGN_REQUEST_TTL_SECONDS * 1000) {
      throw oracleError("ORACLE_SIGN_STALE", `issuedAt must be within ${SIGN_REQUEST_TTL_SECONDS} s of now`);
    }
    const { members } = await this.committee(now);
    if (!members.some((m) => m.toLowerCase() === body.requester.toLowerCase()))
      throw oracleError("ORACLE_SIGN_NOT_COMMITTEE", `${body.requester} is not a member of the current committee`);
    const digest = hashTypedData({
      domain: await this.rewardsDomain(),
      types: SIGN_REQUEST_TYPES,
      primaryType: "SignRequest",
      message: signRequestMessage(body),
    });
    // Any valid encoding of the signature (v 0/1, high s) makes the same digest, so the replay check holds.
    if (recoverAddress(digest, body.signature as Hex)?.toLowerCase() !== body.requester.toLowerCase())
      throw oracleError("ORACLE_SIGN_BAD_SIGNATURE", "the request is not signed by its requester");
    const taken = this.seen.reserve(digest, now + 2 * SIGN_REQUEST_TTL_SECONDS * 1000);
    if (taken === "seen") throw oracleError("ORACLE_SIGN_REPLAYED", "this request was already answered");
    if (taken === "full")
      throw oracleError("ORACLE_SIGN_BUSY", "too many signing requests in the last minutes; retry later");
  }

  private async committee(now: number): Promise<Committee> {
    if (!this.cachedCommittee || now - this.cachedCommittee.at > COMMITTEE_CACHE_MS)
      this.cachedCommittee = { at: now, committee: await readCommittee(this.client, this.rewards) };
    return this.cachedCommittee.committee;
  }
}
