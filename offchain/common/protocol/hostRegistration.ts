/**
 * A host asking a gateway for jobs: the registration a host's link carries when it connects to the gateway's
 * /hosts/connect (base64url JSON in `x-edge-registration`, D44), signed by the host's device key for that one
 * gateway. The timestamp is in milliseconds, and the gateway refuses any registration not newer than the last it
 * saw from the host (replays). `leaving` is part of the signed message; a link with it set is refused (a host
 * leaves by closing its link). `country` and `region` are where the host says it runs (D68, regions.ts; both ""
 * when undeclared): signed with the rest, so nobody but the host can move it; their shape is the schema's, whether
 * the country is an assigned code the gateway's check before the signature (`readRegionFields`).
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import type { Address, Hex, LocalAccount } from "viem";

import { type SignatureCheck, checkSignature, signMessage } from "./eip712";
import { AddressSchema, HttpUrlSchema, SignatureSchema, SmallDecimalSchema } from "./primitives";
import { type Region, regionFields } from "./regions";

export const HostRegistrationBodySchema = Type.Object(
  {
    host: AddressSchema,
    gateway: AddressSchema,
    url: HttpUrlSchema,
    country: Type.String({ pattern: "^([A-Z]{2})?$" }),
    region: Type.String({ pattern: "^([a-z0-9][a-z0-9-]{0,31})?$" }),
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
  registration: { gateway: Address; url: string; leaving: boolean; timestamp: bigint; region?: Region },
): Promise<HostRegistrationBody> {
  const { region, ...rest } = registration;
  const message = { host: account.address, ...rest, ...regionFields(region) };
  const signature = await signMessage(account, chainId, "HostRegistration", message);
  return { ...message, timestamp: registration.timestamp.toString(), signature };
}

/** Checks that the registration is signed, canonically, by the host it names; the digest it signs, or why not. */
export function checkHostRegistration(chainId: number, body: HostRegistrationBody): Promise<SignatureCheck> {
  const message = {
    host: body.host as Address,
    gateway: body.gateway as Address,
    url: body.url,
    country: body.country,
    region: body.region,
    leaving: body.leaving,
    timestamp: BigInt(body.timestamp),
  };
  return checkSignature(chainId, "HostRegistration", message, body.signature as Hex, body.host);
}

/** Whether the registration is signed (canonically) by the host it names. */
export async function verifyHostRegistration(chainId: number, body: HostRegistrationBody): Promise<boolean> {
  return (await checkHostRegistration(chainId, body)).ok;
}
