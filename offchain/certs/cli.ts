/**
 * The certificate service's command line (D64; `npm run -s certs`, the `edge-certs` command once built).
 *
 *   npm run -s certs -- serve [options]      (see `serve --help` and docs/certificates.md)
 *
 * Exit codes: 0 success (stopped by SIGINT/SIGTERM), 2 bad input or configuration, 1 anything else.
 */
import { configOrReport, runMain, subcommands } from "../common/cli";
import { runUntilSignal } from "../common/serve";
import { certsHelp, loadCertsConfig } from "./config";

export async function serveCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(certsHelp() + "\n");
    return 0;
  }
  const config = configOrReport("certs", "serve --help", () => loadCertsConfig(argv, process.env));
  if (!config) return 2;
  const { CertsService } = await import("./service");
  return runUntilSignal("certs", () => CertsService.create(config));
}

const main = subcommands({ serve: serveCommand }, "serve [options] (see serve --help)");

if (require.main === module) runMain("certs", main);
