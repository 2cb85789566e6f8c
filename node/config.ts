/**
 * edge-node configuration: flags, environment variables (EDGE_NODE_<NAME>) or a JSON file (--config), in that
 * order of precedence, validated once at start against one schema with defaults. Keys (the device key, the
 * admin token) come only from the environment or a file, never from flags: other users can read a process's
 * arguments.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type Static, Type } from "@fastify/type-provider-typebox";
import { Value } from "typebox/value";

export const ROLES = ["host", "gateway", "stargate"] as const;
export type Role = (typeof ROLES)[number];

const Url = Type.String({ pattern: "^https?://[^\\s]+$" });
const Ms = (min: number, fallback: number) => Type.Integer({ minimum: min, maximum: 86_400_000, default: fallback });

export const ConfigSchema = Type.Object(
  {
    role: Type.Union(ROLES.map((r) => Type.Literal(r))),
    rpc: Url,
    addresses: Type.String({ minLength: 1 }),
    deviceKey: Type.String({ pattern: "^0x[0-9a-fA-F]{64}$" }),
    listenHost: Type.String({ minLength: 1, default: "127.0.0.1" }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 7000 }),
    publicUrl: Type.Optional(Url),
    gateway: Type.Optional(Url),
    oracle: Type.Optional(Url),
    billing: Type.Optional(Url),
    confirmations: Type.Integer({ minimum: 0, maximum: 1000, default: 2 }),
    pollIntervalMs: Ms(10, 1000),
    staleAfterMs: Ms(100, 30_000),
    dataDir: Type.String({ minLength: 1, default: ".edge-node" }),
    adminToken: Type.Optional(Type.String({ minLength: 16 })),
    allowCustomers: Type.Array(Type.String({ pattern: "^0x[0-9a-fA-F]{40}$" }), { default: [] }),
    registerIntervalMs: Ms(10, 5_000),
    reportIntervalMs: Ms(10, 10_000),
    heartbeatIntervalMs: Ms(10, 10_000),
    usageFlushMs: Ms(10, 5_000),
    jobTimeoutMs: Ms(10, 10_000),
    maxJobRounds: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000 }),
    logLevel: Type.Union(
      ["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((l) => Type.Literal(l)),
      { default: "info" },
    ),
  },
  { additionalProperties: false },
);

export type NodeConfig = Static<typeof ConfigSchema> & { publicUrl: string };

/** One line per flag for --help; the schema above is the truth for values. */
export const OPTIONS: Array<{ flag: string; key: keyof Static<typeof ConfigSchema>; help: string; secret?: boolean }> =
  [
    { flag: "role", key: "role", help: "host | gateway | stargate (required)" },
    { flag: "rpc", key: "rpc", help: "JSON-RPC URL of the chain (required)" },
    { flag: "addresses", key: "addresses", help: "address book file of the deployment (required)" },
    {
      flag: "device-key",
      key: "deviceKey",
      help: "the device's private key: EDGE_NODE_DEVICE_KEY or the config file only",
      secret: true,
    },
    { flag: "listen-host", key: "listenHost", help: "interface to listen on (default 127.0.0.1)" },
    { flag: "port", key: "port", help: "port to listen on (default 7000; 0 picks a free one)" },
    {
      flag: "public-url",
      key: "publicUrl",
      help: "URL others reach this node at (default http://<listen-host>:<port>)",
    },
    { flag: "gateway", key: "gateway", help: "host role: the gateway to register with (required for hosts)" },
    { flag: "oracle", key: "oracle", help: "gateway and stargate roles: oracle URL for job reports and heartbeats" },
    { flag: "billing", key: "billing", help: "gateway role: billing URL for usage records" },
    { flag: "confirmations", key: "confirmations", help: "blocks to stay behind the head (default 2)" },
    { flag: "poll-interval-ms", key: "pollIntervalMs", help: "chain polling interval (default 1000)" },
    {
      flag: "stale-after-ms",
      key: "staleAfterMs",
      help: "the view is stale after this long without a sync (default 30000)",
    },
    { flag: "data-dir", key: "dataDir", help: "where the outbox lives (default .edge-node)" },
    {
      flag: "admin-token",
      key: "adminToken",
      help: "bearer token for POST /admin/drain: EDGE_NODE_ADMIN_TOKEN or the config file only",
      secret: true,
    },
    {
      flag: "allow-customers",
      key: "allowCustomers",
      help: "gateway: comma-separated customers to serve when the deployment has no PaymentVault",
    },
    {
      flag: "register-interval-ms",
      key: "registerIntervalMs",
      help: "host: how often to (re-)register (default 5000)",
    },
    {
      flag: "report-interval-ms",
      key: "reportIntervalMs",
      help: "gateway: how often to send job reports (default 10000)",
    },
    {
      flag: "heartbeat-interval-ms",
      key: "heartbeatIntervalMs",
      help: "stargate: how often to send heartbeats (default 10000)",
    },
    { flag: "usage-flush-ms", key: "usageFlushMs", help: "gateway: how often to flush usage records (default 5000)" },
    {
      flag: "job-timeout-ms",
      key: "jobTimeoutMs",
      help: "gateway: how long a host may take for a job (default 10000)",
    },
    { flag: "max-job-rounds", key: "maxJobRounds", help: "the largest job accepted (default 10000 rounds)" },
    { flag: "log-level", key: "logLevel", help: "fatal | error | warn | info | debug | trace | silent (default info)" },
  ];

