/**
 * edge-storage, the client's command line (docs/storage.md "Command line"): local commands, and the network ones
 * through a gateway's storage API (client.ts).
 *
 *   ts-node offchain/storage/cli.ts keygen --out FILE
 *       A new key file: 32 random bytes, mode 0600, never over an existing file. Prints {"keyFile"}.
 *   ts-node offchain/storage/cli.ts encode --in FILE --out DIR --chain-id N (--key-file F | --wallet) [--k K --n N]
 *       Seals FILE as an object of the owner wallet: DIR (new) gets manifest.json and fragment-NN.bin.
 *   ts-node offchain/storage/cli.ts decode --in DIR --out FILE --chain-id N (--key-file F | --wallet) [--owner A]
 *       Opens the object in DIR from whichever fragment files are there (missing and corrupt ones are skipped, at
 *       least k needed) into FILE (new).
 *   ts-node offchain/storage/cli.ts put FILE   NET (--key-file F | --wallet) [--k K --n N]   prints the id, placement
 *   ts-node offchain/storage/cli.ts get ID     NET (--key-file F | --wallet) [--out FILE]    the bytes to FILE or stdout
 *   ts-node offchain/storage/cli.ts ls         NET [--after ID] [--limit N]                  a table of the objects
 *   ts-node offchain/storage/cli.ts rm ID      NET                                           deletes the object
 *       NET is --gateway URL --chain-id N [--gateway-address ADDRESS]: requests are signed for that gateway
 *       device address, read from the gateway's /status when not given (its role and chain id must match).
 *
 * The owner wallet (which signs manifests, and derives the storage key with --wallet) is the JSON keystore named
 * by EDGE_STORAGE_KEYSTORE, its password in EDGE_STORAGE_KEYSTORE_PASSWORD or _PASSWORD_FILE. Keys are never
 * printed. Exit codes: 0 success, 2 bad input (a usage error, a refused key file, manifest or object, a gateway's 4xx),
 * 1 otherwise (a gateway unreachable or failing, a gateway's 5xx).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { type Address, isAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { UsageError, parseFlags, printed, readJson, runMain, subcommands } from "../common/cli";
import { keyFromKeystore } from "../common/keystore";
import { STORAGE_MAX_FRAGMENTS } from "../common/protocol/storageManifest";
import { type StorageKey, generateKeyFile, readKeyFile, walletStorageKey } from "./keys";
import { type ListPage, StorageClient, fetchGatewayStatus, gatewayBase } from "./client";
import { checkObjectSize, openObject, sealObject } from "./object";

const KEYSTORE = "EDGE_STORAGE_KEYSTORE";
const MANIFEST = "manifest.json";
const USAGE =
  "usage: edge-storage keygen --out FILE\n" +
  "       edge-storage encode --in FILE --out DIR --chain-id N (--key-file F | --wallet) [--k K --n N]\n" +
  "       edge-storage decode --in DIR --out FILE --chain-id N (--key-file F | --wallet) [--owner ADDRESS]\n" +
  "       edge-storage put FILE NET (--key-file F | --wallet) [--k K --n N]\n" +
  "       edge-storage get OBJECT_ID NET (--key-file F | --wallet) [--out FILE]\n" +
  "       edge-storage ls NET [--after OBJECT_ID] [--limit N]\n" +
  "       edge-storage rm OBJECT_ID NET\n" +
  "  NET: --gateway URL --chain-id N [--gateway-address ADDRESS] (else read from the gateway's /status)";

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

const NET_FLAGS = {
  gateway: { type: "string" },
  "gateway-address": { type: "string" },
  "chain-id": { type: "string" },
} as const;
const OBJECT_ID = /^0x[0-9a-fA-F]{64}$/;

/** parseArgs with the positional arguments `names` (exactly those); a bare command prints the usage. */
function parseCommand<O extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  argv: string[],
  options: O,
  names: string[],
) {
  if (argv.length === 0 && names.length > 0) throw new UsageError(USAGE);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n${USAGE}`, { cause: error });
  }
  if (parsed.positionals.length !== names.length)
    throw new UsageError(`${command} takes ${names.length ? names.join(" ") : "no argument"} and flags\n${USAGE}`);
  return { values: parsed.values, args: parsed.positionals };
}

function objectIdArgument(text: string): string {
  if (!OBJECT_ID.test(text)) throw new UsageError(`"${text}" is not an object id (0x and 64 hex digits)`);
  return text.toLowerCase();
}

interface NetTarget {
  gatewayUrl: string;
  chain: number;
  gateway?: Address;
}

/** The gateway NET_FLAGS name, checked before anything is read or sent. */
function netTarget(values: { gateway?: string; "gateway-address"?: string; "chain-id"?: string }): NetTarget {
  const gatewayUrl = required(values.gateway, "--gateway");
  try {
    gatewayBase(gatewayUrl);
  } catch (error) {
    throw new UsageError(`--gateway: ${(error as Error).message}`);
  }
  const chain = chainId(values["chain-id"]);
  const gateway = values["gateway-address"];
  if (gateway !== undefined && !isAddress(gateway, { strict: false }))
    throw new UsageError(`--gateway-address must be an address, not "${gateway}"`);
  return { gatewayUrl, chain, gateway: gateway as Address | undefined };
}

/**
 * A client of the target for the owner wallet, with a storage key when `options.key`; the gateway's address from
 * its /status when not given (its role must be gateway, its chain --chain-id).
 */
async function connect(
  target: NetTarget,
  values: { "key-file"?: string; wallet?: boolean },
  env: NodeJS.ProcessEnv,
  options: { key: boolean; k?: number; n?: number },
): Promise<StorageClient> {
  const { gatewayUrl, chain } = target;
  const owner = ownerWallet(env);
  const key = options.key ? await storageKey(values, () => owner) : undefined;
  let gateway = target.gateway;
  if (gateway === undefined) {
    const status = await fetchGatewayStatus(gatewayUrl);
    if (status.role !== "gateway")
      throw new UsageError(`${gatewayUrl} is a ${status.role}, not a gateway (its /status says so)`);
    if (status.chainId !== chain)
      throw new UsageError(`${gatewayUrl} is on chain ${status.chainId}, not --chain-id ${chain}`);
    gateway = status.device;
  }
  const seal = { k: options.k, n: options.n };
  return new StorageClient({ gatewayUrl, gateway, chainId: chain, account: owner, key, seal });
}

export async function putCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const flags = { ...NET_FLAGS, ...KEY_FLAGS, k: { type: "string" }, n: { type: "string" } } as const;
  const { values, args } = parseCommand("put", argv, flags, ["FILE"]);
  const target = netTarget(values);
  const k = integer(values.k, "--k");
  const n = integer(values.n, "--n");
  let bytes: Buffer;
  try {
    bytes = readFileSync(args[0]);
  } catch (error) {
    throw new UsageError(`cannot read ${args[0]}: ${(error as Error).message}`);
  }
  checkObjectSize(bytes.length);
  const client = await connect(target, values, env, { key: true, k, n });
  const { objectId, size, storedBytes, placement } = await client.put(bytes);
  const hosts = new Set(placement.map((p) => p.host.toLowerCase())).size;
  return JSON.stringify({ objectId, size, storedBytes, fragments: placement.length, hosts });
}

/** Writes the object's bytes to --out (a new file; then prints {objectId, size, out}) or to `stdout`. */
export async function getCommand(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  stdout: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const { values, args } = parseCommand("get", argv, { ...NET_FLAGS, ...KEY_FLAGS, out: { type: "string" } }, [
    "OBJECT_ID",
  ]);
  const target = netTarget(values);
  const objectId = objectIdArgument(args[0]);
  if (values.out !== undefined && existsSync(values.out))
    throw new UsageError(`--out ${values.out} exists; get never overwrites a file`);
  const client = await connect(target, values, env, { key: true });
  const bytes = await client.get(objectId);
  const write = (chunk: string | Buffer) =>
    new Promise<void>((resolve, reject) => stdout.write(chunk, (error) => (error ? reject(error) : resolve())));
  if (values.out === undefined) await write(bytes);
  else {
    writeFileSync(values.out, bytes, { flag: "wx" });
    await write(`${JSON.stringify({ objectId, size: bytes.length, out: values.out })}\n`);
  }
  return 0;
}

/** The page as a table, and how to ask for the next one. */
export function objectTable(page: ListPage): string {
  if (page.objects.length === 0) return "no objects";
  const rows = [["OBJECT ID", "SIZE", "STORED", "HEALTHY", "CREATED"]];
  for (const o of page.objects)
    rows.push([
      o.objectId,
      String(o.size),
      String(o.storedBytes),
      `${o.healthy}/${o.fragments}`,
      new Date(o.createdAt).toISOString(),
    ]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) =>
    r
      .map((cell, c) => (c === 0 || c === 4 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join("  ")
      .trimEnd(),
  );
  if (page.next !== undefined) lines.push(`more: edge-storage ls --after ${page.next} ...`);
  return lines.join("\n");
}

export async function lsCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const flags = { ...NET_FLAGS, after: { type: "string" }, limit: { type: "string" } } as const;
  const { values } = parseCommand("ls", argv, flags, []);
  const target = netTarget(values);
  const after = values.after === undefined ? undefined : objectIdArgument(values.after);
  if (values.limit !== undefined && !/^[1-9]\d{0,3}$/.test(values.limit))
    throw new UsageError(`--limit must be an integer from 1 to 9999, not "${values.limit}"`);
  const client = await connect(target, {}, env, { key: false });
  return objectTable(await client.list(after, values.limit === undefined ? undefined : Number(values.limit)));
}

export async function rmCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const { values, args } = parseCommand("rm", argv, NET_FLAGS, ["OBJECT_ID"]);
  const target = netTarget(values);
  const objectId = objectIdArgument(args[0]);
  const client = await connect(target, {}, env, { key: false });
  return JSON.stringify(await client.remove(objectId));
}

const commands = subcommands(
  {
    keygen: printed(keygenCommand),
    encode: printed((argv) => encodeCommand(argv)),
    decode: printed((argv) => decodeCommand(argv)),
    put: printed((argv) => putCommand(argv)),
    get: (argv) => getCommand(argv),
    ls: printed((argv) => lsCommand(argv)),
    rm: printed((argv) => rmCommand(argv)),
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
