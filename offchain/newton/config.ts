/** Newton's configuration (flags, EDGE_NEWTON_* environment, or --config JSON). */
import { type Static, Type } from "@fastify/type-provider-typebox";

import {
  type OptionSpec,
  defineConfig,
  LISTEN_HOST_OPTION,
  portOption,
  LOG_LEVEL_OPTION,
  LogLevelSchema,
} from "../common/config";

export const NewtonConfigSchema = Type.Object(
  {
    listenHost: Type.String({ minLength: 1, default: "127.0.0.1" }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 7300 }),
    token: Type.String({ minLength: 16, maxLength: 256 }),
    logLevel: LogLevelSchema,
  },
  { additionalProperties: false },
);

export type NewtonConfig = Static<typeof NewtonConfigSchema>;

export const NEWTON_OPTIONS: OptionSpec[] = [
  LISTEN_HOST_OPTION,
  portOption(7300),
  {
    flag: "token",
    key: "token",
    help: "bearer token the API requires (16+ characters): EDGE_NEWTON_TOKEN or the config file only",
    secret: true,
    expect: "16 to 256 characters",
  },
  LOG_LEVEL_OPTION,
];

export const NEWTON_ENV_PREFIX = "EDGE_NEWTON";

const NEWTON_CONFIG = defineConfig<NewtonConfig>({
  schema: NewtonConfigSchema,
  options: NEWTON_OPTIONS,
  envPrefix: NEWTON_ENV_PREFIX,
  required: ["token"],
  summary: "newton serve: load generation and monitoring of gateways, configured through its HTTP API.",
  usage: "EDGE_NEWTON_TOKEN=… npm run -s newton -- serve [options]",
});

export const loadNewtonConfig = NEWTON_CONFIG.load;
export const newtonHelp = NEWTON_CONFIG.help;
