/** The billing service's configuration (flags, EDGE_BILLING_* environment, or --config JSON). */
import { type Static, Type } from "@fastify/type-provider-typebox";

import {
  type OptionSpec,
  loadLayeredConfig,
  optionsHelp,
  LOG_LEVEL_OPTION,
  LogLevelSchema,
  MAX_FEE_OPTION,
  MaxFeeGweiSchema,
} from "../common/config";

const Url = Type.String({ pattern: "^https?://[^\\s]+$" });
const Key = Type.String({ pattern: "^0x[0-9a-fA-F]{64}$" });

export const BillingConfigSchema = Type.Object(
  {
    rpc: Url,
    addresses: Type.String({ minLength: 1 }),
    prices: Type.String({ minLength: 1 }),
    listenHost: Type.String({ minLength: 1, default: "127.0.0.1" }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 7200 }),
    db: Type.String({ minLength: 1, default: ".edge-billing/billing.db" }),
    billerKey: Type.Optional(Key),
    periodSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 * 366 * 86_400 })),
    periodStart: Type.Integer({ minimum: 0, default: 0 }),
    graceSeconds: Type.Integer({ minimum: 0, maximum: 30 * 86_400, default: 3600 }),
    batchSize: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
    confirmations: Type.Integer({ minimum: 0, maximum: 1000, default: 2 }),
    maxFeeGwei: MaxFeeGweiSchema,
    pollIntervalMs: Type.Integer({ minimum: 10, maximum: 600_000, default: 1000 }),
    domain: Type.String({ minLength: 1, default: "localhost" }),
    tokenTtlSeconds: Type.Integer({ minimum: 60, maximum: 30 * 86_400, default: 3600 }),
    maxSkewSeconds: Type.Integer({ minimum: 0, maximum: 86_400, default: 300 }),
    maxStalenessSeconds: Type.Integer({ minimum: 1, maximum: 86_400, default: 60 }),
    maxNonces: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000 }),
    noncesPerMinute: Type.Integer({ minimum: 1, maximum: 10_000, default: 10 }),
    creditCacheMs: Type.Integer({ minimum: 0, maximum: 60_000, default: 2_000 }),
    logLevel: LogLevelSchema,
  },
  { additionalProperties: false },
);

export type BillingConfig = Static<typeof BillingConfigSchema>;

export const BILLING_OPTIONS: OptionSpec[] = [
  { flag: "rpc", key: "rpc", help: "JSON-RPC URL of the chain (required)", expect: "an http(s) URL" },
  { flag: "addresses", key: "addresses", help: "address book of the deployment (required)" },
  { flag: "prices", key: "prices", help: "price list JSON file (required; checked at start)" },
  { flag: "listen-host", key: "listenHost", help: "interface to listen on (default 127.0.0.1)" },
  { flag: "port", key: "port", help: "port (default 7200; 0 picks a free one)", kind: "number" },
  { flag: "db", key: "db", help: "SQLite database file (default .edge-billing/billing.db)" },
  {
    flag: "biller-key",
    key: "billerKey",
    help: "key holding BILLER_ROLE that settles bills: EDGE_BILLING_BILLER_KEY only (none: bills are not settled)",
    secret: true,
    privateKey: true,
    expect: "a private key (0x and 64 hex digits)",
  },
  {
    flag: "period-seconds",
    key: "periodSeconds",
    help: "fixed periods of this length (ids 0, 1, …) instead of UTC months",
    kind: "number",
  },
  {
    flag: "period-start",
    key: "periodStart",
    help: "start of fixed period 0, unix milliseconds (default 0)",
    kind: "number",
  },
  {
    flag: "grace-seconds",
    key: "graceSeconds",
    help: "wait after a period ends before closing it: late usage still counts (default 3600)",
    kind: "number",
  },
  { flag: "batch-size", key: "batchSize", help: "bills per settlement transaction (default 100)", kind: "number" },
  { flag: "confirmations", key: "confirmations", help: "blocks to stay behind the head (default 2)", kind: "number" },
  MAX_FEE_OPTION,
  {
    flag: "poll-interval-ms",
    key: "pollIntervalMs",
    help: "chain polling and work loop interval (default 1000)",
    kind: "number",
  },
  { flag: "domain", key: "domain", help: "the domain customers' login messages must name (default localhost)" },
  {
    flag: "token-ttl-seconds",
    key: "tokenTtlSeconds",
    help: "lifetime of a customer's bearer token (default 3600)",
    kind: "number",
  },
  {
    flag: "max-skew-seconds",
    key: "maxSkewSeconds",
    help: "how far in the future a usage record's time may be (default 300)",
    kind: "number",
  },
  {
    flag: "max-staleness-seconds",
    key: "maxStalenessSeconds",
    help: "past this chain view age, usage the view would refuse gets a retryable 503 instead (default 60)",
    kind: "number",
  },
  {
    flag: "max-nonces",
    key: "maxNonces",
    help: "sign-in nonces held at once; past it /auth/nonce answers 429 (default 10000)",
    kind: "number",
  },
  {
    flag: "nonces-per-minute",
    key: "noncesPerMinute",
    help: "sign-in nonces one client address (IP) may ask for per minute, as a burst (default 10)",
    kind: "number",
  },
  {
    flag: "credit-cache-ms",
    key: "creditCacheMs",
    help: "how old a PaymentVault balance in a gateway's credit answer may be (default 2000)",
    kind: "number",
  },
  LOG_LEVEL_OPTION,
];

export const BILLING_ENV_PREFIX = "EDGE_BILLING";

export function loadBillingConfig(argv: string[], env: NodeJS.ProcessEnv): BillingConfig {
  return loadLayeredConfig<BillingConfig>({
    schema: BillingConfigSchema,
    options: BILLING_OPTIONS,
    envPrefix: BILLING_ENV_PREFIX,
    required: ["rpc", "addresses", "prices"],
    argv,
    env,
  });
}

export function billingHelp(): string {
  return [
    "billing serve: takes gateways' signed usage, closes periods into itemised bills, settles them on-chain and",
    "serves customers their bills.",
    "",
    "usage: npm run -s billing -- serve --rpc <url> --addresses <file> --prices <file> [options]",
    "",
    ...optionsHelp(BILLING_OPTIONS, BILLING_ENV_PREFIX),
  ].join("\n");
}
