/**
 * ACME orders at the gateway (D65), with acme-client: only with --acme-directory. One order per domain
 * network-wide: the domain's lease is taken from the certificate service first (409 CERTS_LEASE_HELD or 429
 * CERTS_BACKOFF: the order is skipped, not failed). Then a fresh ECDSA P-256 key and CSR, HTTP-01 only, each key
 * authorization written to the service (so any gateway answers it) before the CA is told to validate, and deleted
 * after; acme-client's own pre-check is skipped (it resolves names with the system resolver, and the CA reaches
 * whichever gateway DNS names). Success: the chain and key stored at the service (which releases the lease).
 * Failure: `POST /orders/:domain/failure` with a reason that carries no secret; the service backs the domain off.
 *
 * The ACME account key is kept in the data directory (`<device>-acme-account.pem`, mode 0600, created once);
 * certificates' keys are returned to the caller in memory only. --acme-ca adds a CA to the public roots for the
 * directory's TLS (Pebble's listener), for that directory's origin only.
 */
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { Agent } from "node:https";
import { join } from "node:path";
import { rootCertificates } from "node:tls";

import * as acme from "acme-client";

import { messageOf } from "../../../offchain/common/errors";
import type { GatewayContext } from "../../context";
import type { CertServiceClient } from "./certClient";
import { certErrorCode } from "./certClient";

/**
 * How long an order's lease is asked for (the service allows 10 to 900 s). The lease is taken again (extended)
 * just before the certificate is stored (R19-7), so an order may last up to the service's cap on one holder's
 * hold (--max-lease-hold-seconds, 1,800 s by default: three of these).
 */
export const LEASE_SECONDS = 600;

/** Lease refusals that mean "not this gateway's order now", not a fault: skipped quietly. */
const NOT_OURS = new Set(["CERTS_LEASE_HELD", "CERTS_BACKOFF", "CERTS_NOT_DUE", "CERTS_LEASE_CAPPED"]);

export interface Issued {
  chain: string;
  privateKey: string;
}

export type OrderResult = { outcome: "issued"; issued: Issued } | { outcome: "skipped" | "failed"; reason: string };

export interface AcmeOptions {
  directory: string;
  /** PEM file trusted for the directory's TLS besides the public roots. */
  caFile?: string;
  email?: string;
  dataDir: string;
  device: string;
}

// One interceptor on acme-client's shared axios instance gives each directory origin its own https agent, so
// gateways with different --acme-ca in one process do not overwrite each other's.
const agents = new Map<string, Agent>();
let intercepting = false;
function trustFor(directory: string, caFile: string | undefined): void {
  if (!caFile) return;
  agents.set(new URL(directory).origin, new Agent({ ca: [...rootCertificates, readFileSync(caFile, "utf8")] }));
  if (intercepting) return;
  intercepting = true;
  acme.axios.interceptors.request.use((config) => {
    if (!config.url) return config;
    try {
      const agent = agents.get(new URL(config.url).origin);
      if (agent) config.httpsAgent = agent;
    } catch {
      // not an absolute URL: axios's defaults apply
    }
    return config;
  });
}

/** The account key: read from the data directory, or created there once with mode 0600. */
async function accountKey(file: string): Promise<Buffer> {
  if (existsSync(file)) {
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    return readFileSync(file);
  }
  const key = await acme.crypto.createPrivateEcdsaKey("P-256");
  writeFileSync(file, key, { mode: 0o600, flag: "wx" });
  return key;
}

export class AcmeOrderer {
  private client?: Promise<acme.Client>;
  readonly accountKeyFile: string;

  constructor(
    private readonly service: Pick<
      CertServiceClient,
      "takeLease" | "putChallenge" | "deleteChallenge" | "putCertificate" | "orderFailed"
    >,
    private readonly options: AcmeOptions,
    private readonly log: Pick<GatewayContext["log"], "info" | "warn">,
  ) {
    this.accountKeyFile = join(options.dataDir, `${options.device.toLowerCase()}-acme-account.pem`);
    trustFor(options.directory, options.caFile);
  }

