/**
 * A compute job a gateway hands to one of its hosts: the body of a `x-edge-kind: compute` stream on the host's
 * link (D44), and the host's answer. The host's tally is fetched separately over the link (F11, D44).
 */
import { type Static, Type } from "@fastify/type-provider-typebox";

import { AddressSchema } from "./primitives";

export const HostJobBodySchema = Type.Object(
  {
    jobId: Type.String({ minLength: 1, maxLength: 128 }),
    payload: Type.String({ maxLength: 65_536 }),
    rounds: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);
export type HostJobBody = Static<typeof HostJobBodySchema>;

export const HostJobReplySchema = Type.Object({
  jobId: Type.String(),
  result: Type.String({ pattern: "^0x[0-9a-f]{64}$" }),
  host: AddressSchema,
});
export type HostJobReply = Static<typeof HostJobReplySchema>;
