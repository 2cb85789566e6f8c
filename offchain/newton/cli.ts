/**
 * Newton's command line.
 *
 *   npm run -s newton -- run --url URL --rate R --duration S [--method M] [--header "K: V"]… [--body B]
 *                            [--concurrency N] [--timeout-ms T]
 *       One load run against one URL; prints only the JSON summary (counts, latency, TTFB and lag percentiles).
 *   npm run -s newton -- serve [options]      (see `serve --help` and docs/newton.md)
 *
 * Exit codes: 0 success, 2 bad input or configuration, 1 anything else.
 */
import { UsageError, configOrReport, parseFlags, printed, runMain, subcommands } from "../common/cli";
import { runUntilSignal } from "../common/serve";
import { loadNewtonConfig, newtonHelp } from "./config";
import { LoadRun, type TargetSummary } from "./engine";
import { NewtonService, parseTargetUrl } from "./service";

const RUN_USAGE =
  'usage: run --url URL --rate R --duration S [--method M] [--header "K: V"]… [--body B] [--concurrency N] [--timeout-ms T]';

function positive(value: string | undefined, flag: string, fallback?: number, integer = false): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`${flag} is required\n${RUN_USAGE}`);
    return fallback;
  }
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    throw new UsageError(`${flag} must be a positive ${integer ? "integer" : "number"}, not "${value}"`);
  return n;
}

export async function runCommand(argv: string[]): Promise<TargetSummary> {
  const values = parseFlags(
    argv,
    {
      url: { type: "string" },
      rate: { type: "string" },
      duration: { type: "string" },
      method: { type: "string", default: "GET" },
      header: { type: "string", multiple: true, default: [] },
      body: { type: "string" },
      concurrency: { type: "string" },
      "timeout-ms": { type: "string" },
    },
    RUN_USAGE,
  );
  if (!values.url || !/^https?:\/\/\S+$/.test(values.url))
    throw new UsageError(`--url must be an http(s) URL\n${RUN_USAGE}`);
  parseTargetUrl(values.url);
  const method = values.method!.toUpperCase();
  if (!["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].includes(method))
    throw new UsageError(`--method ${values.method} is not an HTTP method`);
  const headers: Record<string, string> = {};
  for (const header of values.header ?? []) {
    const match = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+):\s*(.*)$/.exec(header);
    if (!match) throw new UsageError(`--header "${header}" is not "Name: value"`);
    headers[match[1].toLowerCase()] = match[2];
  }
  const run = new LoadRun([{ id: "target", url: values.url, method, headers, body: values.body }], {
    rate: positive(values.rate, "--rate"),
    durationMs: positive(values.duration, "--duration") * 1000,
    maxConcurrency: positive(values.concurrency, "--concurrency", 256, true),
    timeoutMs: positive(values["timeout-ms"], "--timeout-ms", 10_000, true),
  });
  process.once("SIGINT", () => run.stop());
  const [summary] = await run.start();
  return summary;
}

async function serveCommand(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(newtonHelp() + "\n");
    return 0;
  }
  const config = configOrReport("newton", "serve --help", () => loadNewtonConfig(argv, process.env));
  if (!config) return 2;
  return runUntilSignal("newton", async () => new NewtonService(config));
}

const main = subcommands(
  { run: printed(async (argv) => JSON.stringify(await runCommand(argv))), serve: serveCommand },
  `${RUN_USAGE} | serve [options]`,
);

if (require.main === module) runMain("newton", main);
