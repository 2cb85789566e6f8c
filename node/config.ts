/**
 * edge-node configuration: flags, environment variables (EDGE_NODE_<NAME>) or a JSON file (--config), in that
 * order of precedence, validated once at start against one schema with defaults. Keys (the device key, the
 * admin token) come only from the environment or a file, never from flags: other users can read a process's
 * arguments.
 */
import { type Static, Type } from "@fastify/type-provider-typebox";

import {
  ConfigError,
  type OptionSpec,
  defineConfig,
  RPC_OPTION,
  ADDRESSES_OPTION,
  LISTEN_HOST_OPTION,
  portOption,
  CONFIRMATIONS_OPTION,
  URL_EXPECT,
  LOG_LEVEL_OPTION,
  LogLevelSchema,
} from "../offchain/common/config";
import { AddressSchema, type Region } from "../offchain/common/protocol";
import { optionProblems, regionOption } from "./configChecks";
import { STORAGE_OPTIONS, STORAGE_SCHEMA } from "./configStorage";

export const ROLES = ["host", "gateway", "stargate"] as const;
export type Role = (typeof ROLES)[number];

const Url = Type.String({ pattern: "^https?://[^\\s]+$" });
const Ms = (min: number, fallback: number) => Type.Integer({ minimum: min, maximum: 86_400_000, default: fallback });
/** The longest a Network API token may live (--token-ttl-ms's maximum): verifiers refuse any promising more (R17-1). */
export const MAX_TOKEN_TTL_MS = 86_400_000;

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
    allowCustomers: Type.Array(AddressSchema, { default: [] }),
    linkPingMs: Ms(10, 10_000),
    capacity: Type.Integer({ minimum: 1, maximum: 256, default: 64 }),
    cacheMemoryMb: Type.Integer({ minimum: 1, maximum: 65_536, default: 64 }),
    cacheDiskMb: Type.Integer({ minimum: 0, maximum: 1_048_576, default: 1_024 }),
    ...STORAGE_SCHEMA,
    allowPrivateOrigins: Type.Boolean({ default: false }),
    sites: Type.Optional(Type.String({ minLength: 1 })),
    cdnPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    queueMax: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000 }),
    queueWaitMs: Ms(10, 10_000),
    verifyOneIn: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 100 }),
    reportIntervalMs: Ms(10, 10_000),
    heartbeatIntervalMs: Ms(10, 10_000),
    usageFlushMs: Ms(10, 5_000),
    creditRefreshMs: Type.Integer({ minimum: 10, maximum: 5_000, default: 2_000 }),
    creditMaxStaleMs: Ms(100, 30_000),
    jobTimeoutMs: Ms(10, 10_000),
    maxJobRounds: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000 }),
    stargates: Type.Array(Type.String({ pattern: "^[^\\s/]+:\\d{1,5}$" }), { default: [] }),
    grpcPort: Type.Integer({ minimum: 0, maximum: 65535, default: 7443 }),
    configKey: Type.Optional(Type.String({ pattern: "^0x[0-9a-fA-F]{64}$" })),
    anchorIntervalMs: Ms(100, 30_000),
    peers: Type.Array(Url, { default: [] }),
    users: Type.Optional(Type.String({ minLength: 1 })),
    healthIntervalMs: Ms(100, 10_000),
    tokenTtlMs: Type.Integer({ minimum: 1000, maximum: MAX_TOKEN_TTL_MS, default: 3_600_000 }),
    dnsPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    dnsSiteTtl: Type.Integer({ minimum: 0, maximum: 86_400, default: 5 }),
    dnsNameserver: Type.String({ minLength: 1, maxLength: 253, default: "ns.edge.network" }),
    dnsAnnounce: Type.Optional(Url),
    certs: Type.Optional(Url),
    tlsPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    acmeDirectory: Type.Optional(Type.String({ pattern: "^https://[^\\s]+$" })),
    acmeCa: Type.Optional(Type.String({ minLength: 1 })),
    acmeEmail: Type.Optional(Type.String({ pattern: "^[^\\s@]+@[^\\s@]+$", maxLength: 254 })),
    certSyncMs: Ms(100, 30_000),
    region: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    logLevel: LogLevelSchema,
  },
  { additionalProperties: false },
);

/** `region`: parsed from COUNTRY/name (D68); absent: undeclared. */
export type NodeConfig = Omit<Static<typeof ConfigSchema>, "region"> & { publicUrl: string; region?: Region };

