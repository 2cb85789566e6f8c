/**
 * The billing command line.
 *
 *   npm run -s billing -- bill --usage U.json --prices P.json --period ID [--period-seconds S --period-start MS]
 *       Bills for one period from raw usage records; prints only {"period":ID,"bills":[…]} (sorted by customer,
 *       each with its billHash). Periods are UTC months ("2026-11") unless --period-seconds gives fixed periods
 *       ("0", "1", …) counted from --period-start (unix milliseconds, default 0).
 *   npm run -s billing -- serve [options]      (see `serve --help` and docs/billing.md)
 *
 * Exit codes: 0 success, 2 bad input or configuration, 1 anything else.
 */
import { parseArgs } from "node:util";

import { UsageError, printed, readJson, runMain, subcommands } from "../common/cli";
import { MONTHLY, type PeriodScheme, periodWindow } from "../common/period";
import { billRecords, parsePriceList } from "./bills";

const BILL_USAGE = "usage: bill --usage U.json --prices P.json --period ID [--period-seconds S --period-start MS]";

export function billCommand(argv: string[]): string {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        usage: { type: "string" },
        prices: { type: "string" },
        period: { type: "string" },
        "period-seconds": { type: "string" },
        "period-start": { type: "string" },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n${BILL_USAGE}`);
  }
  if (!values.usage || !values.prices || values.period === undefined) throw new UsageError(BILL_USAGE);
  let scheme: PeriodScheme = MONTHLY;
  if (values["period-seconds"] !== undefined) {
    const seconds = Number(values["period-seconds"]);
    const start = Number(values["period-start"] ?? "0");
    if (!Number.isSafeInteger(seconds) || seconds < 1)
      throw new UsageError("--period-seconds must be a positive integer");
    if (!Number.isSafeInteger(start) || start < 0) throw new UsageError("--period-start must be unix milliseconds");
    scheme = { kind: "fixed", startMs: start, lengthMs: seconds * 1000 };
  } else if (values["period-start"] !== undefined) {
    throw new UsageError("--period-start needs --period-seconds");
  }
  const period = values.period;
  const { startMs, endMs } = periodWindow(period, scheme);
  const usage = readJson(values.usage, "usage records");
  if (!Array.isArray(usage)) throw new UsageError(`${values.usage}: expected an array of usage records`);
  const prices = parsePriceList(readJson(values.prices, "the price list"), values.prices);
  const bills = billRecords(period, usage, prices, (time) => time >= startMs && time < endMs);
  return JSON.stringify({ period, bills });
}

const main = subcommands(
  {
    bill: printed(billCommand),
    serve: async (argv) => (await import("./serve")).serveCommand(argv),
  },
  `${BILL_USAGE} | serve [options]`,
);

if (require.main === module) runMain("billing", main);
