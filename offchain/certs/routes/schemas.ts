/** Path parameters and replies of the certificate service's routes that are not wire schemas of the protocol. */
import { Type } from "@fastify/type-provider-typebox";

import { AcmeTokenSchema, CERT_HEADERS, DomainSchema } from "../../common/protocol/certs";

export const TokenParams = Type.Object({ token: AcmeTokenSchema }, { additionalProperties: false });
export const DomainParams = Type.Object({ domain: DomainSchema }, { additionalProperties: false });

/** The three signing headers, for the docs (the hook checks them before any schema). */
export const SignedHeaders = Type.Object({
  [CERT_HEADERS.device]: Type.Optional(Type.String()),
  [CERT_HEADERS.timestamp]: Type.Optional(Type.String()),
  [CERT_HEADERS.signature]: Type.Optional(Type.String()),
});

export const FailureReplySchema = Type.Object({
  domain: Type.String(),
  failures: Type.Integer(),
  /** Unix milliseconds: no lease is given for the domain before then. */
  backoffUntil: Type.Integer(),
});

export const StoredReplySchema = Type.Object({
  domain: Type.String(),
  fingerprint: Type.String(),
  notBefore: Type.Integer(),
  notAfter: Type.Integer(),
  renewAt: Type.Integer(),
});

/** A refusal: the shared error shape, with the details that explain it (holder and expiresAt of a held lease, …). */
export const CertsErrorSchema = Type.Object(
  { statusCode: Type.Integer(), code: Type.String(), error: Type.String() },
  { additionalProperties: true },
);
