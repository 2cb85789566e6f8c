/**
 * Layered configuration for the daemon and the services: flags, then environment variables (<PREFIX>_<NAME>),
 * then an optional JSON file (--config), validated once against one TypeBox schema with defaults. Every problem is
 * reported at once, under the name the user gave it (the flag, or the environment variable for secrets, which
 * are never accepted as flags: other users can read a process's arguments).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type TObject, Type } from "@fastify/type-provider-typebox";
import { Value } from "typebox/value";

import { keyFromKeystore, keysFromKeystores } from "./keystore";
import { EdgeError } from "./errors";

export interface OptionSpec {
  flag: string;
  key: string;
  help: string;
  /** Only from the environment or the config file. */
  secret?: boolean;
  /**
   * A private key (or a list of them) that may also come from JSON keystore files named in `<ENV>_KEYSTORE`
   * (comma-separated for a list), decrypted with `<ENV>_KEYSTORE_PASSWORD` or `<ENV>_KEYSTORE_PASSWORD_FILE`.
   */
  privateKey?: boolean;
  kind?: "string" | "number" | "list" | "boolean";
  /** A readable phrase for a pattern or enum mismatch ("an http(s) URL", "one of a, b"). */
  expect?: string;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** The log level every daemon and service takes (pino's levels): the schema entry and the option. */
export const LogLevelSchema = Type.Union(
  LOG_LEVELS.map((l) => Type.Literal(l)),
  { default: "info" },
);
export const LOG_LEVEL_OPTION: OptionSpec = {
  flag: "log-level",
  key: "logLevel",
  help: `pino level: ${LOG_LEVELS.join(" | ")} (default info)`,
  expect: `one of ${LOG_LEVELS.join(", ")}`,
};

export class ConfigError extends EdgeError<"CONFIG_INVALID"> {
  override name = "ConfigError";
  constructor(readonly problems: string[]) {
    super("CONFIG_INVALID", `invalid configuration:\n  ${problems.join("\n  ")}`, { details: { problems } });
  }
}

export function envName(prefix: string, key: string): string {
  return `${prefix}_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

function coerce(option: OptionSpec, value: string): unknown {
  if (option.kind === "list")
    return value
      .split(",")
      .map((v) => v.trim())
      .filter(Boolean);
  if (option.kind === "number" && /^-?\d+$/.test(value)) return Number(value);
  if (option.kind === "boolean" && /^(true|false)$/.test(value)) return value === "true";
  return value;
}

export interface LoadOptions {
  schema: TObject;
  options: OptionSpec[];
  envPrefix: string;
  required: string[];
  argv: string[];
  env: NodeJS.ProcessEnv;
}

/** Returns the validated configuration (with defaults) or throws ConfigError listing every problem. */
export function loadLayeredConfig<T>({ schema, options, envPrefix, required, argv, env }: LoadOptions): T {
  const parseOptions = Object.fromEntries([
    ["config", { type: "string" as const }],
    ["help", { type: "boolean" as const }],
    // A list flag may be repeated (`--peers a --peers b`) as well as comma-separated: every value counts.
    ...options
      .filter((o) => !o.secret)
      .map((o) => [o.flag, { type: "string" as const, ...(o.kind === "list" && { multiple: true }) }]),
  ]);
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options: parseOptions, strict: true, allowPositionals: false }).values as never;
  } catch (error) {
    const message = (error as Error).message;
    const secret = options.find((o) => o.secret && message.includes(`--${o.flag}`));
    throw new ConfigError([
      secret ? `${message}: give it in ${envName(envPrefix, secret.key)} or the config file` : message,
    ]);
  }
  const raw: Record<string, unknown> = {};
  if (typeof values.config === "string") {
    try {
      Object.assign(raw, JSON.parse(readFileSync(values.config, "utf8")));
    } catch (error) {
      throw new ConfigError([`--config ${values.config}: ${(error as Error).message}`]);
    }
  }
  const problems: string[] = [];
  const reported = new Set<string>();
  for (const option of options) {
    const variable = envName(envPrefix, option.key);
    const fromEnv = env[variable];
    if (fromEnv !== undefined && fromEnv !== "") raw[option.key] = coerce(option, fromEnv);
    const fromFlag = values[option.flag];
    if (typeof fromFlag === "string") raw[option.key] = coerce(option, fromFlag);
    else if (Array.isArray(fromFlag)) raw[option.key] = fromFlag.flatMap((v) => coerce(option, v) as string[]);
    if (option.privateKey && env[`${variable}_KEYSTORE`]) {
      try {
        const keystore = `${variable}_KEYSTORE`;
        const keys = option.kind === "list" ? keysFromKeystores(env, keystore) : keyFromKeystore(env, keystore);
        if (fromEnv) throw new Error(`set ${variable} or ${keystore}, not both`);
        raw[option.key] = keys;
      } catch (error) {
        problems.push((error as Error).message);
        reported.add(option.key);
      }
    }
  }
  const config = Value.Default(schema, raw) as Record<string, unknown>;
  const nameOf = (key: string) => {
    const option = options.find((o) => o.key === key);
    return option ? (option.secret ? envName(envPrefix, option.key) : `--${option.flag}`) : key;
  };
  for (const key of required) {
    if (config[key] === undefined && !reported.has(key)) problems.push(`${nameOf(key)} is required`);
  }
  for (const e of Value.Errors(schema, config) as Iterable<{ instancePath: string; message: string }>) {
    const key = e.instancePath.replace(/^\//, "").split("/")[0];
    if (key === "") {
      if (!/required/.test(e.message)) problems.push(`config: ${e.message}`);
      continue;
    }
    const option = options.find((o) => o.key === key);
    // The option's own phrase reads better than the schema's ("must match pattern ^https?://...").
    if (option?.expect) problems.push(`${nameOf(key)} must be ${option.expect}`);
    else problems.push(`${nameOf(key)}: ${e.message}`);
  }
  if (problems.length > 0) throw new ConfigError([...new Set(problems)]);
  return config as T;
}

/** `--help` text: one line per option. */
export function optionsHelp(options: OptionSpec[], envPrefix: string): string[] {
  return [
    ...options.flatMap((o) => {
      const name = o.secret ? envName(envPrefix, o.key) : `--${o.flag}`;
      const line = `  ${name.padEnd(26)} ${o.help}`;
      if (!o.privateKey) return [line];
      return [
        line,
        `  ${`${name}_KEYSTORE`.padEnd(26)} or JSON keystore file(s); password in ${name}_KEYSTORE_PASSWORD(_FILE)`,
      ];
    }),
    `  ${"--config".padEnd(26)} JSON file with any of the above (camelCase keys)`,
    `  ${"--help".padEnd(26)} this text`,
  ];
}

/** Options every chain-connected process shares: where the chain and the deployment are, where to listen. */
export const URL_EXPECT = "an http(s) URL";
export const RPC_OPTION: OptionSpec = {
  flag: "rpc",
  key: "rpc",
  help: "JSON-RPC URL of the chain (required)",
  expect: URL_EXPECT,
};
export const ADDRESSES_OPTION: OptionSpec = {
  flag: "addresses",
  key: "addresses",
  help: "address book of the deployment (required)",
};
export const LISTEN_HOST_OPTION: OptionSpec = {
  flag: "listen-host",
  key: "listenHost",
  help: "interface to listen on (default 127.0.0.1)",
};
export const portOption = (defaultPort: number): OptionSpec => ({
  flag: "port",
  key: "port",
  help: `port (default ${defaultPort}; 0 picks a free one)`,
  kind: "number",
});
export const CONFIRMATIONS_OPTION: OptionSpec = {
  flag: "confirmations",
  key: "confirmations",
  help: "blocks to stay behind the head (default 2)",
  kind: "number",
};

/** The fee cap of a service that sends transactions (F10): the schema entry and the option. */
export const MaxFeeGweiSchema = Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000, default: 1000 });
export const MAX_FEE_OPTION: OptionSpec = {
  flag: "max-fee-gwei",
  key: "maxFeeGwei",
  help: "most a transaction may offer per gas, in gwei; a stuck transaction is raised 25% at a time up to it (default 1000)",
  kind: "number",
};

export interface ConfigDefinition<T> {
  /** Flags, then `<PREFIX>_*` variables, then --config: validated, or a ConfigError listing every problem. */
  load(argv: string[], env: NodeJS.ProcessEnv): T;
  /** The --help text: what the command does, its usage line, then every option with its variable. */
  help(): string;
}

/** One process's configuration: its schema, options, variable prefix, required keys and help text. */
export function defineConfig<T>(definition: {
  schema: TObject;
  options: OptionSpec[];
  envPrefix: string;
  required: string[];
  summary: string;
  usage: string;
  /** Paragraph lines between the usage line and the options. */
  notes?: string[];
}): ConfigDefinition<T> {
  const { schema, options, envPrefix, required } = definition;
  return {
    load: (argv, env) => loadLayeredConfig<T>({ schema, options, envPrefix, required, argv, env }),
    help: () =>
      [
        definition.summary,
        "",
        `usage: ${definition.usage}`,
        "",
        ...(definition.notes ? [...definition.notes, ""] : []),
        ...optionsHelp(options, envPrefix),
      ].join("\n"),
  };
}
