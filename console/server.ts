/**
 * The Console server: the bundled page, its stylesheet and script, /config.json (the chain id, the RPC URL and the
 * address book) and, given a stargate's URL, GET /api/regions (the map of regions, regionsApi.ts, read from the
 * stargate's public catalogue and the chain). The page talks to the chain through the user's wallet, so the
 * server holds no keys and proxies nothing.
 *
 *   const console = await startConsole({ rpcUrl, addressesFile, stargateUrl, port: 0 });   // { url, close }
 */
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import { Type } from "@fastify/type-provider-typebox";
import { Registry } from "prom-client";
import { http, createPublicClient } from "viem";

import { type AddressBook, AddressBookError, readAddressBook } from "../offchain/common/addressBook";
import { createServiceApp } from "../offchain/common/http";
import type { Runnable } from "../offchain/common/serve";
import { type ConsoleAssets, consoleAssets } from "./bundle";
import { DEFAULT_CONSOLE_PORT } from "./config";
import { ConsoleChainError, RegionSource, type RegionSourceOptions } from "./regionSource";
import { registerRegionRoutes } from "./regionsApi";

export interface ConsoleOptions {
  rpcUrl: string;
  /** The address book file, or the book itself. */
  addressesFile?: string;
  book?: AddressBook;
  port?: number;
  host?: string;
  logLevel?: string;
  logger?: FastifyBaseLogger;
  /** Refuse to start when the RPC's chain id differs from the address book's (default true). */
  checkChain?: boolean;
  /** A stargate's node URL: its public catalogue feeds GET /api/regions (none: that route answers 503). */
  stargateUrl?: string;
  /** The map's cache and limits (regionSource.ts), for tests. */
  regions?: Partial<Pick<RegionSourceOptions, "ttlMs" | "failureTtlMs" | "timeoutMs" | "maxBytes">>;
}

/** What the page reads at start. */
export interface PageConfig {
  chainId: number;
  rpcUrl: string;
  addresses: AddressBook;
}

/**
 * Content-Security-Policy: the page may load only its own script and stylesheet and fetch only its own server;
 * wallets inject their provider, so no connection to the chain is needed from the page itself.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const ContractEntrySchema = Type.Object({ address: Type.String(), blockNumber: Type.Integer() });
const PageConfigSchema = Type.Object({
  chainId: Type.Integer(),
  rpcUrl: Type.String(),
  addresses: Type.Object({
    chainId: Type.Integer(),
    contracts: Type.Record(Type.String(), ContractEntrySchema),
  }),
});

export function buildConsoleApp(options: {
  page: PageConfig;
  assets: ConsoleAssets;
  regions?: RegionSource;
  logLevel?: string;
  logger?: FastifyBaseLogger;
}): FastifyInstance {
  const { page, assets } = options;
  const app = createServiceApp({
    name: "console",
    codePrefix: "CONSOLE",
    logLevel: options.logLevel ?? "info",
    logger: options.logger,
    openapi: { title: "Edge Console", description: "The wallet users' web page and its configuration." },
    registry: new Registry(),
    routes: (api) => {
      const file = (path: string, type: string, body: string) =>
        api.get(path, { schema: { hide: true } }, async (_request, reply) => {
          reply.header("content-type", type).header("cache-control", "no-cache");
          return body;
        });
      file("/", "text/html; charset=utf-8", assets.html);
      file("/index.html", "text/html; charset=utf-8", assets.html);
      file("/assets/app.js", "text/javascript; charset=utf-8", assets.js);
      file("/assets/app.css", "text/css; charset=utf-8", assets.css);
      api.get(
        "/config.json",
        {
          schema: {
            description: "The chain id, the RPC URL and the address book the page works with.",
            response: { 200: PageConfigSchema },
          },
        },
        async (_request, reply) => {
          reply.header("cache-control", "no-cache");
          return page;
        },
      );
      registerRegionRoutes(api, options.regions);
    },
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ statusCode: 404, code: "CONSOLE_NOT_FOUND", error: `no such page: ${request.url}` });
  });
  app.addHook("onSend", async (_request, reply, payload) => {
    reply.header("content-security-policy", CONTENT_SECURITY_POLICY);
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
    return payload;
  });
  return app;
}

export class ConsoleServer implements Runnable {
  private url?: string;

  private constructor(
    readonly app: FastifyInstance,
    private readonly host: string,
    private readonly port: number,
    readonly regions?: RegionSource,
  ) {}

  /** Reads the address book, checks the RPC serves its chain, and bundles the page. */
  static async create(options: ConsoleOptions): Promise<ConsoleServer> {
    const book = options.book ?? readBook(options.addressesFile);
    if (options.checkChain ?? true) await checkChain(options.rpcUrl, book);
    const assets = await consoleAssets();
    const regions = options.stargateUrl
      ? new RegionSource({ ...options.regions, stargateUrl: options.stargateUrl, rpcUrl: options.rpcUrl, book })
      : undefined;
    const app = buildConsoleApp({
      page: { chainId: book.chainId, rpcUrl: options.rpcUrl, addresses: book },
      assets,
      regions,
      logLevel: options.logLevel,
      logger: options.logger,
    });
    return new ConsoleServer(app, options.host ?? "127.0.0.1", options.port ?? DEFAULT_CONSOLE_PORT, regions);
  }

  async start(): Promise<string> {
    const address = await this.app.listen({ host: this.host, port: this.port });
    // Show a loopback URL people can open, not the wildcard address.
    this.url = address.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://127.0.0.1:");
    this.app.log.info({ url: this.url }, "console listening");
    return this.url;
  }

  async close(): Promise<void> {
    await this.app.close();
    await this.regions?.close();
  }
}

/** Starts the Console (the devnet and tests use this): its URL and how to stop it. */
export async function startConsole(options: ConsoleOptions): Promise<{ url: string; close: () => Promise<void> }> {
  const server = await ConsoleServer.create(options);
  const url = await server.start();
  return { url, close: () => server.close() };
}

function readBook(file: string | undefined): AddressBook {
  if (!file) throw new AddressBookError("give the address book (addressesFile or book)");
  return readAddressBook(file);
}

export { ConsoleChainError };

async function checkChain(rpcUrl: string, book: AddressBook): Promise<void> {
  const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 1, timeout: 5_000 }) });
  let chainId: number;
  try {
    chainId = await client.getChainId();
  } catch (error) {
    throw new ConsoleChainError(`cannot reach the RPC at ${rpcUrl}: ${(error as Error).message.split("\n")[0]}`);
  }
  if (chainId !== book.chainId)
    throw new ConsoleChainError(
      `the RPC at ${rpcUrl} serves chain ${chainId}, but the address book is for chain ${book.chainId}`,
    );
}
