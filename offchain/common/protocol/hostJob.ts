/**
 * A job a gateway hands to one of its hosts, POSTed to the host's /jobs with the session token the host got at
 * registration (`authorization: Bearer <token>`), and the host's answer.
 */
import { type Static, Type } from "@fastify/type-provider-typebox";

import { HostTallySchema } from "./hostTally";
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
  /** The host's signed tally for this gateway and epoch, counting this job (hostTally.ts). */
  tally: Type.Optional(HostTallySchema),
});
export type HostJobReply = Static<typeof HostJobReplySchema>;
