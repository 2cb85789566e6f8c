/**
 * The Console's command line: serves the wallet users' web page until SIGINT/SIGTERM.
 *
 *   npm run -s console -- --rpc URL --addresses FILE [--stargate-url URL] [--port N] [--host 127.0.0.1]
 *     [--log-level info]
 *
 * Exit codes: 0 after a clean shutdown, 2 bad input (flags, address book), 1 cannot start (RPC unreachable or
 * on another chain).
 */
import { configOrReport, runMain } from "../offchain/common/cli";
import { readAddressBook } from "../offchain/common/addressBook";
import { runUntilSignal } from "../offchain/common/serve";
import { consoleHelp, loadConsoleConfig } from "./config";
import { ConsoleServer } from "./server";

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(consoleHelp() + "\n");
    return 0;
  }
  const config = configOrReport("console", "--help", () => loadConsoleConfig(argv, env));
  if (!config) return 2;
  // A bad address book is bad input (exit 2), found before anything starts.
  const book = readAddressBook(config.addresses);
  return runUntilSignal("console", async () => {
    const server = await ConsoleServer.create({
      rpcUrl: config.rpc,
      book,
      stargateUrl: config.stargateUrl,
      port: config.port,
      host: config.host,
      logLevel: config.logLevel,
    });
    return {
      app: server.app,
      close: () => server.close(),
      start: async () => {
        const url = await server.start();
        process.stdout.write(`Edge Console: ${url}\n`);
        return url;
      },
    };
  });
}

if (require.main === module) runMain("console", main);
