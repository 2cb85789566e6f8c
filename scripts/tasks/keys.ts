/**
 * keys:keystore: puts a private key in an encrypted JSON keystore, so that deployers, oracles, billers and node
 * operators keep no plain key on disk.
 *
 *   EDGE_KEYSTORE_PASSWORD=… npx hardhat keys:keystore --out deployer.json [--key-env EDGE_DEPLOYER_KEY]
 */
import { task } from "hardhat/config";

import { KeystoreError, keystorePassword, writeKeystoreFile } from "../../offchain/common/keystore";
import { fail } from "./lib";

const PRIVATE_KEY = /^0x[0-9a-fA-F]{64}$/;

task("keys:keystore", "Writes a private key (from an environment variable, or a new random one) to a JSON keystore")
  .addParam("out", "the keystore file to create (never overwritten)")
  .addOptionalParam("keyEnv", "environment variable holding the key to encrypt (default: a new random key)")
  .setAction(async (args: { out: string; keyEnv?: string }) => {
    let key: string | undefined;
    if (args.keyEnv !== undefined) {
      key = process.env[args.keyEnv];
      if (!key) fail(`${args.keyEnv} is not set`);
      if (!PRIVATE_KEY.test(key)) fail(`${args.keyEnv} is not a private key (0x followed by 64 hex digits)`);
    }
    try {
      const { address } = writeKeystoreFile(args.out, keystorePassword(process.env, "EDGE_KEYSTORE"), key);
      console.log(`${address} written to ${args.out}`);
      console.log(`use it with EDGE_KEYSTORE=${args.out} (tasks) or <KEY VARIABLE>_KEYSTORE=${args.out} (daemons)`);
    } catch (error) {
      if (error instanceof KeystoreError) fail(error.message);
      throw error;
    }
  });
