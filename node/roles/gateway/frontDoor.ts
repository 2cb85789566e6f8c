/**
 * The front door's wiring (D44, D54): with a sites file or `--stargates` (the configuration's sites, configured.ts),
 * the gateway opens a plain HTTP server of its own on `--cdn-port` (customers' traffic, apart from the API port
 * where hosts link and the team reads /status), whose every request goes to CdnFrontDoor (cdn.ts). The sites file
 * is reloaded when it changes (sites.ts) until a configuration replaces it; sampled content checks run one
 * response in `verifyOneIn` (the flag, or the configuration's dispatch policy).
 *
 * Certificates (D65): every request first passes the ACME challenge responder (challenges.ts: the
 * /.well-known/acme-challenge/ path for any Host, before the blocklist and the site lookup). With --certs the
 * certificate sync (certSync.ts) loads the sites' certificates into the CertStore, with --tls-port the HTTPS front
 * door (tls.ts) serves them by SNI through the same handler, and with --acme-directory due orders are placed
 * (acme.ts).
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";

import { WorkLoop } from "../../../offchain/common/workLoop";
import type { GatewayConfig, GatewayContext } from "../../context";
import { AcmeOrderer } from "./acme";
import { CdnFrontDoor, type CdnParts } from "./cdn";
import { CertServiceClient } from "./certClient";
import { createCertMetrics } from "./certMetrics";
import { CertSync } from "./certSync";
import { ChallengeResponder } from "./challenges";
import { ContentChecker } from "./contentCheck";
import { GatewaySettings, type SettingsParts, SiteSelector } from "./configured";
import { SiteFile } from "./sites";
import { CertStore, type TlsFrontDoor, createTlsFrontDoor } from "./tls";

/** Largest body a sampled check reads from the origin. */
const CHECK_MAX_BYTES = 10 * 1024 * 1024;

type FrontDoorContext = Pick<GatewayContext, "signer" | "log" | "serving" | "work" | "tracing" | "metrics" | "unseal">;

type CertConfig = Pick<
  GatewayConfig,
  "dataDir" | "listenHost" | "certs" | "tlsPort" | "acmeDirectory" | "acmeCa" | "acmeEmail" | "certSyncMs"
>;

/**
 * The gateway's sites serving: the sites file (loaded now: an invalid one stops the daemon) if given, the
 * configuration's settings (configured.ts) and the front door, if it opens.
 */
export function siteServing(
  ctx: FrontDoorContext,
  config: CertConfig &
    Pick<GatewayConfig, "sites" | "stargates" | "cdnPort" | "verifyOneIn" | "queueWaitMs" | "jobTimeoutMs" | "region">,
  parts: Omit<CdnParts, "sites" | "checker" | "blocklist" | "queue" | "hosts" | "region"> & {
    queue: CdnParts["queue"] & SettingsParts["queue"];
    hosts: CdnParts["hosts"] & SettingsParts["hosts"];
  },
): { frontDoor: FrontDoor | undefined; settings: GatewaySettings } {
  const sites = new SiteSelector(config.sites ? new SiteFile(config.sites, ctx.log) : undefined);
  const checker = new ContentChecker({
    oneIn: config.verifyOneIn,
    maxBytes: CHECK_MAX_BYTES,
    timeoutMs: config.jobTimeoutMs,
  });
  const settings = new GatewaySettings({
    ...{ sites, checker, queue: parts.queue, hosts: parts.hosts, log: ctx.log },
    defaults: { verifyOneIn: config.verifyOneIn, queueWaitMs: config.queueWaitMs },
  });
  const frontDoor = createFrontDoor(ctx, config, {
    ...{ ...parts, sites, checker, blocklist: settings.currentBlocklist },
    region: config.region,
  });
  return { frontDoor, settings };
}

