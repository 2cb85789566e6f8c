/** `oracle serve`: starts the service until SIGINT/SIGTERM. */
import { ConfigError } from "../common/config";
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
  let service: OracleService;
  try {
    service = await OracleService.create(config);
    await service.start();
  } catch (error) {
    process.stderr.write(`oracle: cannot start: ${(error as Error).message.split("\n")[0]}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      service.app.log.info({ signal }, "shutting down");
      service.close().then(resolve, resolve);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  return 0;
}
