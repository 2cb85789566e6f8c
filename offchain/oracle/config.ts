/** The oracle service's configuration (flags, EDGE_ORACLE_* environment, or --config JSON). */
import { type Static, Type } from "@fastify/type-provider-typebox";

import {
  type OptionSpec,
  defineConfig,
  RPC_OPTION,
  ADDRESSES_OPTION,
  LISTEN_HOST_OPTION,
  portOption,
  CONFIRMATIONS_OPTION,
  LOG_LEVEL_OPTION,
  LogLevelSchema,
  MAX_FEE_OPTION,
  MaxFeeGweiSchema,
} from "../common/config";

const Url = Type.String({ pattern: "^https?://[^\\s]+$" });
const Key = Type.String({ pattern: "^0x[0-9a-fA-F]{64}$" });

export const OracleConfigSchema = Type.Object(
  {
    rpc: Url,
    addresses: Type.String({ minLength: 1 }),
    listenHost: Type.String({ minLength: 1, default: "127.0.0.1" }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 7100 }),
    db: Type.String({ minLength: 1, default: ".edge-oracle/oracle.db" }),
    keys: Type.Array(Key, { default: [] }),
    submitterKey: Type.Optional(Key),
    submit: Type.Boolean({ default: true }),
    peers: Type.Array(Url, { default: [] }),
    graceSeconds: Type.Integer({ minimum: 0, maximum: 86_400, default: 300 }),
    confirmations: Type.Integer({ minimum: 0, maximum: 1000, default: 2 }),
    maxFeeGwei: MaxFeeGweiSchema,
    pollIntervalMs: Type.Integer({ minimum: 10, maximum: 600_000, default: 1000 }),
    batchSize: Type.Integer({ minimum: 1, maximum: 1000, default: 200 }),
    firstEpoch: Type.Optional(Type.Integer({ minimum: 0 })),
    logLevel: LogLevelSchema,
  },
  { additionalProperties: false },
);

export type OracleConfig = Static<typeof OracleConfigSchema>;

export const ORACLE_OPTIONS: OptionSpec[] = [
  RPC_OPTION,
  ADDRESSES_OPTION,
  LISTEN_HOST_OPTION,
  portOption(7100),
  { flag: "db", key: "db", help: "SQLite database file (default .edge-oracle/oracle.db)" },
  {
    flag: "keys",
    key: "keys",
    help: "committee keys this instance signs with, comma-separated: EDGE_ORACLE_KEYS or the config file only",
    secret: true,
    privateKey: true,
    kind: "list",
    expect: "private keys (0x and 64 hex digits), comma-separated",
  },
  {
    flag: "submitter-key",
    key: "submitterKey",
    help: "key that pays for posting (default: the first committee key): EDGE_ORACLE_SUBMITTER_KEY only",
    secret: true,
    privateKey: true,
    expect: "a private key (0x and 64 hex digits)",
  },
  {
    flag: "submit",
    key: "submit",
    help: "true | false: post batches on-chain (default true; peers may only sign)",
    kind: "boolean",
    expect: "true or false",
  },
  {
    flag: "peers",
    key: "peers",
    help: "other oracle instances (comma-separated URLs): reports are relayed, signatures asked",
    kind: "list",
    expect: "http(s) URLs",
  },
  {
    flag: "grace-seconds",
    key: "graceSeconds",
    help: "wait after an epoch ends before closing it (default 300)",
    kind: "number",
  },
  CONFIRMATIONS_OPTION,
  MAX_FEE_OPTION,
  {
    flag: "poll-interval-ms",
    key: "pollIntervalMs",
    help: "chain polling and work loop interval (default 1000)",
    kind: "number",
  },
  { flag: "batch-size", key: "batchSize", help: "scores per posted batch (default 200)", kind: "number" },
  {
    flag: "first-epoch",
    key: "firstEpoch",
    help: "the first epoch to close (default: the current one at first start)",
    kind: "number",
  },
  LOG_LEVEL_OPTION,
];

export const ORACLE_ENV_PREFIX = "EDGE_ORACLE";

const ORACLE_CONFIG = defineConfig<OracleConfig>({
  schema: OracleConfigSchema,
  options: ORACLE_OPTIONS,
  envPrefix: ORACLE_ENV_PREFIX,
  required: ["rpc", "addresses"],
  summary: "oracle serve: accepts signed job reports and heartbeats, closes epochs, scores them and posts the scores.",
  usage: "npm run -s oracle -- serve --rpc <url> --addresses <file> [options]",
});

export const loadOracleConfig = ORACLE_CONFIG.load;
export const oracleHelp = ORACLE_CONFIG.help;
