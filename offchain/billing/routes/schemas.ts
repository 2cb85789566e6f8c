/**
 * The schemas of billing's routes that are not wire messages of the protocol (those come from
 * offchain/common/protocol): path parameters, the bearer header, the sign-in bodies and replies.
 */
import { type TSchema, Type } from "@fastify/type-provider-typebox";
import type { Hex } from "viem";

import { AddressSchema, SignatureSchema } from "../../common/protocol";

/** A period id: "YYYY-MM" (UTC months) or a decimal index (fixed periods). */
const PeriodIdSchema = Type.String({ pattern: "^(\\d{4}-\\d{2}|\\d{1,10})$" });

export const CustomerParams = Type.Object({ customer: AddressSchema }, { additionalProperties: false });
export const BillParams = Type.Object(
  { customer: AddressSchema, period: PeriodIdSchema },
  { additionalProperties: false },
);
export const PeriodParams = Type.Object({ period: PeriodIdSchema }, { additionalProperties: false });
export const BearerHeader = Type.Object({ authorization: Type.Optional(Type.String()) });

/** The schema of a route behind a customer's bearer token, with its path parameters. */
export const customerSchema = <Params extends TSchema>(summary: string, params: Params) => ({
  summary,
  params,
  headers: BearerHeader,
  security: [{ bearer: [] }],
});

export const NonceBody = Type.Object({ address: AddressSchema }, { additionalProperties: false });
export const NonceReply = Type.Object({ message: Type.String(), nonce: Type.String(), expiresAt: Type.String() });

export const LoginBody = Type.Object(
  // The signature is typed as viem's Hex: the pattern guarantees the "0x".
  { message: Type.String({ maxLength: 4096 }), signature: Type.Unsafe<Hex>(SignatureSchema) },
  { additionalProperties: false },
);
export const LoginReply = Type.Object({ token: Type.String(), customer: Type.String(), expiresAt: Type.String() });
