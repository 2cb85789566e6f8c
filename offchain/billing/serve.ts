/** `billing serve`: starts the service until SIGINT/SIGTERM. */
import { readFileSync } from "node:fs";

import { ConfigError } from "../common/config";
import { runUntilSignal } from "../common/serve";
import { BillingInputError, type PriceList, parsePriceList } from "./bills";
import { billingHelp, loadBillingConfig } from "./config";
import { BillingService } from "./service";

export async function serveCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(billingHelp() + "\n");
    return 0;
  }
  let config;
  let prices: PriceList;
  try {
    config = loadBillingConfig(argv, process.env);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(config.prices, "utf8"));
    } catch (error) {
      throw new BillingInputError(`cannot read the price list from ${config.prices}: ${(error as Error).message}`);
    }
    prices = parsePriceList(json, config.prices);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof BillingInputError) {
      process.stderr.write(`billing: ${error.message}\n(see serve --help)\n`);
      return 2;
    }
    throw error;
  }
  return runUntilSignal("billing", () => BillingService.create(config, prices));
}
