/** A stargate's signed sign of life in an epoch, POSTed to the oracle's /heartbeats. */
import { type Static, Type } from "@fastify/type-provider-typebox";
import type { Hex, LocalAccount } from "viem";

import { isSignedBy, signMessage } from "./eip712";
import { AddressSchema, SignatureSchema, SmallDecimalSchema } from "./primitives";

export const HeartbeatBodySchema = Type.Object(
  { stargate: AddressSchema, epoch: SmallDecimalSchema, timestamp: SmallDecimalSchema, signature: SignatureSchema },
  { additionalProperties: false },
);
/** `timestamp` in unix seconds, inside the epoch's window. */
export type HeartbeatBody = Static<typeof HeartbeatBodySchema>;

export async function signHeartbeat(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  chainId: number,
  epoch: bigint,
  timestamp: bigint,
): Promise<HeartbeatBody> {
  const signature = await signMessage(account, chainId, "Heartbeat", { stargate: account.address, epoch, timestamp });
  return { stargate: account.address, epoch: epoch.toString(), timestamp: timestamp.toString(), signature };
}

/** Whether the heartbeat is signed by the stargate it names. */
export function verifyHeartbeat(chainId: number, body: HeartbeatBody): Promise<boolean> {
  const message = { stargate: body.stargate as Hex, epoch: BigInt(body.epoch), timestamp: BigInt(body.timestamp) };
  return isSignedBy(chainId, "Heartbeat", message, body.signature as Hex, body.stargate);
}