  /** Orders `domain`'s certificate under its lease; never throws. */
  async order(domain: string): Promise<OrderResult> {
    try {
      await this.service.takeLease(domain, LEASE_SECONDS);
    } catch (error) {
      const code = certErrorCode(error);
      const reason = messageOf(error);
      if (!NOT_OURS.has(code ?? "")) this.log.warn({ domain, err: reason }, "could not take the order's lease");
      return { outcome: "skipped", reason };
    }
    let issued: Issued;
    try {
      issued = await this.issue(domain);
    } catch (error) {
      const reason = `ACME order failed: ${messageOf(error)}`.slice(0, 500);
      this.log.warn({ domain, err: reason }, "certificate order failed");
      await this.service
        .orderFailed(domain, reason)
        .catch((e: Error) => this.log.warn({ domain, err: e.message }, "could not report the failed order"));
      return { outcome: "failed", reason };
    }
    // The order may have outlasted the lease asked for at its start: extend it first (R19-7). A refusal (the cap
    // reached, say) is logged; the store below still succeeds while the lease has not lapsed.
    await this.service
      .takeLease(domain, LEASE_SECONDS)
      .catch((error: Error) => this.log.warn({ domain, err: messageOf(error) }, "could not extend the order's lease"));
    try {
      await this.service.putCertificate(domain, issued.chain, issued.privateKey);
    } catch (error) {
      const reason = `the certificate service did not store the certificate: ${messageOf(error)}`.slice(0, 500);
      this.log.warn({ domain, err: reason }, "issued certificate not stored");
      await this.service.orderFailed(domain, reason).catch(() => undefined);
      return { outcome: "failed", reason };
    }
    this.log.info({ domain }, "certificate issued and stored");
    return { outcome: "issued", issued };
  }

  private async issue(domain: string): Promise<Issued> {
    const client = await (this.client ??= this.createClient().catch((error: Error) => {
      this.client = undefined;
      throw error;
    }));
    const [privateKey, csr] = await acme.crypto.createCsr(
      { commonName: domain, altNames: [domain] },
      await acme.crypto.createPrivateEcdsaKey("P-256"),
    );
    const chain = await client.auto({
      csr,
      email: this.options.email,
      termsOfServiceAgreed: true,
      skipChallengeVerification: true,
      challengePriority: ["http-01"],
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if (challenge.type !== "http-01") throw new Error(`no http-01 challenge for ${authz.identifier.value}`);
        await this.service.putChallenge(challenge.token, authz.identifier.value, keyAuthorization);
      },
      challengeRemoveFn: async (_authz, challenge) => {
        if (challenge.type === "http-01") await this.service.deleteChallenge(challenge.token);
      },
    });
    return { chain, privateKey: privateKey.toString() };
  }

  /**
   * The client, with its account registered once before any order (concurrent orders share it): left to auto(),
   * every order of a burst registered at once, and those answered "account exists" (HTTP 200) sent an empty account
   * update, which Pebble and Boulder refuse. An existing account (the key kept in the data directory) is looked up
   * with onlyReturnExisting; only when that fails is one created, agreeing to the terms.
   */
  private async createClient(): Promise<acme.Client> {
    const client = new acme.Client({
      directoryUrl: this.options.directory,
      accountKey: await accountKey(this.accountKeyFile),
      backoffAttempts: 5,
      backoffMin: 200,
      backoffMax: 5_000,
    });
    try {
      await client.createAccount({ onlyReturnExisting: true });
    } catch {
      const contact = this.options.email ? [`mailto:${this.options.email}`] : undefined;
      await client.createAccount({ termsOfServiceAgreed: true, ...(contact ? { contact } : {}) });
    }
    return client;
  }
}
