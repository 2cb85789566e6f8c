/** `oracle serve`: starts the service until SIGINT/SIGTERM. */
import { ConfigError } from "../common/config";
import { runUntilSignal } from "../common/serve";
import { loadOracleConfig, oracleHelp } from "./config";
import { OracleService } from "./service";

export async function serveCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(oracleHelp() + "\n");
    return 0;
  }
  let config;
  try {
    config = loadOracleConfig(argv, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`oracle: ${error.message}\n(see serve --help)\n`);
      return 2;
    }
    throw error;
  }
  return runUntilSignal("oracle", () => OracleService.create(config));
}
