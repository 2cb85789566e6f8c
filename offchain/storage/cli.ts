/**
 * edge-storage, the client's command line. This increment has only the local commands (docs/storage.md): no
 * network command exists yet, and none is pretended.
 *
 *   ts-node offchain/storage/cli.ts keygen --out FILE
 *       A new key file: 32 random bytes, mode 0600, never over an existing file. Prints {"keyFile"}.
 *   ts-node offchain/storage/cli.ts encode --in FILE --out DIR --chain-id N (--key-file F | --wallet) [--k K --n N]
 *       Seals FILE as an object of the owner wallet: DIR (new) gets manifest.json and fragment-NN.bin.
 *   ts-node offchain/storage/cli.ts decode --in DIR --out FILE --chain-id N (--key-file F | --wallet) [--owner A]
 *       Opens the object in DIR from whichever fragment files are there (missing and corrupt ones are skipped, at
 *       least k needed) into FILE (new).
 *
 * The owner wallet (which signs manifests, and derives the storage key with --wallet) is the JSON keystore named
 * by EDGE_STORAGE_KEYSTORE, its password in EDGE_STORAGE_KEYSTORE_PASSWORD or _PASSWORD_FILE. Keys are never
 * printed. Exit codes: 0 success, 2 bad input (a usage error, a refused key file, manifest or object), 1 otherwise.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { privateKeyToAccount } from "viem/accounts";

import { UsageError, parseFlags, printed, readJson, runMain, subcommands } from "../common/cli";
import { keyFromKeystore } from "../common/keystore";
import { STORAGE_MAX_FRAGMENTS } from "../common/protocol/storageManifest";
import { type StorageKey, generateKeyFile, readKeyFile, walletStorageKey } from "./keys";
import { checkObjectSize, openObject, sealObject } from "./object";

const KEYSTORE = "EDGE_STORAGE_KEYSTORE";
const MANIFEST = "manifest.json";
const USAGE =
  "usage: edge-storage keygen --out FILE\n" +
  "       edge-storage encode --in FILE --out DIR --chain-id N (--key-file F | --wallet) [--k K --n N]\n" +
  "       edge-storage decode --in DIR --out FILE --chain-id N (--key-file F | --wallet) [--owner ADDRESS]";

const fragmentFile = (i: number) => `fragment-${String(i).padStart(2, "0")}.bin`;

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === "") throw new UsageError(`${flag} is required\n${USAGE}`);
  return value;
}

function integer(value: string | undefined, flag: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  if (!/^\d{1,3}$/.test(value)) throw new UsageError(`${flag} must be a small positive integer, not "${value}"`);
  return Number(value);
}

/** The owner wallet from the keystore EDGE_STORAGE_KEYSTORE names. */
function ownerWallet(env: NodeJS.ProcessEnv) {
  const privateKey = keyFromKeystore(env, KEYSTORE);
  if (privateKey === undefined)
    throw new UsageError(`${KEYSTORE} must name the owner wallet's JSON keystore (it signs the manifest)`);
  return privateKeyToAccount(privateKey);
}

const KEY_FLAGS = {
  "chain-id": { type: "string" },
  "key-file": { type: "string" },
  wallet: { type: "boolean", default: false },
} as const;

async function storageKey(
  values: { "key-file"?: string; wallet?: boolean },
  wallet: () => ReturnType<typeof ownerWallet>,
): Promise<StorageKey> {
  if ((values["key-file"] === undefined) === !values.wallet)
    throw new UsageError(`give exactly one of --key-file FILE and --wallet\n${USAGE}`);
  return values.wallet ? walletStorageKey(wallet()) : readKeyFile(values["key-file"]!);
}

function chainId(value: string | undefined): number {
  const text = required(value, "--chain-id");
  if (!/^[1-9]\d{0,14}$/.test(text)) throw new UsageError(`--chain-id must be a positive integer, not "${text}"`);
  return Number(text);
}

export function keygenCommand(argv: string[]): string {
  const values = parseFlags(argv, { out: { type: "string" } }, USAGE);
  const file = required(values.out, "--out");
  generateKeyFile(file);
  return JSON.stringify({ keyFile: file });
}

export async function encodeCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const values = parseFlags(
    argv,
    { ...KEY_FLAGS, in: { type: "string" }, out: { type: "string" }, k: { type: "string" }, n: { type: "string" } },
    USAGE,
  );
  const input = required(values.in, "--in");
  const out = required(values.out, "--out");
  const chain = chainId(values["chain-id"]);
  if (existsSync(out)) throw new UsageError(`--out ${out} exists; encode writes a new directory`);
  const owner = ownerWallet(env);
  const key = await storageKey(values, () => owner);
  let plaintext: Buffer;
  try {
    plaintext = readFileSync(input);
  } catch (error) {
    throw new UsageError(`cannot read --in ${input}: ${(error as Error).message}`);
  }
  checkObjectSize(plaintext.length);
  const options = { k: integer(values.k, "--k"), n: integer(values.n, "--n") };
  const { manifest, fragments } = await sealObject(key, owner, chain, plaintext, options);
  mkdirSync(out);
  fragments.forEach((fragment, i) => writeFileSync(join(out, fragmentFile(i)), fragment, { flag: "wx" }));
  writeFileSync(join(out, MANIFEST), JSON.stringify(manifest, null, 2) + "\n", { flag: "wx" });
  const { objectId, size, k, n, fragmentSize } = manifest;
  return JSON.stringify({ objectId, owner: manifest.owner, size, k, n, fragmentSize, dir: out });
}

export async function decodeCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const values = parseFlags(
    argv,
    { ...KEY_FLAGS, in: { type: "string" }, out: { type: "string" }, owner: { type: "string" } },
    USAGE,
  );
  const dir = required(values.in, "--in");
  const out = required(values.out, "--out");
  const chain = chainId(values["chain-id"]);
  if (existsSync(out)) throw new UsageError(`--out ${out} exists; decode never overwrites a file`);
  const key = await storageKey(values, () => ownerWallet(env));
  const manifest = readJson(join(dir, MANIFEST), "the manifest");
  // Only the fragment files of this layout, up to the most any manifest has; the manifest decides what is used.
  const present = new Set(readdirSync(dir));
  const fragments = Array.from({ length: STORAGE_MAX_FRAGMENTS }, (_, i) =>
    present.has(fragmentFile(i)) ? readFileSync(join(dir, fragmentFile(i))) : undefined,
  );
  const n = (manifest as { n?: unknown }).n;
  const slots = typeof n === "number" && n >= 0 && n <= STORAGE_MAX_FRAGMENTS ? fragments.slice(0, n) : fragments;
  const { plaintext, corrupt } = await openObject(key, chain, manifest, slots, { owner: values.owner });
  writeFileSync(out, plaintext, { flag: "wx" });
  const missing = slots.flatMap((f, i) => (f === undefined ? [i] : []));
  return JSON.stringify({
    objectId: (manifest as { objectId: string }).objectId,
    size: plaintext.length,
    corrupt,
    missing,
    out,
  });
}

const commands = subcommands(
  {
    keygen: printed(keygenCommand),
    encode: printed((argv) => encodeCommand(argv)),
    decode: printed((argv) => decodeCommand(argv)),
  },
  USAGE,
);

/** The commands; `--help` (alone) prints the usage and exits 0. */
export async function storageMain(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "help")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  return commands(argv);
}

if (require.main === module) runMain("edge-storage", storageMain);
