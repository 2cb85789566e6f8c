/**
 * TLS at the gateway (D65): the certificates it holds (CertStore: domain -> secure context, fingerprint, expiry)
 * and the HTTPS front door on --tls-port, which picks the context by SNI in each handshake. A name the gateway
 * holds no certificate for (or no name at all) is refused in the handshake; a replaced context is used from the
 * next handshake on, with no restart. It serves through the same request handler as the plain HTTP door.
 *
 * Private keys live only in the secure contexts (memory): never written to the data directory, never logged.
 */
import { X509Certificate, createHash, createPrivateKey } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type Server, createServer } from "node:https";
import { type SecureContext, createSecureContext } from "node:tls";

import type { CertMetrics } from "./certMetrics";

export interface LoadedCertificate {
  domain: string;
  /** sha256 of the leaf's DER, lower-case hex: what the certificate query's `have` names. */
  fingerprint: string;
  notBefore: number;
  notAfter: number;
  context: SecureContext;
}

/** The leaf first, then the rest of the chain: each PEM block of `chain`. */
export function splitChain(chain: string): string[] {
  return chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export const leafFingerprint = (leaf: X509Certificate): string => createHash("sha256").update(leaf.raw).digest("hex");

export class CertStore {
  private readonly byDomain = new Map<string, LoadedCertificate>();

  /**
   * Checks and loads a certificate for `domain`: the leaf names it, is valid now, matches `keyPem`, and ends no
   * earlier than the one held (R19-1: never replaced by an older one). Throws (with no key material in the
   * message) otherwise; the certificate held before stays.
   */
  load(domain: string, chain: string, keyPem: string, now = Date.now()): LoadedCertificate {
    const pems = splitChain(chain);
    if (pems.length === 0) throw new Error(`the chain of ${domain} holds no certificate`);
    const leaf = new X509Certificate(pems[0]);
    if (leaf.checkHost(domain) === undefined) throw new Error(`the certificate does not name ${domain}`);
    const notBefore = Date.parse(leaf.validFrom);
    const notAfter = Date.parse(leaf.validTo);
    if (!(notAfter > now)) throw new Error(`the certificate of ${domain} expired at ${leaf.validTo}`);
    const held = this.byDomain.get(domain);
    if (held && held.notAfter > notAfter && held.fingerprint !== leafFingerprint(leaf))
      throw new Error(
        `the certificate of ${domain} ends at ${leaf.validTo}, before the one held (${new Date(held.notAfter).toISOString()})`,
      );
    let key;
    try {
      key = createPrivateKey(keyPem);
    } catch {
      throw new Error(`the private key of ${domain} does not parse`);
    }
    if (!leaf.checkPrivateKey(key)) throw new Error(`the private key does not match the certificate of ${domain}`);
    const context = createSecureContext({ cert: pems.join("\n"), key: keyPem, minVersion: "TLSv1.2" });
    const loaded = { domain, fingerprint: leafFingerprint(leaf), notBefore, notAfter, context };
    this.byDomain.set(domain, loaded);
    return loaded;
  }

  /** The certificate for an SNI name (any letter case, a trailing dot ignored). */
  get(servername: string): LoadedCertificate | undefined {
    return this.byDomain.get(servername.toLowerCase().replace(/\.$/, ""));
  }

  remove(domain: string): void {
    this.byDomain.delete(domain);
  }

  all(): LoadedCertificate[] {
    return [...this.byDomain.values()];
  }

  get size(): number {
    return this.byDomain.size;
  }
}

/** Marks the error an unknown SNI name fails the handshake with (so it is counted once, as unknown_name). */
class UnknownServerName extends Error {}

export interface TlsFrontDoor {
  start(): Promise<string>;
  stop(): Promise<void>;
  readonly url: string | undefined;
}

/** A TLS handshake must end within this (R19-9): a client that stalls it is dropped. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** At most this many connections open at the HTTPS front door at once (R19-9); more are refused. */
export const MAX_TLS_CONNECTIONS = 10_000;

export function createTlsFrontDoor(
  store: CertStore,
  handler: (request: IncomingMessage, response: ServerResponse) => void,
  options: { port: number; host: string; maxConnections?: number; handshakeTimeoutMs?: number },
  metrics: Pick<CertMetrics, "handshakes">,
): TlsFrontDoor {
  let server: Server | undefined;
  let url: string | undefined;
  return {
    get url() {
      return url;
    },
    async start() {
      const listening = createServer(
        {
          minVersion: "TLSv1.2",
          handshakeTimeout: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
          SNICallback: (servername, callback) => {
            const loaded = store.get(servername);
            if (loaded) callback(null, loaded.context);
            else callback(new UnknownServerName(`no certificate for ${JSON.stringify(servername.slice(0, 255))}`));
          },
        },
        handler,
      );
      listening.keepAliveTimeout = 65_000;
      listening.headersTimeout = 10_000;
      listening.requestTimeout = 30_000;
      listening.maxConnections = options.maxConnections ?? MAX_TLS_CONNECTIONS;
      listening.on("secureConnection", () => metrics.handshakes.inc({ outcome: "ok" }));
      listening.on("tlsClientError", (error, socket) => {
        metrics.handshakes.inc({ outcome: error instanceof UnknownServerName ? "unknown_name" : "failed" });
        socket.destroy();
      });
      await new Promise<void>((resolve, reject) => {
        listening.once("error", reject);
        listening.listen(options.port, options.host, resolve);
      });
      server = listening;
      url = `https://${options.host}:${(listening.address() as { port: number }).port}`;
      return url;
    },
    async stop() {
      if (!server) return;
      const closing = server;
      server = undefined;
      await new Promise<void>((resolve) => {
        closing.close(() => resolve());
        closing.closeIdleConnections();
      });
    },
  };
}
