/**
 * Between oracle instances of one committee: POST /sign asks a peer to sign a score batch, which it does only
 * when the batch equals the one it computed from its own data. Signatures are RewardsManager's EIP-712
 * ScoreBatch (offchain/common/scoreBatch.ts), checked on-chain.
 */
import { type Static, Type } from "@fastify/type-provider-typebox";

import { AddressSchema, SignatureSchema, SmallDecimalSchema } from "./primitives";

export const SignRequestBodySchema = Type.Object(
  {
    epoch: SmallDecimalSchema,
    batchIndex: SmallDecimalSchema,
    /** The packed entries (10 bytes each). */
    entries: Type.String({ pattern: "^0x([0-9a-fA-F]{20})+$" }),
  },
  { additionalProperties: false },
);
export type SignRequestBody = Static<typeof SignRequestBodySchema>;

export const SignReplySchema = Type.Object({
  signatures: Type.Array(Type.Object({ signer: AddressSchema, signature: SignatureSchema })),
});
export type SignReply = Static<typeof SignReplySchema>;