/** One line per flag for --help; the schema above is the truth for values. */
export const OPTIONS: OptionSpec[] = [
  { flag: "role", key: "role", help: "host | gateway | stargate (required)", expect: `one of ${ROLES.join(", ")}` },
  RPC_OPTION,
  ADDRESSES_OPTION,
  {
    flag: "device-key",
    key: "deviceKey",
    help: "the device's private key: EDGE_NODE_DEVICE_KEY or the config file only",
    secret: true,
    privateKey: true,
    expect: "a private key (0x and 64 hex digits)",
  },
  LISTEN_HOST_OPTION,
  portOption(7000),
  {
    flag: "public-url",
    key: "publicUrl",
    help: "URL others reach this node at (default http://<listen-host>:<port>)",
    expect: URL_EXPECT,
  },
  {
    flag: "gateway",
    key: "gateway",
    help: "host role: the gateway to register with (required for hosts)",
    expect: URL_EXPECT,
  },
  {
    flag: "oracle",
    key: "oracle",
    help: "gateway and stargate roles: oracle URL for job reports and heartbeats",
    expect: URL_EXPECT,
  },
  {
    flag: "billing",
    key: "billing",
    help: "gateway and stargate roles: billing URL for usage records (stargates: dns queries)",
    expect: URL_EXPECT,
  },
  CONFIRMATIONS_OPTION,
  { flag: "poll-interval-ms", key: "pollIntervalMs", help: "chain polling interval (default 1000)", kind: "number" },
  {
    flag: "stale-after-ms",
    key: "staleAfterMs",
    help: "the view is stale after this long without a sync (default 30000)",
    kind: "number",
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
    kind: "list",
  },
  {
    flag: "link-ping-ms",
    key: "linkPingMs",
    help: "host and gateway: how often each pings the other over the host's link; a missed ping closes it (default 10000)",
    kind: "number",
  },
  {
    flag: "capacity",
    key: "capacity",
    help: "host: jobs it runs at once, announced to its gateway (default 64, at most 256)",
    kind: "number",
  },
  {
    flag: "cache-memory-mb",
    key: "cacheMemoryMb",
    help: "host: the content cache's memory tier in MiB (default 64)",
    kind: "number",
  },
  {
    flag: "cache-disk-mb",
    key: "cacheDiskMb",
    help: "host: the content cache's disk tier in MiB, under --data-dir (default 1024; 0: memory only)",
    kind: "number",
  },
  {
    flag: "allow-private-origins",
    key: "allowPrivateOrigins",
    help: "host: also fetch origins on private, loopback and link-local addresses (default false; D48)",
    kind: "boolean",
  },
  {
    flag: "sites",
    key: "sites",
    help: "gateway: the sites file (JSON, reloaded when it changes); without it no front door is opened",
  },
  {
    flag: "cdn-port",
    key: "cdnPort",
    help: "gateway: port of the customers' front door for sites, on --listen-host (default 8080; 0: any free port)",
    kind: "number",
  },
  {
    flag: "queue-max",
    key: "queueMax",
    help: "gateway: jobs waiting for a host at most; more get 503 (default 10000)",
    kind: "number",
  },
  {
    flag: "queue-wait-ms",
    key: "queueWaitMs",
    help: "gateway: how long a job may wait for a host's free slot before 503 (default 10000)",
    kind: "number",
  },
  {
    flag: "verify-one-in",
    key: "verifyOneIn",
    help: "gateway: check one site response in this many against the origin (default 100; 0: never)",
    kind: "number",
  },
  {
    flag: "report-interval-ms",
    key: "reportIntervalMs",
    help: "gateway: how often to send job reports (default 10000)",
    kind: "number",
  },
  {
    flag: "heartbeat-interval-ms",
    key: "heartbeatIntervalMs",
    help: "stargate: how often to send heartbeats (default 10000)",
    kind: "number",
  },
  {
    flag: "usage-flush-ms",
    key: "usageFlushMs",
    help: "gateway and stargate: how often to flush usage records (default 5000)",
    kind: "number",
  },
  {
    flag: "credit-refresh-ms",
    key: "creditRefreshMs",
    help: "gateway: how often to ask billing for customers' credit (default 2000, at most 5000)",
    kind: "number",
  },
  {
    flag: "credit-max-stale-ms",
    key: "creditMaxStaleMs",
    help: "gateway: how long a customer's last known credit serves while billing is unreachable (default 30000)",
    kind: "number",
  },
  {
    flag: "job-timeout-ms",
    key: "jobTimeoutMs",
    help: "gateway: how long a host may take for a job (default 10000)",
    kind: "number",
  },
  {
    flag: "max-job-rounds",
    key: "maxJobRounds",
    help: "the largest job accepted (default 10000 rounds)",
    kind: "number",
  },
  {
    flag: "stargates",
    key: "stargates",
    help: "gateway and host: comma-separated host:port of stargates' configuration streams (gRPC), tried in turn",
    kind: "list",
  },
  {
    flag: "grpc-port",
    key: "grpcPort",
    help: "stargate: port of the configuration stream (gRPC) on --listen-host (default 7443; 0: any free port)",
    kind: "number",
  },
  {
    flag: "config-key",
    key: "configKey",
    help: "stargate: key ConfigRegistry grants DELTA_SIGNER_ROLE and PUBLISHER_ROLE: EDGE_NODE_CONFIG_KEY or the config file only",
    secret: true,
    privateKey: true,
    expect: "a private key (0x and 64 hex digits)",
  },
  {
    flag: "anchor-interval-ms",
    key: "anchorIntervalMs",
    help: "stargate with --config-key: how often pending deltas are folded into a new anchored version (default 30000)",
    kind: "number",
  },
  {
    flag: "peers",
    key: "peers",
    help: "stargate: comma-separated URLs of the other stargates (health verdicts, configuration relay)",
    kind: "list",
  },
  { flag: "users", key: "users", help: "stargate: the Network API's users file (JSON, scrypt password hashes)" },
  {
    flag: "health-interval-ms",
    key: "healthIntervalMs",
    help: "stargate: how often each gateway and host is checked (default 10000)",
    kind: "number",
  },
  {
    flag: "token-ttl-ms",
    key: "tokenTtlMs",
    help: "stargate: lifetime of Network API tokens (default 3600000)",
    kind: "number",
  },
  {
    flag: "dns-port",
    key: "dnsPort",
    help: "stargate: port of Edge DNS (UDP and TCP) on --listen-host (default: no DNS; 0: any free port)",
    kind: "number",
  },
  {
    flag: "dns-site-ttl",
    key: "dnsSiteTtl",
    help: "stargate: TTL in seconds of the answers naming a site's gateways (default 5)",
    kind: "number",
  },
  {
    flag: "dns-nameserver",
    key: "dnsNameserver",
    help: "stargate: the network's name server name, in the SOA of site names outside every zone (default ns.edge.network)",
  },
  {
    flag: "dns-announce",
    key: "dnsAnnounce",
    help: "stargate: URL of the route announcer (BGP speaker) the DNS group is joined and left through (D59)",
  },
  {
    flag: "certs",
    key: "certs",
    help: "gateway: the certificate service's URL (ACME challenges and certificates; https except on loopback; D64)",
    expect: URL_EXPECT,
  },
  {
    flag: "tls-port",
    key: "tlsPort",
    help: "gateway: port of the HTTPS front door (certificates by SNI from --certs) on --listen-host (default: none)",
    kind: "number",
  },
  {
    flag: "acme-directory",
    key: "acmeDirectory",
    help: "gateway: the ACME directory URL this gateway orders its sites' certificates from (default: it orders none)",
  },
  { flag: "acme-ca", key: "acmeCa", help: "gateway: PEM file of the CA the ACME directory's TLS is trusted by" },
  { flag: "acme-email", key: "acmeEmail", help: "gateway: contact e-mail of the ACME account" },
  {
    flag: "cert-sync-ms",
    key: "certSyncMs",
    help: "gateway: how often certificates are fetched from --certs and due orders placed (default 30000)",
    kind: "number",
  },
  {
    flag: "region",
    key: "region",
    help: "where this node runs, as COUNTRY/name (ISO 3166-1 code, network region; e.g. DE/eu-central), signed into its hello and registration (D68; default: undeclared)",
    expect: "COUNTRY/name, e.g. DE/eu-central",
  },
  LOG_LEVEL_OPTION,
  ...STORAGE_OPTIONS,
];

const ENV_PREFIX = "EDGE_NODE";

export { ConfigError };

const NODE_CONFIG = defineConfig<Static<typeof ConfigSchema>>({
  schema: ConfigSchema,
  options: OPTIONS,
  envPrefix: ENV_PREFIX,
  required: ["role", "rpc", "addresses", "deviceKey"],
  summary: "edge-node: an Edge Network node (host, gateway or stargate) that admits or evicts itself from chain state.",
  usage: "npm run -s edge-node -- --role <role> --rpc <url> --addresses <file> [options]",
  notes: [
    "Every option can also come from the environment (EDGE_NODE_<NAME>, e.g. EDGE_NODE_RPC) or from a JSON",
    "file given with --config (keys in camelCase). Flags win over the environment, which wins over the file.",
  ],
});

/** Reads the configuration from argv, the environment and an optional file; throws ConfigError listing every problem. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): NodeConfig {
  const config = NODE_CONFIG.load(argv, env);
  const problems = optionProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  const { region, ...rest } = config;
  const publicUrl = config.publicUrl ?? `http://${config.listenHost}:${config.port}`;
  return { ...rest, publicUrl, ...(region === undefined ? {} : { region: regionOption(region) }) };
}

export const helpText = NODE_CONFIG.help;
