/**
 * Who is asking, for Edge Storage's API at a gateway (D75): the owner's EIP-712 `StorageRequest` signature
 * (offchain/common/protocol/storageRequest.ts) for this gateway, action, object and body, within
 * SIGNATURE_WINDOW_SECONDS of the gateway's clock, never seen before (a replay guard keyed on the signed digest,
 * reserved before any await, so N copies at once pass once). Cheap checks first: the clock before the signature.
 */
import { type Address, type Hex, getAddress } from "viem";

import {
  type StorageAction,
  type StorageRequestHeaders,
  checkStorageRequest,
  unixSeconds,
} from "../../../offchain/common/protocol";
import { ReplayGuard } from "../../../offchain/common/replayGuard";
import type { Signer } from "../../context";
import { nodeError } from "../../errors";
import { SIGNATURE_WINDOW_SECONDS } from "./customers";

/** Storage requests remembered at most (each until its timestamp is stale): ~350 bytes each, so ~35 MB. */
export const STORAGE_REPLAY_CAPACITY = 100_000;

export interface StorageCaller {
  owner: Address;
  /** Frees the request's digest when it changed nothing (a refusal after admission): it may be sent again. */
  release(): void;
}

export class StorageAuth {
  private readonly seen: ReplayGuard;

  constructor(
    private readonly signer: Pick<Signer, "account" | "chainId">,
    capacity = STORAGE_REPLAY_CAPACITY,
  ) {
    this.seen = new ReplayGuard(capacity);
  }

  get replayEntries(): number {
    return this.seen.size;
  }

  async admit(
    headers: StorageRequestHeaders,
    request: { action: StorageAction; objectId?: Hex; body?: Uint8Array },
  ): Promise<StorageCaller> {
    const timestamp = BigInt(headers["x-edge-timestamp"]);
    const now = unixSeconds();
    if (timestamp > now + SIGNATURE_WINDOW_SECONDS || timestamp < now - SIGNATURE_WINDOW_SECONDS)
      throw nodeError("EDGE_NODE_SIGNATURE_EXPIRED", "the request's timestamp is too far from now");
    const check = await checkStorageRequest(this.signer.chainId, this.signer.account.address, headers, request);
    if (!check.ok) {
      if (check.reason === "non-canonical") throw nodeError("EDGE_NODE_NONCANONICAL_SIGNATURE", check.message);
      throw nodeError("EDGE_NODE_BAD_SIGNATURE", "the request is not signed by the owner it names for this gateway");
    }
    const expiresAtMs = Number(timestamp + SIGNATURE_WINDOW_SECONDS + 1n) * 1000;
    const reservation = this.seen.reserve(check.digest, expiresAtMs);
    if (reservation === "seen") throw nodeError("EDGE_NODE_REPLAYED", "this signed request was already served");
    if (reservation === "full")
      throw nodeError("EDGE_NODE_REPLAY_MEMORY_FULL", "too many requests within the signature window: retry later");
    return { owner: getAddress(headers["x-edge-owner"]), release: () => this.seen.release(check.digest) };
  }
}
