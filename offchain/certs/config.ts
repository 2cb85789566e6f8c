/** The certificate service's configuration (flags, EDGE_CERTS_* environment, or --config JSON). */
import { type Static, Type } from "@fastify/type-provider-typebox";

import {
  type OptionSpec,
  ADDRESSES_OPTION,
  CONFIRMATIONS_OPTION,
  defineConfig,
  LISTEN_HOST_OPTION,
  LOG_LEVEL_OPTION,
  LogLevelSchema,
  portOption,
  RPC_OPTION,
} from "../common/config";

const Url = Type.String({ pattern: "^https?://[^\\s]+$" });
const Count = (minimum: number, maximum: number, value: number) => Type.Integer({ minimum, maximum, default: value });

export const CertsConfigSchema = Type.Object(
  {
    rpc: Url,
    addresses: Type.String({ minLength: 1 }),
    listenHost: Type.String({ minLength: 1, default: "127.0.0.1" }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 7400 }),
    db: Type.String({ minLength: 1, default: ".edge-certs/certs.db" }),
    dataKeyFile: Type.String({ minLength: 1, default: ".edge-certs/data.key" }),
    trust: Type.Optional(Type.String({ minLength: 1 })),
    challengeTtlSeconds: Count(10, 86_400, 600),
    backoffSeconds: Count(1, 86_400, 60),
    maxBackoffSeconds: Count(1, 7 * 86_400, 3600),
    maxChallengesPerGateway: Count(1, 1_000_000, 1000),
    maxLeasesPerGateway: Count(1, 1_000_000, 100),
    maxChallenges: Count(1, 10_000_000, 100_000),
    maxLeaseHoldSeconds: Count(60, 86_400, 1800),
    challengeReadsPerMinute: Count(1, 1_000_000, 600),
    confirmations: Count(0, 1000, 2),
    pollIntervalMs: Count(10, 600_000, 1000),
    logLevel: LogLevelSchema,
  },
  { additionalProperties: false },
);

export type CertsConfig = Static<typeof CertsConfigSchema>;

const number = (flag: string, key: string, help: string): OptionSpec => ({ flag, key, help, kind: "number" });

export const CERTS_OPTIONS: OptionSpec[] = [
  RPC_OPTION,
  ADDRESSES_OPTION,
  LISTEN_HOST_OPTION,
  portOption(7400),
  { flag: "db", key: "db", help: "SQLite database file (default .edge-certs/certs.db)" },
  {
    flag: "data-key-file",
    key: "dataKeyFile",
    help: "32-byte key that encrypts certificates' private keys at rest; created 0600 when absent (default .edge-certs/data.key)",
  },
  {
    flag: "trust",
    key: "trust",
    help: "PEM file of root certificates trusted besides Node's public roots: an uploaded chain must verify to one of them",
  },
  number("challenge-ttl-seconds", "challengeTtlSeconds", "how long a challenge response is kept (default 600)"),
  number(
    "backoff-seconds",
    "backoffSeconds",
    "a domain's wait after its first failed order, doubling after each (default 60)",
  ),
  number("max-backoff-seconds", "maxBackoffSeconds", "the longest wait after failed orders (default 3600)"),
  number(
    "max-challenges-per-gateway",
    "maxChallengesPerGateway",
    "live challenges one gateway may hold (default 1000)",
  ),
  number("max-leases-per-gateway", "maxLeasesPerGateway", "order leases one gateway may hold (default 100)"),
  number("max-challenges", "maxChallenges", "live challenges of all gateways together (default 100000)"),
  number(
    "max-lease-hold-seconds",
    "maxLeaseHoldSeconds",
    "the longest one gateway holds a domain's order lease without a lapse, from its first take (default 1800)",
  ),
  number(
    "challenge-reads-per-minute",
    "challengeReadsPerMinute",
    "open GET /challenges/:token per client address a minute, as a burst (default 600)",
  ),
  CONFIRMATIONS_OPTION,
  number("poll-interval-ms", "pollIntervalMs", "chain polling and sweeping interval (default 1000)"),
  LOG_LEVEL_OPTION,
];

export const CERTS_ENV_PREFIX = "EDGE_CERTS";

const CERTS_CONFIG = defineConfig<CertsConfig>({
  schema: CertsConfigSchema,
  options: CERTS_OPTIONS,
  envPrefix: CERTS_ENV_PREFIX,
  required: ["rpc", "addresses"],
  summary:
    "certs serve: the certificate service: ACME HTTP-01 challenge responses, one order lease per domain, and issued certificates (keys sealed to admitted gateways).",
  usage: "npm run -s certs -- serve --rpc <url> --addresses <file> [options]",
});

export const loadCertsConfig = CERTS_CONFIG.load;
export const certsHelp = CERTS_CONFIG.help;
