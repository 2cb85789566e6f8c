/**
 * The front door's wiring (D44): with a sites file, the gateway opens a plain HTTP server of its own on
 * `--cdn-port` (customers' traffic, apart from the API port where hosts link and the team reads /status), whose
 * every request goes to CdnFrontDoor (cdn.ts). The sites file is reloaded when it changes (sites.ts); a sampled
 * content checker runs when `--verify-one-in` is above 0.
 */
import { type Server, createServer } from "node:http";

import type { GatewayConfig, GatewayContext } from "../../context";
import { CdnFrontDoor, type CdnParts } from "./cdn";
import { ContentChecker } from "./contentCheck";
import { SiteFile } from "./sites";

/** Largest body a sampled check reads from the origin. */
const CHECK_MAX_BYTES = 10 * 1024 * 1024;

export interface FrontDoor {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): Record<string, unknown>;
}

export function createFrontDoor(
  ctx: Pick<GatewayContext, "signer" | "log" | "serving" | "work" | "tracing">,
  config: Pick<GatewayConfig, "sites" | "cdnPort" | "listenHost" | "verifyOneIn" | "jobTimeoutMs">,
  parts: Omit<CdnParts, "sites" | "checker">,
): FrontDoor | undefined {
  if (!config.sites) return undefined;
  const sites = new SiteFile(config.sites, ctx.log);
  const checker =
    config.verifyOneIn > 0
      ? new ContentChecker({ oneIn: config.verifyOneIn, maxBytes: CHECK_MAX_BYTES, timeoutMs: config.jobTimeoutMs })
      : undefined;
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
        sites: { count: sites.all().length, version: sites.version, lastError: sites.lastError },
        contentChecks: checker?.counts ?? null,
      };
    },
  };
}
