/**
 * Shared by the command lines (edge-node, oracle, billing, newton, console): input files, configuration problems,
 * and exit codes 0, 2 (bad input), 1.
 */
import { readFileSync } from "node:fs";

import { ConfigError } from "./config";

/** Bad command-line usage: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new UsageError(`cannot read ${what} from ${path}: ${(error as Error).message}`);
  }
}

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * What `load` returns (a service's configuration), or undefined after printing `<name>: <problems>` and where
 * help is, for a ConfigError or one of `inputErrors`: the caller exits 2.
 */
export function configOrReport<T>(name: string, helpHint: string, load: () => T, inputErrors: ErrorClass[] = []) {
  try {
    return load();
  } catch (error) {
    if (error instanceof ConfigError || inputErrors.some((type) => error instanceof type)) {
      process.stderr.write(`${name}: ${(error as Error).message}\n(see ${helpHint})\n`);
      return undefined;
    }
    throw error;
  }
}

/**
 * Runs `main` with the process's arguments and sets the exit code it returns. An error of one of `inputErrors`
 * (or a UsageError) prints `<name>: <message>` and exits 2; anything else prints its stack and exits 1.
 */
export function runMain(name: string, main: (argv: string[]) => Promise<number>, inputErrors: ErrorClass[]): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: Error) => {
      if (error instanceof UsageError || inputErrors.some((type) => error instanceof type)) {
        process.stderr.write(`${name}: ${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      process.stderr.write(`${name}: ${error.stack ?? error}\n`);
      process.exitCode = 1;
    },
  );
}
