import { expect } from "chai";
import { execFile } from "node:child_process";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..");
const HARDHAT = join(ROOT, "node_modules", ".bin", "hardhat");
const TRACE_LINE = /^ {4}at /m;

/**
 * Runs the Hardhat CLI as a user would, on a machine Hardhat takes for a CI server (CI set, no display: where it
 * used to add a stack trace to every failing task), and returns its exit code and output.
 */
function hardhat(args: string[]): Promise<{ code: number | null; output: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: "true", NO_COLOR: "1" };
  delete env.FORCE_COLOR;
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  delete env.HARDHAT_SHOW_STACK_TRACES;
  return new Promise((resolve) => {
    execFile(HARDHAT, args, { cwd: ROOT, env }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code as number) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe("a failing task on the command line", function () {
  this.timeout(120_000);
  const missingBook = join(ROOT, "no-such-dir", "addresses.json");

  it("prints the task's message and exits non-zero, without a stack trace", async function () {
    const { code, output } = await hardhat(["stake:unstake", "--stake", "99", "--addresses", missingBook]);
    expect(code, output).to.equal(1);
    expect(output).to.include(`Error in plugin edge: ${missingBook}: no address book`);
    expect(output).to.not.match(TRACE_LINE);
  });

  it("prints Hardhat's own argument errors (HH306) the same way", async function () {
    const { code, output } = await hardhat(["stake:create", "--type", "host"]);
    expect(code, output).to.equal(1);
    expect(output).to.include("HH306: The '--amount' parameter of task 'stake:create' expects a value");
    expect(output).to.not.match(TRACE_LINE);
  });

  it("shows the stack trace with --show-stack-traces", async function () {
    const args = ["stake:unstake", "--stake", "99", "--addresses", missingBook, "--show-stack-traces"];
    const { code, output } = await hardhat(args);
    expect(code, output).to.equal(1);
    expect(output).to.include(`${missingBook}: no address book`);
    expect(output).to.match(TRACE_LINE);
    expect(output).to.match(/^ {4}at fail \(.*scripts[\\/]tasks[\\/]lib\.ts/m);
  });
});
