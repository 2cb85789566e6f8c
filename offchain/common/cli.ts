/**
 * Shared by the command lines (edge-node, oracle, billing, newton, console): input files, configuration problems,
 * and exit codes 0, 2 (bad input), 1.
 */
import { readFileSync } from "node:fs";
import { type ParseArgsConfig, parseArgs } from "node:util";

import { errorClass, isEdgeError } from "./errors";
import { redactUrls } from "./redact";

/** Bad command-line usage: printed as one line, exit code 2. */
export const UsageError = errorClass("UsageError", "CLI_USAGE");
export type UsageError = InstanceType<typeof UsageError>;

/** An EdgeError the caller's input caused (a 4xx): a CLI prints its message and exits 2. */
const isInputError = (error: unknown): error is Error => isEdgeError(error) && error.isInputError;

/** node:util's parseArgs over `argv` (strict), its complaint a UsageError (exit 2), `usage` on a second line. */
export function parseFlags<O extends NonNullable<ParseArgsConfig["options"]>>(
  argv: string[],
  options: O,
  usage?: string,
) {
  try {
    return parseArgs({ args: argv, options, strict: true }).values;
  } catch (error) {
    const message = (error as Error).message;
    throw new UsageError(usage ? `${message}\n${usage}` : message, { cause: error });
  }
}

/** A subcommand: its arguments in, the exit code out. */
export type Command = (argv: string[]) => Promise<number>;

/** A command that prints what `run` returns (its one JSON document) and exits 0. */
export const printed =
  (run: (argv: string[]) => string | Promise<string>): Command =>
  async (argv) => {
    process.stdout.write((await run(argv)) + "\n");
    return 0;
  };

/** Runs the subcommand `argv[0]` names with the rest; any other word is a UsageError showing `usage`. */
export const subcommands =
  (commands: Record<string, Command>, usage: string): Command =>
  async (argv) => {
    const [name, ...rest] = argv;
    const command = name === undefined ? undefined : commands[name];
    if (!command || !Object.hasOwn(commands, name)) throw new UsageError(usage);
    return command(rest);
  };

export function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new UsageError(`cannot read ${what} from ${path}: ${(error as Error).message}`);
  }
}

/**
 * What `load` returns (a service's configuration), or undefined after printing `<name>: <problems>` and where
 * help is, for an input error (a ConfigError, a bad file it names): the caller exits 2.
 */
export function configOrReport<T>(name: string, helpHint: string, load: () => T) {
  try {
    return load();
  } catch (error) {
    if (isInputError(error)) {
      process.stderr.write(`${name}: ${(error as Error).message}\n(see ${helpHint})\n`);
      return undefined;
    }
    throw error;
  }
}

/**
 * Runs `main` with the process's arguments and sets the exit code it returns. An input error (an EdgeError with
 * a 4xx status: bad usage, a bad file) prints `<name>: <message>` and exits 2; any other EdgeError prints its
 * message and exits 1; anything else (a bug) prints its stack and exits 1.
 */
export function runMain(name: string, main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: Error) => {
      if (isEdgeError(error)) {
        process.stderr.write(`${name}: ${redactUrls(error.message)}\n`);
        process.exitCode = error.isInputError ? 2 : 1;
        return;
      }
      process.stderr.write(`${name}: ${redactUrls(String(error.stack ?? error))}\n`);
      process.exitCode = 1;
    },
  );
}
