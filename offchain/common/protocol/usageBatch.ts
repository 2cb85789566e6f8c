/** A gateway's signed batch of usage records, POSTed to billing's /usage. */
import { type Static, Type } from "@fastify/type-provider-typebox";
import type { Hex, LocalAccount } from "viem";

import { isSignedBy, signMessage } from "./eip712";
import { type UsageRecord, usageRecordsHash } from "./hashes";
import { AddressSchema, SignatureSchema, SmallDecimalSchema } from "./primitives";

/** A service or metric name: `compute`, `jobs`, `cdn.bytes`. */
export const NameSchema = Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$" });

/** At most this many records in one batch. */
export const MAX_USAGE_RECORDS = 5_000;

export const UsageRecordSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 200 }),
    gateway: AddressSchema,
    customer: AddressSchema,
    service: NameSchema,
    metric: NameSchema,
    quantity: Type.Union([Type.String({ pattern: "^\\d{1,20}$" }), Type.Integer({ minimum: 0 })]),
    time: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

export const UsageBatchBodySchema = Type.Object(
  {
    gateway: AddressSchema,
    sequence: SmallDecimalSchema,
    records: Type.Array(UsageRecordSchema, { minItems: 1, maxItems: MAX_USAGE_RECORDS }),
    signature: SignatureSchema,
  },
  { additionalProperties: false },
);
export type UsageBatchBody = Static<typeof UsageBatchBodySchema>;

export const UsageReplySchema = Type.Object({ accepted: Type.Integer(), duplicates: Type.Integer() });

export async function signUsageBatch(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  chainId: number,
  sequence: bigint,
  records: UsageRecord[],
): Promise<UsageBatchBody> {
  const signature = await signMessage(account, chainId, "UsageBatch", {
    gateway: account.address,
    sequence,
    recordsHash: usageRecordsHash(records),
  });
  return { gateway: account.address, sequence: sequence.toString(), records, signature };
}

/** Whether the batch is signed by the gateway it names (the signature covers the records' canonical hash). */
export function verifyUsageBatch(chainId: number, body: UsageBatchBody): Promise<boolean> {
  const message = {
    gateway: body.gateway as Hex,
    sequence: BigInt(body.sequence),
    recordsHash: usageRecordsHash(body.records as UsageRecord[]),
  };
  return isSignedBy(chainId, "UsageBatch", message, body.signature as Hex, body.gateway);
}
