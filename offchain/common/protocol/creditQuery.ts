/**
 * A gateway's signed question to billing, POSTed to /credit: how much each of these customers may still use in
 * the open period (PROTOCOL.md, Revision 2, "Credit"). EIP-712 `CreditQuery` in the protocol's message domain,
 * over the hash of the customers' addresses (20 bytes each, in the order sent) and a timestamp in milliseconds.
 * The typed struct lives here rather than in eip712.ts's MESSAGE_TYPES: it is the one message billing answers
 * rather than stores, and the replay key is its digest (creditQueryDigest), never the signature's text.
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import { type Address, type Hex, type LocalAccount, hashTypedData } from "viem";

import { keccak256, recoverAddress } from "../crypto";
import { messageDomain } from "./eip712";
import { AddressSchema, SignatureSchema, Uint256DecimalSchema } from "./primitives";

/** At most this many customers in one query: a gateway serving more asks in pages. */
export const MAX_CREDIT_CUSTOMERS = 1_000;

const CREDIT_TYPES = {
  CreditQuery: [
    { name: "gateway", type: "address" },
    { name: "customersHash", type: "bytes32" },
    { name: "timestamp", type: "uint256" },
  ],
} as const;

export const CreditQueryBodySchema = Type.Object(
  {
    gateway: AddressSchema,
    customers: Type.Array(AddressSchema, { minItems: 1, maxItems: MAX_CREDIT_CUSTOMERS }),
    /** Unix milliseconds, as a decimal string. */
    timestamp: Type.String({ pattern: "^\\d{1,15}$" }),
    signature: SignatureSchema,
  },
  { additionalProperties: false },
);
export type CreditQueryBody = Static<typeof CreditQueryBodySchema>;

const Amount = Uint256DecimalSchema;
/** Only what a gateway needs to admit jobs (L4): a customer's usage and balance are not told to any gateway. */
export const CustomerCreditSchema = Type.Object({
  customer: Type.String(),
  /** What the customer may still use this period: collectable + free buffer - usage so far, priced; at least 0. */
  remaining: Amount,
  /** Whether the usage so far has used up the collectable balance and the free buffer (remaining is then 0). */
  exhausted: Type.Boolean(),
});
export type CustomerCredit = Static<typeof CustomerCreditSchema>;

export const CreditReplySchema = Type.Object({
  period: Type.String(),
  /** Billing's clock when the answer was computed (ms). */
  asOf: Type.Integer(),
  /** How old the vault reads in this answer may be, at most (ms). */
  balanceMaxAgeMs: Type.Integer(),
  /** The free buffer every customer has (the same for all): `remaining` above it means a collectable balance. */
  freeBuffer: Amount,
  /** Billing's prices per service and metric, so the gateway can price what it serves before billing sees it. */
  prices: Type.Record(Type.String(), Type.Record(Type.String(), Type.Object({ unitSize: Amount, unitPrice: Amount }))),
  credits: Type.Array(CustomerCreditSchema),
});
export type CreditReply = Static<typeof CreditReplySchema>;

/** keccak256 of the addresses' 20 bytes each, in order (letter case free). */
export function creditCustomersHash(customers: readonly string[]): Hex {
  return keccak256(`0x${customers.map((c) => c.slice(2).toLowerCase()).join("")}` as Hex);
}

const typed = (gateway: string, customers: readonly string[], timestamp: bigint) => ({
  domain: undefined as never,
  types: CREDIT_TYPES,
  primaryType: "CreditQuery" as const,
  // Lowercase: the same bytes, and a mixed-case address with a bad EIP-55 checksum is not an error (L3).
  message: { gateway: gateway.toLowerCase() as Address, customersHash: creditCustomersHash(customers), timestamp },
});

export async function signCreditQuery(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  chainId: number,
  customers: readonly string[],
  timestamp = BigInt(Date.now()),
): Promise<CreditQueryBody> {
  const signature = await account.signTypedData({
    ...typed(account.address, customers, timestamp),
    domain: messageDomain(chainId),
  });
  return { gateway: account.address, customers: [...customers], timestamp: timestamp.toString(), signature };
}

/** The EIP-712 digest the query signs: its replay key (a re-encoded signature of the same query has the same one). */
export function creditQueryDigest(chainId: number, body: CreditQueryBody): Hex {
  return hashTypedData({
    ...typed(body.gateway, body.customers, BigInt(body.timestamp)),
    domain: messageDomain(chainId),
  });
}

/** Who signed the query with digest `digest` (undefined for a malformed signature). */
export function creditQuerySigner(digest: Hex, body: CreditQueryBody): Address | undefined {
  return recoverAddress(digest, body.signature as Hex);
}
