/**
 * Between oracle instances of one committee: POST /sign asks a peer to sign a score batch, which it does only
 * when the batch equals the one it computed from its own data. Signatures are RewardsManager's EIP-712
 * ScoreBatch (offchain/common/scoreBatch.ts), checked on-chain.
 *
 * The request itself is signed (L-4): EIP-712 `SignRequest` in RewardsManager's domain by a current committee
 * member (`requester`), fresh (`issuedAt`, unix milliseconds, within SIGN_REQUEST_TTL_SECONDS of the peer's clock),
 * and answered once per digest, so nobody outside the committee gets signed batches and a request cannot be
 * replayed.
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import type { Address, Hex, LocalAccount, TypedDataDomain } from "viem";

import { keccak256 } from "../crypto";
import { AddressSchema, SignatureSchema, SmallDecimalSchema } from "./primitives";

/** The most entries one batch holds (the oracle's `--batch-size` maximum). */
export const MAX_BATCH_ENTRIES = 1000;
/** How far a request's `issuedAt` may be from the answering peer's clock. */
export const SIGN_REQUEST_TTL_SECONDS = 120;

export const SignRequestBodySchema = Type.Object(
  {
    epoch: SmallDecimalSchema,
    batchIndex: SmallDecimalSchema,
    /** The packed entries (10 bytes each). */
    entries: Type.String({ pattern: "^0x([0-9a-fA-F]{20})+$", maxLength: 2 + 20 * MAX_BATCH_ENTRIES }),
    /** The committee member asking, and when (unix milliseconds: two requests of one instance never share it). */
    requester: AddressSchema,
    issuedAt: SmallDecimalSchema,
    /** The requester's EIP-712 SignRequest signature over the fields above. */
    signature: SignatureSchema,
  },
  { additionalProperties: false },
);
export type SignRequestBody = Static<typeof SignRequestBodySchema>;

export const SignReplySchema = Type.Object({
  signatures: Type.Array(Type.Object({ signer: AddressSchema, signature: SignatureSchema })),
});
export type SignReply = Static<typeof SignReplySchema>;

export const SIGN_REQUEST_TYPES = {
  SignRequest: [
    { name: "epoch", type: "uint256" },
    { name: "batchIndex", type: "uint256" },
    { name: "entriesHash", type: "bytes32" },
    { name: "requester", type: "address" },
    { name: "issuedAt", type: "uint256" },
  ],
} as const;

/** The typed message a request's signature covers. */
export function signRequestMessage(body: Omit<SignRequestBody, "signature">) {
  return {
    epoch: BigInt(body.epoch),
    batchIndex: BigInt(body.batchIndex),
    entriesHash: keccak256(body.entries as Hex),
    // Lowercase: the same bytes, and a mixed-case address with a bad EIP-55 checksum is not an error (L3).
    requester: body.requester.toLowerCase() as Address,
    issuedAt: BigInt(body.issuedAt),
  };
}

/** A signed request for a peer to sign batch `batchIndex` of `epoch`, made by committee member `account`. */
export async function signSignRequest(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  domain: TypedDataDomain,
  request: { epoch: number; batchIndex: number; entries: Hex; issuedAt: number },
): Promise<SignRequestBody> {
  const unsigned = {
    epoch: String(request.epoch),
    batchIndex: String(request.batchIndex),
    entries: request.entries,
    requester: account.address,
    issuedAt: String(request.issuedAt),
  };
  const signature = await account.signTypedData({
    domain,
    types: SIGN_REQUEST_TYPES,
    primaryType: "SignRequest",
    message: signRequestMessage(unsigned),
  });
  return { ...unsigned, signature };
}
