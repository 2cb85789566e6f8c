/** `oracle serve`: starts the service until SIGINT/SIGTERM. */
import { configOrReport } from "../common/cli";
import { runUntilSignal } from "../common/serve";
import { loadOracleConfig, oracleHelp } from "./config";
import { OracleService } from "./service";

export async function serveCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(oracleHelp() + "\n");
    return 0;
  }
  const config = configOrReport("oracle", "serve --help", () => loadOracleConfig(argv, process.env));
  if (!config) return 2;
  return runUntilSignal("oracle", () => OracleService.create(config));
}
