/**
 * The gateway's certificate sync (D65), one pass every --cert-sync-ms: asks the certificate service for every
 * site hostname's certificate (pages of 500, naming the fingerprints loaded already so those come back
 * "current"), loads the issued ones (the key unsealed with the device key, ctx.unseal(sealedKey, domain), and
 * checked against the leaf) into the CertStore, where the next handshake picks them up. With --acme-directory it
 * also orders the hostnames with no certificate or due for renewal (renewAt <= now) that no gateway is ordering
 * (no lease) and that are not backing off, at most 4 orders at once, each in the background (AcmeOrderer).
 *
 * A key that does not open (sealed to another device, tampered) or does not match is refused and logged with the
 * domain and the reason only: never the key, sealed or not.
 */
import { messageOf } from "../../../offchain/common/errors";
import { type CertificateEntry, DOMAIN_PATTERN } from "../../../offchain/common/protocol/certs";
import type { Sealed } from "../../../offchain/common/seal";
import type { GatewayContext } from "../../context";
import type { AcmeOrderer } from "./acme";
import type { CertServiceClient } from "./certClient";
import type { CertMetrics } from "./certMetrics";
import type { CertStore } from "./tls";

export const QUERY_PAGE = 500;
export const MAX_ORDERS = 4;

const IPV4 = /^\d+(\.\d+){3}$/;

export interface CertSyncParts {
  service: Pick<CertServiceClient, "query">;
  store: CertStore;
  /** The hostnames of the gateway's sites now. */
  hostnames(): Iterable<string>;
  unseal(sealed: Sealed, context: string): Buffer;
  orderer?: Pick<AcmeOrderer, "order">;
  metrics: Pick<CertMetrics, "orders" | "loadFailures">;
  log: Pick<GatewayContext["log"], "info" | "warn">;
}

export class CertSync {
  private readonly ordering = new Map<string, Promise<void>>();
  lastError: string | null = null;
  lastSyncAt: number | null = null;
  loaded = 0;
  refused = 0;

  constructor(
    private readonly parts: CertSyncParts,
    private readonly maxOrders = MAX_ORDERS,
  ) {}

  /** One pass: every page queried, issued certificates loaded, due orders started (not awaited). */
  async sync(now = Date.now()): Promise<void> {
    const domains = [...new Set([...this.parts.hostnames()].map((h) => h.toLowerCase()))].filter(
      (d) => DOMAIN_PATTERN.test(d) && !IPV4.test(d),
    );
    // A certificate of a site no longer served, or expired, is dropped: its name is refused from the next handshake.
    const wanted = new Set(domains);
    for (const held of this.parts.store.all())
      if (!wanted.has(held.domain) || held.notAfter <= now) this.parts.store.remove(held.domain);
    const due: string[] = [];
    try {
      for (let i = 0; i < domains.length; i += QUERY_PAGE) {
        const page = domains.slice(i, i + QUERY_PAGE);
        const have = page.flatMap((d) => {
          const loaded = this.parts.store.get(d);
          return loaded && loaded.notAfter > now ? [loaded.fingerprint] : [];
        });
        const { certificates } = await this.parts.service.query(page, have);
        for (const entry of certificates) {
          if (!wanted.has(entry.domain)) continue; // only what was asked
          if (entry.status === "issued") this.load(entry, now);
          if (this.isDue(entry, now)) due.push(entry.domain);
        }
      }
      this.lastError = null;
      this.lastSyncAt = now;
    } finally {
      for (const domain of due) this.startOrder(domain);
    }
  }

  /** Waits for the orders under way (stop). */
  async settle(): Promise<void> {
    await Promise.all(this.ordering.values());
  }

  get ordersInFlight(): number {
    return this.ordering.size;
  }

  private load(entry: CertificateEntry, now: number): void {
    const { domain } = entry;
    try {
      if (!entry.chain || !entry.sealedKey) throw new Error("the entry has no chain or no sealed key");
      let key: string;
      try {
        key = this.parts.unseal(entry.sealedKey, domain).toString("utf8");
      } catch {
        throw new Error("the sealed key does not open with this device's key");
      }
      const loaded = this.parts.store.load(domain, entry.chain, key, now);
      this.loaded++;
      this.parts.log.info({ domain, fingerprint: loaded.fingerprint, notAfter: loaded.notAfter }, "certificate loaded");
    } catch (error) {
      this.refused++;
      this.parts.metrics.loadFailures.inc();
      this.parts.log.warn({ domain, err: messageOf(error) }, "certificate from the service refused");
    }
  }

  private isDue(entry: CertificateEntry, now: number): boolean {
    if (!this.parts.orderer || this.ordering.has(entry.domain)) return false;
    if ((entry.leasedUntil ?? 0) > now || (entry.backoffUntil ?? 0) > now) return false;
    return entry.status === "none" || (entry.renewAt !== undefined && entry.renewAt <= now);
  }

  private startOrder(domain: string): void {
    if (!this.parts.orderer || this.ordering.size >= this.maxOrders || this.ordering.has(domain)) return;
    const run = this.parts.orderer
      .order(domain)
      .then((result) => {
        this.parts.metrics.orders.inc({ outcome: result.outcome });
        if (result.outcome !== "issued") return;
        try {
          this.parts.store.load(domain, result.issued.chain, result.issued.privateKey);
        } catch (error) {
          this.parts.metrics.loadFailures.inc();
          this.parts.log.warn({ domain, err: messageOf(error) }, "issued certificate would not load");
        }
      })
      .finally(() => this.ordering.delete(domain));
    this.ordering.set(domain, run);
  }
}
