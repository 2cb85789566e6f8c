/**
 * Private keys at rest in Ethereum JSON keystores (the V3 format geth, ethers, Foundry and most wallets write):
 * scrypt- or pbkdf2-encrypted, so a stolen disk or backup does not give the key away. The password comes from an
 * environment variable or from a file (a systemd credential, a secrets mount), never from a flag.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type * as Ethers from "ethers";
import { errorClass } from "./errors";

// Loaded on first use: most processes never open a keystore, and ethers adds ~0.2 s to every start.
const ethers = (): typeof Ethers => require("ethers");

export const KeystoreError = errorClass("KeystoreError", "KEYSTORE_INVALID");
export type KeystoreError = InstanceType<typeof KeystoreError>;

/** `<variable>_PASSWORD`, else the contents of the file named by `<variable>_PASSWORD_FILE` (one trailing newline dropped). */
export function keystorePassword(env: NodeJS.ProcessEnv, variable: string): string {
  const direct = env[`${variable}_PASSWORD`];
  if (direct !== undefined && direct !== "") return direct;
  const file = env[`${variable}_PASSWORD_FILE`];
  if (file) {
    try {
      return readFileSync(file, "utf8").replace(/\r?\n$/, "");
    } catch (error) {
      throw new KeystoreError(`${variable}_PASSWORD_FILE: ${(error as Error).message}`);
    }
  }
  throw new KeystoreError(`${variable} is set: give its password in ${variable}_PASSWORD or ${variable}_PASSWORD_FILE`);
}

/** The private key in one keystore file. */
export function decryptKeystoreFile(file: string, password: string): `0x${string}` {
  let json: string;
  try {
    json = readFileSync(file, "utf8");
  } catch (error) {
    throw new KeystoreError(`cannot read keystore ${file}: ${(error as Error).message}`);
  }
  try {
    return ethers().decryptKeystoreJsonSync(json, password).privateKey as `0x${string}`;
  } catch (error) {
    const message = (error as Error).message;
    if (/incorrect password/i.test(message)) throw new KeystoreError(`keystore ${file}: wrong password`);
    throw new KeystoreError(`keystore ${file} is not a JSON keystore: ${message.split(" (")[0]}`);
  }
}

/** The keys in the keystore files `env[variable]` names (comma-separated), or [] when it is unset. */
export function keysFromKeystores(env: NodeJS.ProcessEnv, variable: string): Array<`0x${string}`> {
  const files = (env[variable] ?? "")
    .split(",")
    .map((f) => f.trim())
    .filter(Boolean);
  if (files.length === 0) return [];
  const password = keystorePassword(env, variable);
  return files.map((file) => decryptKeystoreFile(file, password));
}

/** The one key in the keystore file `env[variable]` names, or undefined when it is unset. */
export function keyFromKeystore(env: NodeJS.ProcessEnv, variable: string): `0x${string}` | undefined {
  const keys = keysFromKeystores(env, variable);
  if (keys.length > 1) throw new KeystoreError(`${variable} names ${keys.length} files; one key is expected`);
  return keys[0];
}

/**
 * Writes `privateKey` (or a fresh random key) to a new keystore file and returns its address; refuses to
 * overwrite a file. `scryptN` below the default 2^17 is for tests only.
 */
export function writeKeystoreFile(
  file: string,
  password: string,
  privateKey?: string,
  scryptN?: number,
): { address: string } {
  if (existsSync(file)) throw new KeystoreError(`${file} exists; not overwriting a keystore`);
  if (password.length === 0) throw new KeystoreError("the keystore password is empty");
  const { Wallet, encryptKeystoreJsonSync } = ethers();
  const wallet = privateKey ? new Wallet(privateKey) : Wallet.createRandom();
  const json = encryptKeystoreJsonSync(
    { address: wallet.address, privateKey: wallet.privateKey },
    password,
    scryptN ? { scrypt: { N: scryptN } } : {},
  );
  writeFileSync(file, json, { mode: 0o600, flag: "wx" });
  return { address: wallet.address };
}
