/** `billing serve`: starts the service until SIGINT/SIGTERM. */
import { readFileSync } from "node:fs";

import { configOrReport } from "../common/cli";
import { runUntilSignal } from "../common/serve";
import { BillingInputError, parsePriceList } from "./bills";
import { billingHelp, loadBillingConfig } from "./config";
import { BillingService } from "./service";

export async function serveCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(billingHelp() + "\n");
    return 0;
  }
  const loaded = configOrReport("billing", "serve --help", () => {
    const config = loadBillingConfig(argv, process.env);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(config.prices, "utf8"));
    } catch (error) {
      throw new BillingInputError(`cannot read the price list from ${config.prices}: ${(error as Error).message}`);
    }
    return { config, prices: parsePriceList(json, config.prices) };
  });
  if (!loaded) return 2;
  return runUntilSignal("billing", () => BillingService.create(loaded.config, loaded.prices));
}
