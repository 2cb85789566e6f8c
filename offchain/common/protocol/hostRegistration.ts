/**
 * A host asking a gateway to route jobs to it (or, with `leaving`, to stop), POSTed to the gateway's
 * /hosts/register, signed by the host's device key for that one gateway. The timestamp is in milliseconds: a
 * registration and a leave in the same second must still be ordered, and the gateway refuses any registration
 * not newer than the last it saw (replays).
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import type { Address, Hex, LocalAccount } from "viem";

import { type SignatureCheck, checkSignature, signMessage } from "./eip712";
import { AddressSchema, HttpUrlSchema, SignatureSchema, SmallDecimalSchema } from "./primitives";

export const HostRegistrationBodySchema = Type.Object(
  {
    host: AddressSchema,
    gateway: AddressSchema,
    url: HttpUrlSchema,
    leaving: Type.Boolean(),
    timestamp: SmallDecimalSchema,
    signature: SignatureSchema,
  },
  { additionalProperties: false },
);
export type HostRegistrationBody = Static<typeof HostRegistrationBodySchema>;

/** The gateway's answer: the session token its job requests to the host carry, or that the host left. */
export const HostRegistrationReplySchema = Type.Union([
  Type.Object({ token: Type.String(), gateway: AddressSchema }),
  Type.Object({ left: Type.Literal(true) }),
]);
export type HostRegistrationReply = Static<typeof HostRegistrationReplySchema>;

export async function signHostRegistration(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  chainId: number,
  registration: { gateway: Address; url: string; leaving: boolean; timestamp: bigint },
): Promise<HostRegistrationBody> {
  const message = { host: account.address, ...registration };
  const signature = await signMessage(account, chainId, "HostRegistration", message);
  return { ...message, timestamp: registration.timestamp.toString(), signature };
}

/** Checks that the registration is signed, canonically, by the host it names; the digest it signs, or why not. */
export function checkHostRegistration(chainId: number, body: HostRegistrationBody): Promise<SignatureCheck> {
  const message = {
    host: body.host as Address,
    gateway: body.gateway as Address,
    url: body.url,
    leaving: body.leaving,
    timestamp: BigInt(body.timestamp),
  };
  return checkSignature(chainId, "HostRegistration", message, body.signature as Hex, body.host);
}

/** Whether the registration is signed (canonically) by the host it names. */
export async function verifyHostRegistration(chainId: number, body: HostRegistrationBody): Promise<boolean> {
  return (await checkHostRegistration(chainId, body)).ok;
}
