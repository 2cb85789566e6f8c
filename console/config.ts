/** The Console server's configuration (flags, EDGE_CONSOLE_* environment, or --config JSON). */
import { type Static, Type } from "@fastify/type-provider-typebox";

import { type OptionSpec, defineConfig, LOG_LEVEL_OPTION, LogLevelSchema } from "../offchain/common/config";

export const DEFAULT_CONSOLE_PORT = 7400;

export const ConsoleConfigSchema = Type.Object(
  {
    rpc: Type.String({ pattern: "^https?://\\S+$" }),
    addresses: Type.String({ minLength: 1 }),
    stargateUrl: Type.Optional(Type.String({ pattern: "^https?://\\S+$" })),
    host: Type.String({ minLength: 1, default: "127.0.0.1" }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: DEFAULT_CONSOLE_PORT }),
    logLevel: LogLevelSchema,
  },
  { additionalProperties: false },
);

export type ConsoleServerConfig = Static<typeof ConsoleConfigSchema>;

export const CONSOLE_OPTIONS: OptionSpec[] = [
  {
    flag: "rpc",
    key: "rpc",
    help: "JSON-RPC URL of the chain (offered to wallets that do not know the chain yet)",
    expect: "an http(s) URL",
  },
  {
    flag: "addresses",
    key: "addresses",
    help: "the deployment's address book (scripts/deploy/addresses/<chainId>.json)",
  },
  {
    flag: "stargate-url",
    key: "stargateUrl",
    help: "a stargate's node URL: its public catalogue (GET /health/catalogue) feeds the map of regions, GET /api/regions",
    expect: "an http(s) URL",
  },
  { flag: "host", key: "host", help: "interface to listen on (default 127.0.0.1)" },
  {
    flag: "port",
    key: "port",
    help: `port (default ${DEFAULT_CONSOLE_PORT}; 0 picks a free one)`,
    kind: "number",
    expect: "an integer 0..65535",
  },
  LOG_LEVEL_OPTION,
];

export const CONSOLE_ENV_PREFIX = "EDGE_CONSOLE";

const CONSOLE_CONFIG = defineConfig<ConsoleServerConfig>({
  schema: ConsoleConfigSchema,
  options: CONSOLE_OPTIONS,
  envPrefix: CONSOLE_ENV_PREFIX,
  required: ["rpc", "addresses"],
  summary: "console: the wallet users' web page (stakes, devices, earnings, prepaid balance).",
  usage: "npm run -s console -- --rpc URL --addresses FILE [--stargate-url URL] [--port N] [--host 127.0.0.1]",
});

export const loadConsoleConfig = CONSOLE_CONFIG.load;
export const consoleHelp = CONSOLE_CONFIG.help;
