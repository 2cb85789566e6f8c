/**
 * The EIP-712 side of the wire protocol: domain "Edge Network" v1 on the protocol's chain, no verifying
 * contract (messages are checked off-chain), one typed struct per signed message. The daemon that signs and
 * the oracle and billing services that verify use these same definitions.
 */
import {
  type Address,
  type Hex,
  type LocalAccount,
  type MessageDefinition,
  type TypedDataDomain,
  hashTypedData,
} from "viem";

import { recoverAddress } from "../crypto";

export function messageDomain(chainId: number): TypedDataDomain {
  return { name: "Edge Network", version: "1", chainId };
}

export const MESSAGE_TYPES = {
  /** A gateway's count of jobs each host returned in an epoch; the highest sequence of an epoch wins. */
  JobReport: [
    { name: "gateway", type: "address" },
    { name: "epoch", type: "uint256" },
    { name: "sequence", type: "uint256" },
    { name: "entriesHash", type: "bytes32" },
  ],
  /**
   * A host's own cumulative count of the jobs it returned at one gateway in an epoch (Revision 2). `sequence`
   * strictly increases over all the host's tallies; the count never goes down.
   */
  HostTally: [
    { name: "host", type: "address" },
    { name: "gateway", type: "address" },
    { name: "epoch", type: "uint256" },
    { name: "jobs", type: "uint256" },
    { name: "sequence", type: "uint256" },
  ],
  /** A stargate's sign of life in an epoch. */
  Heartbeat: [
    { name: "stargate", type: "address" },
    { name: "epoch", type: "uint256" },
    { name: "timestamp", type: "uint256" },
  ],
  /** A gateway's batch of usage records for billing. */
  UsageBatch: [
    { name: "gateway", type: "address" },
    { name: "sequence", type: "uint256" },
    { name: "recordsHash", type: "bytes32" },
  ],
  /** A host asking a gateway to route jobs to it (or, with `leaving`, to stop); timestamp in milliseconds. */
  HostRegistration: [
    { name: "host", type: "address" },
    { name: "gateway", type: "address" },
    { name: "url", type: "string" },
    { name: "leaving", type: "bool" },
    { name: "timestamp", type: "uint256" },
  ],
  /** A customer's job request to a gateway; timestamp in seconds. */
  JobRequest: [
    { name: "customer", type: "address" },
    { name: "gateway", type: "address" },
    { name: "bodyHash", type: "bytes32" },
    { name: "timestamp", type: "uint256" },
  ],
} as const;

export type MessageType = keyof typeof MESSAGE_TYPES;

/** The typed message of `T`, as signed: addresses, bigints for uint256, `0x` hex for bytes32. */
export type Message<T extends MessageType> = MessageDefinition<typeof MESSAGE_TYPES, T>["message"];

/** Signs `message` as `type` in the protocol's message domain. */
export function signMessage<T extends MessageType>(
  account: Pick<LocalAccount, "signTypedData">,
  chainId: number,
  type: T,
  message: Message<T>,
): Promise<Hex> {
  // The public signature types the message per T; viem cannot narrow a generic T, hence the cast.
  return account.signTypedData({
    domain: messageDomain(chainId),
    types: MESSAGE_TYPES,
    primaryType: type,
    message,
  } as never);
}

/** Recovers who signed `message` as `type`; a malformed signature recovers nobody (undefined). */
export async function recoverSigner<T extends MessageType>(
  chainId: number,
  type: T,
  message: Message<T>,
  signature: Hex,
): Promise<Address | undefined> {
  let hash: Hex;
  try {
    hash = hashTypedData({ domain: messageDomain(chainId), types: MESSAGE_TYPES, primaryType: type, message } as never);
  } catch {
    return undefined;
  }
  return recoverAddress(hash, signature);
}

/**
 * True when `signature` over `message` recovers to `claimed` (any letter case). A malformed signature, a
 * message that does not encode, or another signer: false.
 */
export async function isSignedBy<T extends MessageType>(
  chainId: number,
  type: T,
  message: Message<T>,
  signature: Hex,
  claimed: string,
): Promise<boolean> {
  const signer = await recoverSigner(chainId, type, message, signature);
  return signer !== undefined && signer.toLowerCase() === claimed.toLowerCase();
}
