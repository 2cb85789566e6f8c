/**
 * `edge-node hash-password [--log-n <12-20>]`: reads a password from stdin (the first line; typed without echo
 * on a terminal) and prints its scrypt hash for a users file (D56). The password is never an argument (other
 * users can read a process's arguments) and never printed.
 */
import { DEFAULT_COST, describeCost, hashPassword } from "./roles/stargate/passwords";
import { MAX_PASSWORD_LENGTH } from "./roles/stargate/users";

/** The first line of stdin; on a terminal, read without echo. */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) {
    process.stderr.write("password (not shown): ");
    stdin.setRawMode(true);
  }
  let text = "";
  try {
    for await (const chunk of stdin) {
      text += chunk.toString("utf8");
      if (stdin.isTTY && text.includes("\u0003")) throw new Error("interrupted");
      if (/[\r\n]/.test(text)) break;
    }
  } finally {
    if (stdin.isTTY) {
      stdin.setRawMode(false);
      process.stderr.write("\n");
    }
    stdin.pause();
  }
  return text.split(/\r?\n|\r/)[0];
}

/** Exit code: 0 with the hash on stdout, 2 for bad input. */
export async function hashPasswordCommand(argv: readonly string[]): Promise<number> {
  let logN = DEFAULT_COST.logN;
  if (argv.length === 2 && argv[0] === "--log-n" && /^\d{1,2}$/.test(argv[1])) logN = Number(argv[1]);
  else if (argv.length > 0) {
    console.error("usage: edge-node hash-password [--log-n <12-20>]  (the password is read from stdin)");
    return 2;
  }
  const password = await readPassword();
  if (password.length === 0 || password.length > MAX_PASSWORD_LENGTH) {
    console.error(`edge-node hash-password: the password must be 1 to ${MAX_PASSWORD_LENGTH} characters`);
    return 2;
  }
  const cost = { ...DEFAULT_COST, logN };
  try {
    console.log(await hashPassword(password, cost));
  } catch (error) {
    console.error(`edge-node hash-password: ${(error as Error).message}`);
    return 2;
  }
  console.error(`(${describeCost(cost)})`);
  return 0;
}
