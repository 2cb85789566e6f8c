/**
 * The gateway's client of the certificate service (D64, D65; docs/certificates.md): every call as design19's
 * table has it. Writes, leases and certificate reads carry the three CERT_HEADERS (an EIP-712 CertRequest signed
 * by the device key, signCertRequest); reading a challenge is open. An answer other than 2xx becomes an EdgeError
 * with the service's own code and status (409 CERTS_LEASE_HELD, 429 CERTS_BACKOFF, ...); an unreachable service,
 * a timeout or a reply of the wrong shape is 502 EDGE_NODE_CERTS_UNREACHABLE.
 *
 * Bodies are never logged here, and errors carry the service's message only: a certificate's private key travels
 * in `putCertificate`'s body and must not reach a log through an error.
 */
import { type Static, type TSchema } from "@fastify/type-provider-typebox";
import { Value } from "typebox/value";

import { EdgeError, messageOf } from "../../../offchain/common/errors";
import {
  ACME_TOKEN_PATTERN,
  type CertAction,
  type CertificateQueryReply,
  CertificateQueryReplySchema,
  type ChallengeReply,
  ChallengeReplySchema,
  DOMAIN_PATTERN,
  type LeaseReply,
  LeaseReplySchema,
  signCertRequest,
} from "../../../offchain/common/protocol/certs";
import type { Signer } from "../../context";
import { nodeError } from "../../errors";

/** How long one call to the service may take. */
export const CERT_CALL_TIMEOUT_MS = 10_000;

export class CertServiceClient {
  private readonly base: string;

  constructor(
    private readonly signer: Signer,
    baseUrl: string,
    private readonly timeoutMs = CERT_CALL_TIMEOUT_MS,
  ) {
    this.base = baseUrl.replace(/\/+$/, "");
  }

  async putChallenge(token: string, domain: string, keyAuthorization: string): Promise<void> {
    await this.call("PUT", `/challenges/${checkToken(token)}`, "challenge.put", token, { domain, keyAuthorization });
  }

  async deleteChallenge(token: string): Promise<void> {
    await this.call("DELETE", `/challenges/${checkToken(token)}`, "challenge.delete", token, undefined);
  }

  /** The key authorization of `token`, or undefined when the service holds none (404). Open: not signed. */
  async getChallenge(token: string): Promise<ChallengeReply | undefined> {
    const reply = await this.call("GET", `/challenges/${checkToken(token)}`, undefined, token, undefined, [404]);
    if (reply === undefined) return undefined;
    return shaped(reply, ChallengeReplySchema, "challenge");
  }

  async takeLease(domain: string, ttlSeconds: number): Promise<LeaseReply> {
    const path = `/orders/${checkDomain(domain)}/lease`;
    return shaped(await this.call("POST", path, "lease.take", domain, { ttlSeconds }), LeaseReplySchema, "lease");
  }

  async releaseLease(domain: string): Promise<void> {
    await this.call("DELETE", `/orders/${checkDomain(domain)}/lease`, "lease.release", domain, undefined);
  }

  async orderFailed(domain: string, reason: string): Promise<void> {
    const body = { reason: reason.slice(0, 500) || "failed" };
    await this.call("POST", `/orders/${checkDomain(domain)}/failure`, "order.failed", domain, body);
  }

  /** Stores an issued certificate (leaf first, then its chain) and its key; the body is never logged. */
  async putCertificate(domain: string, chain: string, privateKey: string): Promise<void> {
    const path = `/certificates/${checkDomain(domain)}`;
    await this.call("PUT", path, "certificate.put", domain, { chain, privateKey });
  }

  async query(domains: string[], have: string[]): Promise<CertificateQueryReply> {
    const reply = await this.call("POST", "/certificates/query", "certificate.query", "", { domains, have });
    return shaped(reply, CertificateQueryReplySchema, "certificate query");
  }

  /** One call: signed when `action` is given; `allow` lists statuses that answer undefined instead of throwing. */
  private async call(
    method: string,
    path: string,
    action: CertAction | undefined,
    subject: string,
    body: unknown,
    allow: number[] = [],
  ): Promise<unknown> {
    const headers: Record<string, string> = action
      ? await signCertRequest(this.signer.account, this.signer.chainId, action, subject, body ?? null)
      : {};
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw nodeError("EDGE_NODE_CERTS_UNREACHABLE", `certificate service ${method} ${path}: ${messageOf(error)}`);
    }
    const text = await response.text().catch(() => "");
    if (allow.includes(response.status)) return undefined;
    if (response.status === 204) return null;
    const json = parseJson(text);
    if (response.ok) return json;
    const answer = (json ?? {}) as { code?: unknown; error?: unknown; message?: unknown };
    const code = typeof answer.code === "string" ? answer.code : "EDGE_NODE_CERTS_UNREACHABLE";
    const message = typeof answer.message === "string" ? answer.message : String(answer.error ?? response.statusText);
    const { code: _c, error: _e, message: _m, statusCode: _s, ...details } = (json ?? {}) as Record<string, unknown>;
    throw new EdgeError(code, `certificate service ${method} ${path}: ${response.status} ${message}`, {
      status: response.status >= 500 ? 502 : response.status,
      details,
    });
  }
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

function shaped<S extends TSchema>(reply: unknown, schema: S, what: string): Static<S> {
  if (!Value.Check(schema, reply))
    throw nodeError("EDGE_NODE_CERTS_UNREACHABLE", `the certificate service's ${what} reply has the wrong shape`);
  return reply as Static<S>;
}

function checkToken(token: string): string {
  if (!ACME_TOKEN_PATTERN.test(token)) throw new TypeError("not an ACME token");
  return token;
}

function checkDomain(domain: string): string {
  if (!DOMAIN_PATTERN.test(domain)) throw new TypeError(`not a domain: ${JSON.stringify(domain.slice(0, 255))}`);
  return domain;
}

/** A service answer's code, or undefined for anything else (a local error). */
export const certErrorCode = (error: unknown): string | undefined =>
  error instanceof EdgeError ? error.code : undefined;
