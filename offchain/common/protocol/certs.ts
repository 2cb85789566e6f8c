/**
 * The certificate service's wire protocol (D64, docs/certificates.md): what gateways send and receive.
 *
 * Writes, leases and certificate reads are signed by the gateway's device key as an EIP-712 `CertRequest` carried
 * in three headers (CERT_HEADERS); the service checks, cheapest first: the headers' shape, the timestamp window,
 * the replay guard (keyed on the digest), the signature (canonical, recovering the claimed device), and last that
 * the chain view admits the device as a gateway. Reads of challenge responses are open: a key authorization is
 * public by nature (the gateway serves it to anyone over plain HTTP).
 *
 * Private keys never travel in the clear from the service: a certificate reply seals the key to the public key
 * recovered from the request's own signature (offchain/common/seal.ts), with the domain as context.
 */
import { type Static, Type } from "@fastify/type-provider-typebox";
import { type Hex, type LocalAccount } from "viem";

import { SealedSchema } from "../seal";
import { type Message, signMessage } from "./eip712";
import { jobBodyHash } from "./hashes";
import { AddressSchema } from "./primitives";

export const CERT_HEADERS = {
  device: "x-edge-device",
  timestamp: "x-edge-timestamp",
  signature: "x-edge-signature",
} as const;

/** How far a request's timestamp may be from the service's clock, either way. */
export const CERT_REQUEST_WINDOW_MS = 60_000;

export const CERT_ACTIONS = [
  "challenge.put",
  "challenge.delete",
  "lease.take",
  "lease.release",
  "order.failed",
  "certificate.put",
  "certificate.query",
] as const;
export type CertAction = (typeof CERT_ACTIONS)[number];

/** An ACME HTTP-01 token: base64url (RFC 8555 §8.3: at least 128 bits of entropy, so 22 characters or more). */
export const ACME_TOKEN_PATTERN = /^[A-Za-z0-9_-]{22,128}$/;
/** A site's host name as certificates name it: lower case, labels of letters, digits and hyphens. */
export const DOMAIN_PATTERN =
  /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export const AcmeTokenSchema = Type.String({ pattern: ACME_TOKEN_PATTERN.source });
export const DomainSchema = Type.String({ pattern: DOMAIN_PATTERN.source, maxLength: 253 });

/** PUT /challenges/:token */
export const ChallengePutSchema = Type.Object(
  {
    domain: DomainSchema,
    /** `token.thumbprint` (RFC 8555 §8.1). */
    keyAuthorization: Type.String({ pattern: "^[A-Za-z0-9_-]{22,128}\\.[A-Za-z0-9_-]{43}$" }),
  },
  { additionalProperties: false },
);
export type ChallengePut = Static<typeof ChallengePutSchema>;

/** GET /challenges/:token (open) */
export const ChallengeReplySchema = Type.Object({ token: Type.String(), keyAuthorization: Type.String() });
export type ChallengeReply = Static<typeof ChallengeReplySchema>;

/** POST /orders/:domain/lease: one order per domain at a time. */
export const LeaseTakeSchema = Type.Object(
  { ttlSeconds: Type.Integer({ minimum: 10, maximum: 900 }) },
  { additionalProperties: false },
);
export const LeaseReplySchema = Type.Object({
  domain: Type.String(),
  holder: AddressSchema,
  /** Unix milliseconds. */
  expiresAt: Type.Integer(),
});
export type LeaseReply = Static<typeof LeaseReplySchema>;

/** POST /orders/:domain/failure: the holder's order failed; the lease ends and the domain backs off. */
export const OrderFailedSchema = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 500 }) },
  { additionalProperties: false },
);

/** PUT /certificates/:domain: the lease holder's issued certificate (leaf first, then its chain) and its key. */
export const CertificatePutSchema = Type.Object(
  {
    chain: Type.String({ minLength: 1, maxLength: 65_536 }),
    privateKey: Type.String({ minLength: 1, maxLength: 16_384 }),
  },
  { additionalProperties: false },
);
export type CertificatePut = Static<typeof CertificatePutSchema>;

/** POST /certificates/query: the certificates of these domains, less those the gateway holds already. */
export const CertificateQuerySchema = Type.Object(
  {
    domains: Type.Array(DomainSchema, { minItems: 1, maxItems: 500, uniqueItems: true }),
    /** SHA-256 fingerprints (hex) of the leaf certificates the gateway holds: those come back as "current". */
    have: Type.Array(Type.String({ pattern: "^[0-9a-f]{64}$" }), { maxItems: 500, default: [] }),
  },
  { additionalProperties: false },
);
export type CertificateQuery = Static<typeof CertificateQuerySchema>;

export const CertificateEntrySchema = Type.Object({
  domain: Type.String(),
  /** none: never issued (or expired); current: the gateway holds it already; issued: here it is. */
  status: Type.Union([Type.Literal("none"), Type.Literal("current"), Type.Literal("issued")]),
  fingerprint: Type.Optional(Type.String()),
  /** Unix milliseconds. */
  notBefore: Type.Optional(Type.Integer()),
  notAfter: Type.Optional(Type.Integer()),
  /** Two thirds of the way from notBefore to notAfter: from then on a new order is due. */
  renewAt: Type.Optional(Type.Integer()),
  chain: Type.Optional(Type.String()),
  /** The private key (PEM), sealed to the requesting device with the domain as context. */
  sealedKey: Type.Optional(SealedSchema),
  /** Whether an order of this domain is under way (a lease is held), and until when the domain backs off. */
  leasedUntil: Type.Optional(Type.Integer()),
  backoffUntil: Type.Optional(Type.Integer()),
});
export type CertificateEntry = Static<typeof CertificateEntrySchema>;
export const CertificateQueryReplySchema = Type.Object({ certificates: Type.Array(CertificateEntrySchema) });
export type CertificateQueryReply = Static<typeof CertificateQueryReplySchema>;

/** The renewal point: two thirds of a certificate's lifetime (PROTOCOL.md's certificate service, issue 19). */
export const renewAt = (notBefore: number, notAfter: number): number =>
  notBefore + Math.floor(((notAfter - notBefore) * 2) / 3);

/** keccak256 of the body's RFC 8785 canonical JSON; `null` for a request without a body. */
export const certBodyHash = (body: unknown): Hex => jobBodyHash(body ?? null);

export function certRequestMessage(
  gateway: string,
  action: CertAction,
  subject: string,
  body: unknown,
  timestamp: number,
): Message<"CertRequest"> {
  return {
    gateway: gateway.toLowerCase() as `0x${string}`,
    action,
    subject,
    bodyHash: certBodyHash(body),
    timestamp: BigInt(timestamp),
  };
}

/** The three headers that sign a request to the certificate service. */
export async function signCertRequest(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  chainId: number,
  action: CertAction,
  subject: string,
  body: unknown,
  nowMs = Date.now(),
): Promise<Record<string, string>> {
  const signature = await signMessage(
    account,
    chainId,
    "CertRequest",
    certRequestMessage(account.address, action, subject, body, nowMs),
  );
  return {
    [CERT_HEADERS.device]: account.address,
    [CERT_HEADERS.timestamp]: String(nowMs),
    [CERT_HEADERS.signature]: signature,
  };
}
