/**
 * The front door's wiring (D44, D54): with a sites file or `--stargates` (the configuration's sites, configured.ts),
 * the gateway opens a plain HTTP server of its own on `--cdn-port` (customers' traffic, apart from the API port
 * where hosts link and the team reads /status), whose every request goes to CdnFrontDoor (cdn.ts). The sites file
 * is reloaded when it changes (sites.ts) until a configuration replaces it; sampled content checks run one
 * response in `verifyOneIn` (the flag, or the configuration's dispatch policy).
 */
import { type Server, createServer } from "node:http";

import type { GatewayConfig, GatewayContext } from "../../context";
import { CdnFrontDoor, type CdnParts } from "./cdn";
import { ContentChecker } from "./contentCheck";
import { GatewaySettings, type SettingsParts, SiteSelector } from "./configured";
import { SiteFile } from "./sites";

/** Largest body a sampled check reads from the origin. */
const CHECK_MAX_BYTES = 10 * 1024 * 1024;

type FrontDoorContext = Pick<GatewayContext, "signer" | "log" | "serving" | "work" | "tracing">;

/**
 * The gateway's sites serving: the sites file (loaded now: an invalid one stops the daemon) if given, the
 * configuration's settings (configured.ts) and the front door, if it opens.
 */
export function siteServing(
  ctx: FrontDoorContext,
  config: Pick<
    GatewayConfig,
    "sites" | "stargates" | "cdnPort" | "listenHost" | "verifyOneIn" | "queueWaitMs" | "jobTimeoutMs"
  >,
  parts: Omit<CdnParts, "sites" | "checker" | "blocklist" | "queue" | "hosts"> & {
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
  const frontDoor = createFrontDoor(ctx, config, { ...parts, sites, checker, blocklist: settings.currentBlocklist });
  return { frontDoor, settings };
}

export interface FrontDoor {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

function createFrontDoor(
  ctx: FrontDoorContext,
  config: Pick<GatewayConfig, "sites" | "stargates" | "cdnPort" | "listenHost" | "jobTimeoutMs">,
  parts: CdnParts & { sites: SiteSelector; checker: ContentChecker },
): FrontDoor | undefined {
  if (!config.sites && config.stargates.length === 0) return undefined;
  const { sites, checker } = parts;
  const door = new CdnFrontDoor(ctx, { ...parts, sites, checker }, config.jobTimeoutMs);
  let server: Server | undefined;
  let url: string | undefined;
  return {
    async start() {
      sites.start();
      const listening = createServer((request, response) => door.handle(request, response));
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
    },
    async stop() {
      sites.stop();
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
      };
    },
  };
}
