/**
 * A failing task prints its one-line message and exits non-zero, without a stack trace, on every machine.
 *
 * Why this is needed: Hardhat 2's CLI (node_modules/hardhat/internal/cli/cli.js) prints the message of an expected
 * error (a task's HardhatPluginError raised by `fail()`, or Hardhat's own HardhatError such as HH306 for a missing
 * argument) and then, only when it believes it runs on a CI server, `console.error(error)`: the whole stack trace.
 * Its test, `isRunningOnCiServer()`, is also true on any Linux without DISPLAY or WAYLAND_DISPLAY, so on every
 * server, container and CI machine; it is evaluated into a constant when the CLI loads, before this project's
 * config, and `--show-stack-traces` can only add traces, never remove them.
 *
 * What this does: in a process the Hardhat CLI runs without `--show-stack-traces` (or HARDHAT_SHOW_STACK_TRACES),
 * `util.inspect` of those two error types (what `console.error` prints) becomes the hint Hardhat prints instead of
 * a trace on a desktop. Their `stack` is left as it is (Hardhat's `stack` getter calls the same method with no
 * arguments, `util.inspect` passes three), so mocha and any log still show the trace; an unexpected error (any
 * other type, a bug) still prints its trace, as Hardhat decides.
 */
import { inspect } from "node:util";
import { CustomError, HardhatError } from "hardhat/internal/core/errors";
import { getErrorCode } from "hardhat/internal/core/errors-list";

type Inspect = (this: CustomError, ...args: unknown[]) => string;

/** Called once by hardhat.config.ts. */
export function hideStackTracesOfExpectedErrors(): void {
  const runByHardhatCli = /[\\/]hardhat[\\/]internal[\\/]cli[\\/]/.test(require.main?.filename ?? "");
  const tracesAsked = process.argv.includes("--show-stack-traces") || process.env.HARDHAT_SHOW_STACK_TRACES === "true";
  if (!runByHardhatCli || tracesAsked) return;
  // HardhatError and HardhatPluginError (and NomicLabsHardhatPluginError) inherit their inspect from CustomError.
  const prototype = CustomError.prototype as unknown as Record<symbol, Inspect>;
  const original = prototype[inspect.custom];
  Object.defineProperty(prototype, inspect.custom, {
    configurable: true,
    value: function (this: CustomError, ...args: unknown[]) {
      if (args.length === 0) return original.call(this); // the `stack` getter
      return HardhatError.isHardhatError(this)
        ? `For more info go to https://v2.hardhat.org/${getErrorCode(this.errorDescriptor)} or run hardhat with --show-stack-traces`
        : "For more info run hardhat with --show-stack-traces";
    } satisfies Inspect,
  });
}