const NUMERIC = new Set<string>([
  "port",
  "confirmations",
  "pollIntervalMs",
  "staleAfterMs",
  "registerIntervalMs",
  "reportIntervalMs",
  "heartbeatIntervalMs",
  "usageFlushMs",
  "jobTimeoutMs",
  "maxJobRounds",
]);

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

const envName = (key: string) => `EDGE_NODE_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

function coerce(key: string, value: string): unknown {
  if (key === "allowCustomers")
    return value
      .split(",")
      .map((v) => v.trim())
      .filter(Boolean);
  if (NUMERIC.has(key) && /^-?\d+$/.test(value)) return Number(value);
  return value;
}

/** Reads the configuration from argv, the environment and an optional file; throws ConfigError listing every problem. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): NodeConfig {
  const parseOptions = Object.fromEntries([
    ["config", { type: "string" as const }],
    ["help", { type: "boolean" as const }],
    ...OPTIONS.filter((o) => !o.secret).map((o) => [o.flag, { type: "string" as const }]),
  ]);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: parseOptions, strict: true, allowPositionals: false });
  } catch (error) {
    const message = (error as Error).message;
    const secret = OPTIONS.find((o) => o.secret && message.includes(`--${o.flag}`));
    throw new ConfigError([secret ? `${message}: give it in ${envName(secret.key)} or the config file` : message]);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const raw: Record<string, unknown> = {};
  if (typeof values.config === "string") {
    try {
      Object.assign(raw, JSON.parse(readFileSync(values.config, "utf8")));
    } catch (error) {
      throw new ConfigError([`--config ${values.config}: ${(error as Error).message}`]);
    }
  }
  for (const option of OPTIONS) {
    const fromEnv = env[envName(option.key)];
    if (fromEnv !== undefined && fromEnv !== "") raw[option.key] = coerce(option.key, fromEnv);
    const fromFlag = values[option.flag];
    if (typeof fromFlag === "string") raw[option.key] = coerce(option.key, fromFlag);
  }
  const withDefaults = Value.Default(ConfigSchema, raw) as Record<string, unknown>;
  const nameOf = (key: string) => {
    const option = OPTIONS.find((o) => o.key === key);
    return option ? (option.secret ? envName(option.key) : `--${option.flag}`) : key;
  };
  const problems: string[] = [];
  for (const key of ["role", "rpc", "addresses", "deviceKey"]) {
    if (withDefaults[key] === undefined) problems.push(`${nameOf(key)} is required`);
  }
  const choices: Record<string, string> = {
    role: ROLES.join(", "),
    logLevel: "fatal, error, warn, info, debug, trace, silent",
  };
  for (const e of Value.Errors(ConfigSchema, withDefaults) as Iterable<{ instancePath: string; message: string }>) {
    const key = e.instancePath.replace(/^\//, "").split("/")[0];
    if (key === "") {
      if (!/required/.test(e.message)) problems.push(`config: ${e.message}`);
      continue;
    }
    if (key === "deviceKey") problems.push(`${nameOf(key)} must be a private key (0x and 64 hex digits)`);
    else if (choices[key]) problems.push(`${nameOf(key)} must be one of ${choices[key]}`);
    else if (["rpc", "publicUrl", "gateway", "oracle", "billing"].includes(key)) {
      problems.push(`${nameOf(key)} must be an http(s) URL`);
    } else problems.push(`${nameOf(key)}: ${e.message}`);
  }
  if (withDefaults.role === "host" && !withDefaults.gateway)
    problems.push("--gateway: a host needs the URL of its gateway");
  if (problems.length > 0) throw new ConfigError([...new Set(problems)]);
  const config = withDefaults as Static<typeof ConfigSchema>;
  return { ...config, publicUrl: config.publicUrl ?? `http://${config.listenHost}:${config.port}` };
}

export function helpText(): string {
  const lines = [
    "edge-node: an Edge Network node (host, gateway or stargate) that admits or evicts itself from chain state.",
    "",
    "usage: npm run -s edge-node -- --role <role> --rpc <url> --addresses <file> [options]",
    "",
    "Every option can also come from the environment (EDGE_NODE_<NAME>, e.g. EDGE_NODE_RPC) or from a JSON",
    "file given with --config (keys in camelCase). Flags win over the environment, which wins over the file.",
    "",
  ];
  for (const o of OPTIONS) {
    lines.push(`  ${(o.secret ? envName(o.key) : `--${o.flag}`).padEnd(26)} ${o.help}`);
  }
  lines.push(`  ${"--config".padEnd(26)} JSON file with any of the above`, `  ${"--help".padEnd(26)} this text`);
  return lines.join("\n");
}
