/**
 * A host asking a gateway for jobs: the registration a host's link carries when it connects to the gateway's
 * /hosts/connect (base64url JSON in `x-edge-registration`, D44), signed by the host's device key for that one
 * gateway. The timestamp is in milliseconds, and the gateway refuses any registration not newer than the last it
 * saw from the host (replays). `leaving` is part of the signed message; a link with it set is refused (a host
 * leaves by closing its link).
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