export interface FrontDoor {
  /** Opens the HTTP door, then the HTTPS door (with --certs and --tls-port). */
  start(): Promise<void>;
  /** Starts the certificate sync (after start: orders need the HTTP door answering challenges). */
  startCerts(): void;
  /** Stops the certificate sync and waits for the orders under way (before stop). */
  stopCerts(): Promise<void>;
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

function createFrontDoor(
  ctx: FrontDoorContext,
  config: CertConfig & Pick<GatewayConfig, "sites" | "stargates" | "cdnPort" | "jobTimeoutMs">,
  parts: CdnParts & { sites: SiteSelector; checker: ContentChecker },
): FrontDoor | undefined {
  if (!config.sites && config.stargates.length === 0) return undefined;
  const { sites, checker } = parts;
  const door = new CdnFrontDoor(ctx, { ...parts, sites, checker }, config.jobTimeoutMs);
  const certs = certServing(ctx, config, sites);
  // One handler for both doors: a challenge's path first, then the site's.
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    if (!certs.challenges.handle(request, response)) door.handle(request, response);
  };
  let server: Server | undefined;
  let url: string | undefined;
  return {
    async start() {
      sites.start();
      const listening = createServer(handler);
      listening.keepAliveTimeout = 65_000;
      // Slow clients: the headers within 10 s, the whole request (at most 1 MiB of body) within 30 s.
      listening.headersTimeout = 10_000;
      listening.requestTimeout = 30_000;
      await new Promise<void>((resolve, reject) => {
        listening.once("error", reject);
        listening.listen(config.cdnPort, config.listenHost, resolve);
      });
      server = listening;
      url = `http://${config.listenHost}:${(listening.address() as { port: number }).port}`;
      ctx.log.info({ url, sites: sites.all().length }, "front door for sites open");
      const tls = certs.tls && (await certs.tls.start(handler));
      if (tls) ctx.log.info({ url: tls }, "HTTPS front door open (certificates by SNI)");
    },
    startCerts: () => certs.loop?.start(),
    async stopCerts() {
      await certs.loop?.stop();
      await certs.sync?.settle();
    },
    async stop() {
      sites.stop();
      await certs.tls?.stop();
      if (!server) return;
      const closing = server;
      await new Promise<void>((resolve) => {
        closing.close(() => resolve());
        closing.closeIdleConnections();
      });
    },
    status() {
      return {
        frontDoor: url ?? null,
        sites: { count: sites.all().length, source: sites.source, version: sites.version, lastError: sites.lastError },
        contentChecks: { oneIn: checker.sampling, ...checker.counts },
        ...certs.status(),
      };
    },
  };
}

interface CertServing {
  challenges: ChallengeResponder;
  tls?: { start(handler: Parameters<typeof createTlsFrontDoor>[1]): Promise<string>; stop(): Promise<void> };
  sync?: CertSync;
  loop?: WorkLoop;
  status(): Record<string, unknown>;
}

/** The certificate parts (D65): the challenge responder always (404 without --certs), the rest with --certs. */
function certServing(ctx: FrontDoorContext, config: CertConfig, sites: SiteSelector): CertServing {
  const store = new CertStore();
  const metrics = createCertMetrics(ctx.metrics.registry, { certificates: () => store.all() });
  const client = config.certs ? new CertServiceClient(ctx.signer, config.certs) : undefined;
  // Only the gateway's own sites' challenges are answered (R19-2).
  const challenges = new ChallengeResponder(client, metrics, ctx.log, (host) => sites.lookup(host) !== undefined);
  if (!client) return { challenges, status: () => ({ certificates: null }) };
  const device = ctx.signer.account.address;
  const orderer = config.acmeDirectory
    ? new AcmeOrderer(
        client,
        {
          directory: config.acmeDirectory,
          caFile: config.acmeCa,
          email: config.acmeEmail,
          dataDir: config.dataDir,
          device,
        },
        ctx.log,
      )
    : undefined;
  const sync = new CertSync({
    ...{ service: client, store, unseal: ctx.unseal, orderer, metrics, log: ctx.log },
    hostnames: () => sites.all().map((site) => site.hostname),
  });
  const loop = new WorkLoop(
    () => sync.sync(),
    config.certSyncMs,
    (error) => {
      sync.lastError = error.message;
      ctx.log.warn({ err: error.message }, "could not sync certificates from the certificate service");
    },
  );
  let door: TlsFrontDoor | undefined;
  const tlsPort = config.tlsPort;
  const tls =
    tlsPort === undefined
      ? undefined
      : {
          async start(handler: Parameters<typeof createTlsFrontDoor>[1]) {
            door = createTlsFrontDoor(store, handler, { port: tlsPort, host: config.listenHost }, metrics);
            return door.start();
          },
          stop: async () => door?.stop(),
        };
  return {
    challenges,
    tls,
    sync,
    loop,
    status: () => ({
      tlsFrontDoor: door?.url ?? null,
      certificates: {
        loaded: store.size,
        ordering: orderer !== undefined,
        ordersInFlight: sync.ordersInFlight,
        refused: sync.refused,
        lastSyncAt: sync.lastSyncAt,
        lastError: sync.lastError,
        challengesCached: challenges.cached,
      },
    }),
  };
}
