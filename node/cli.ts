/**
 * edge-node entry point:  npm run -s edge-node -- --role host --rpc http://… --addresses book.json --gateway http://…
 *              npm run -s edge-node -- hash-password < password.txt   (a users file's scrypt hash, D56)
 * Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 2 for a bad configuration, 1 for a failure to start.
 */
import { configOrReport } from "../offchain/common/cli";
import { helpText, loadConfig } from "./config";
import { EdgeNode } from "./daemon";
import { hashPasswordCommand } from "./hashPassword";

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv[0] === "hash-password") return hashPasswordCommand(argv.slice(1));
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(helpText());
    return 0;
  }
  const config = configOrReport("edge-node", "--help", () => loadConfig(argv, process.env));
  if (!config) return 2;
  let node: EdgeNode;
  try {
    node = await EdgeNode.create(config);
    await node.start();
  } catch (error) {
    console.error(`edge-node: cannot start: ${(error as Error).message.split("\n")[0]}`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      node.app.log.info({ signal }, "shutting down: draining, leaving, flushing");
      node.close().then(resolve, (error) => {
        node.app.log.error({ err: error }, "shutdown failed");
        resolve();
      });
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
