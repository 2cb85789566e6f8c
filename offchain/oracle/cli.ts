/**
 * The oracle's command line.
 *
 *   npm run -s oracle -- score --reports R.json --admitted A.json --epoch N [--heartbeats H.json]
 *       Recomputes an epoch's scores from published inputs; prints only {"epoch":N,"scores":[...]}.
 *   npm run -s oracle -- serve [options]      (see `serve --help` and docs/oracle.md)
 *
 * Exit codes: 0 success, 2 bad input or configuration, 1 anything else.
 */
import { UsageError, parseFlags, printed, readJson, runMain, subcommands } from "../common/cli";
import { type AdmittedInput, type HeartbeatInput, type ReportInput, scoreEpoch } from "./scoring";

export function scoreCommand(argv: string[]): string {
  const values = parseFlags(argv, {
    reports: { type: "string" },
    admitted: { type: "string" },
    epoch: { type: "string" },
    heartbeats: { type: "string" },
  });
  if (!values.reports || !values.admitted || values.epoch === undefined) {
    throw new UsageError("usage: score --reports R.json --admitted A.json --epoch N [--heartbeats H.json]");
  }
  if (!/^\d+$/.test(values.epoch)) throw new UsageError(`--epoch "${values.epoch}" is not a non-negative integer`);
  const reports = readJson(values.reports, "reports");
  const admitted = readJson(values.admitted, "the admitted set") as Partial<AdmittedInput>;
  const heartbeats = values.heartbeats ? readJson(values.heartbeats, "heartbeats") : [];
  if (!Array.isArray(reports)) throw new UsageError(`${values.reports}: expected an array of reports`);
  if (!Array.isArray(heartbeats)) throw new UsageError(`${values.heartbeats}: expected an array of heartbeats`);
  for (const key of ["hosts", "gateways", "stargates"] as const) {
    if (!Array.isArray(admitted?.[key])) throw new UsageError(`${values.admitted}: "${key}" must be an array`);
  }
  const scores = scoreEpoch(
    values.epoch,
    reports as ReportInput[],
    admitted as AdmittedInput,
    heartbeats as HeartbeatInput[],
  );
  return JSON.stringify({ epoch: Number(values.epoch), scores });
}

const main = subcommands(
  {
    score: printed(scoreCommand),
    serve: async (argv) => (await import("./serve")).serveCommand(argv),
  },
  "usage: oracle score --reports R.json --admitted A.json --epoch N [--heartbeats H.json] | oracle serve [options]",
);

if (require.main === module) runMain("oracle", main);
