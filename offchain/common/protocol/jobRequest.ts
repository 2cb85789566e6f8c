/**
 * A customer's job, POSTed to a gateway's /jobs: the body, and the customer's EIP-712 signature over the
 * body's canonical hash, this gateway and a timestamp (seconds) in three headers. Any wallet that signs typed
 * data can send one.
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import { type Address, type Hex, type LocalAccount, getAddress } from "viem";

import { type SignatureCheck, checkSignature, signMessage } from "./eip712";
import { jobBodyHash } from "./hashes";
import { AddressSchema, SignatureSchema, unixSeconds } from "./primitives";

export const ClientJobBodySchema = Type.Object(
  {
    payload: Type.String({ maxLength: 65_536 }),
    rounds: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);
/** The compute job: `rounds` iterations of SHA-256 over `payload`. */
export type ClientJobBody = Static<typeof ClientJobBodySchema>;

export const ClientJobHeadersSchema = Type.Object({
  "x-edge-customer": AddressSchema,
  "x-edge-timestamp": Type.String({ pattern: "^\\d{1,12}$" }),
  "x-edge-signature": SignatureSchema,
});
export type ClientJobHeaders = Static<typeof ClientJobHeadersSchema>;

export const ClientJobReplySchema = Type.Object({ jobId: Type.String(), host: AddressSchema, result: Type.String() });
export type ClientJobReply = Static<typeof ClientJobReplySchema>;

export interface SignedJobRequest {
  headers: ClientJobHeaders & { "content-type": string };
  body: ClientJobBody;
}

export async function signJobRequest(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  chainId: number,
  gateway: Address,
  body: ClientJobBody,
  timestamp = unixSeconds(),
): Promise<SignedJobRequest> {
  const signature = await signMessage(account, chainId, "JobRequest", {
    customer: account.address,
    gateway,
    bodyHash: jobBodyHash(body),
    timestamp,
  });
  return {
    body,
    headers: {
      "content-type": "application/json",
      "x-edge-customer": account.address,
      "x-edge-timestamp": timestamp.toString(),
      "x-edge-signature": signature,
    },
  };
}

/**
 * Checks that the request is signed, canonically, by the customer its headers name, for this gateway, and
 * returns the signed digest: the gateway's replay guard keys on it, so a re-encoded signature (v 0/1, another
 * letter case, the high-s twin) or a re-spelled header (`0017` for `17`, another address case) is the same
 * request.
 */
export function checkJobRequest(
  chainId: number,
  gateway: Address,
  headers: ClientJobHeaders,
  body: ClientJobBody,
): Promise<SignatureCheck> {
  // The header may be in any letter case (the schema allows it); the signed message names the address itself.
  const customer = getAddress(headers["x-edge-customer"]);
  const message = {
    customer,
    gateway,
    bodyHash: jobBodyHash(body),
    timestamp: BigInt(headers["x-edge-timestamp"]),
  };
  return checkSignature(chainId, "JobRequest", message, headers["x-edge-signature"] as Hex, customer);
}

/** Whether the request is signed (canonically) by the customer its headers name, for this gateway. */
export async function verifyJobRequest(
  chainId: number,
  gateway: Address,
  headers: ClientJobHeaders,
  body: ClientJobBody,
): Promise<boolean> {
  return (await checkJobRequest(chainId, gateway, headers, body)).ok;
}
