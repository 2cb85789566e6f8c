/**
 * Edge Storage client benchmark (issue 21): how fast the client seals and opens 2 MiB objects with the default
 * k = 10 of n = 16, written to bench/storage.json and the table in docs/storage.md (`npm run bench:storage`).
 *
 * `encode.mbPerSecond` and `decode.mbPerSecond` are the figures for the erasure code itself (k of n as
 * chosen): Reed-Solomon of a 2 MiB object's ciphertext into 16 fragments, and its rebuilding in the worst case,
 * n - k = 6 data fragments missing (6 rebuilt from 4 data and 6 parity). `seal.mbPerSecond` and `open.mbPerSecond`
 * are the whole client around it: sealObject (AES-256-GCM with a per-object HKDF key, the code, sha256 of each
 * fragment, the owner's EIP-712 signature of the manifest) and openObject in the same worst case (the manifest's
 * signature checked, every fragment's sha256, the code, GCM decryption); `open.allData.mbPerSecond` opens with
 * every data fragment present (nothing to rebuild). MB = 10^6 bytes of the object; total bytes over total time,
 * objects one after another (the codec runs in libuv's pool, awaited: about one core).
 *
 * The network's keys (`put.2mb.*`, `get.2mb.*`, `repair.*`, `durability*`) are measured after, on a real gateway
 * and hosts on loopback: scripts/bench/storageNetwork.ts says how. Their method is kept as text in the JSON
 * (`put.2mb.measured`, `repair.method`, `durability.method`), not in the table.
 *
 *   npm run bench:storage                       # writes bench/storage.json and the table
 *   STORAGE_BENCH_QUICK=1 npm run bench:storage # fewer objects and trials; prints, writes nothing
 *   STORAGE_BENCH_DOC=<file>                    # the table goes to <file> instead of docs/storage.md
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { privateKeyToAccount } from "viem/accounts";

import { STORAGE_MAX_OBJECT_BYTES } from "../../offchain/common/protocol";
import { decodeFragments, encodeFragments } from "../../offchain/common/erasure";
import { StorageKey } from "../../offchain/storage/keys";
import {
  DEFAULT_DATA_FRAGMENTS as K,
  DEFAULT_TOTAL_FRAGMENTS as N,
  type SealedObject,
  openObject,
  sealObject,
} from "../../offchain/storage/object";
import { writeBenchResults } from "./report";
import { measureNetwork } from "./storageNetwork";

const ROOT = join(__dirname, "..", "..");
const QUICK = process.env.STORAGE_BENCH_QUICK === "1";
const OBJECTS = QUICK ? 5 : 40;
const WARMUP = 5;
const CHAIN_ID = 31337;
const SIZE = STORAGE_MAX_OBJECT_BYTES;
const TARGETS: Record<string, string> = {
  "encode.mbPerSecond": ">= 200 (issue 21): the erasure code, k = 10 of n = 16",
  "decode.mbPerSecond": ">= 200 (issue 21): 6 data fragments rebuilt",
  "seal.mbPerSecond": "reported: the whole client put (encrypt, code, hash, sign)",
  "open.mbPerSecond": "reported: the whole client get, 6 data fragments missing",
  "put.2mb.p50.ms": "issue 21: StorageClient put of 2 MiB, 6 hosts, in-process on loopback",
  "get.2mb.p50.ms": "issue 21: StorageClient get of 2 MiB (openObject included)",
  "repair.seconds": "issue 21: 1 of 6 hosts evicted, 100 objects back to 16 fragments (detection included)",
  durability: "1 (issue 21): trials where every object opens with n - k of its hosts killed",
  "durability.control.readable": "0: with n - k + 1 killed nothing may open (the check can fail)",
  "machine.load1.start": "the 1-minute load average when the run started (2 cores)",
};

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const mbPerSecond = (bytes: number, ns: bigint) => round(bytes / 1e6 / (Number(ns) / 1e9));

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ns: bigint }> {
  const start = process.hrtime.bigint();
  const value = await run();
  return { value, ns: process.hrtime.bigint() - start };
}

/** The fragments with the first n - k (data) ones missing: the most the decoder has to rebuild. */
const worstCase = (sealed: SealedObject) => sealed.fragments.map((f, i) => (i < N - K ? undefined : f));
/** Every data fragment present, the parity ones missing: nothing to rebuild. */
const allData = (sealed: SealedObject) => sealed.fragments.map((f, i) => (i < K ? f : undefined));

/** The codec's and the client's keys. */
async function measureCodec(): Promise<Record<string, number>> {
  const load1 = round(loadavg()[0], 2);
  console.log(`load average at start: ${load1}; ${OBJECTS} objects of ${SIZE} bytes, k = ${K} of n = ${N}`);
  const owner = privateKeyToAccount(`0x${"11".repeat(32)}`);
  const key = new StorageKey(randomBytes(32), "key-file");
  const ns = { seal: 0n, open: 0n, openAllData: 0n, encode: 0n, decode: 0n };
  for (let i = 0; i < OBJECTS + WARMUP; i++) {
    const plaintext = randomBytes(SIZE);
    const sealed = await timed(() => sealObject(key, owner, CHAIN_ID, plaintext));
    const opened = await timed(() => openObject(key, CHAIN_ID, sealed.value.manifest, worstCase(sealed.value)));
    const fast = await timed(() => openObject(key, CHAIN_ID, sealed.value.manifest, allData(sealed.value)));
    if (!opened.value.plaintext.equals(plaintext) || !fast.value.plaintext.equals(plaintext))
      throw new Error("an object did not come back intact");
    // The code alone, on a payload of the ciphertext's length.
    const payload = randomBytes(sealed.value.manifest.cipherSize);
    const coded = await timed(() => encodeFragments(payload, K, N));
    const m = sealed.value.manifest;
    const missing = coded.value.fragments.map((f, j) => (j < N - K ? undefined : f));
    const rebuilt = await timed(() => decodeFragments(missing, K, N, m.fragmentSize, m.cipherSize));
    if (!rebuilt.value.equals(payload)) throw new Error("the codec did not rebuild the payload");
    if (i < WARMUP) continue;
    ns.seal += sealed.ns;
    ns.open += opened.ns;
    ns.openAllData += fast.ns;
    ns.encode += coded.ns;
    ns.decode += rebuilt.ns;
  }
  const bytes = SIZE * OBJECTS;
  return {
    "encode.mbPerSecond": mbPerSecond(bytes, ns.encode),
    "decode.mbPerSecond": mbPerSecond(bytes, ns.decode),
    "seal.mbPerSecond": mbPerSecond(bytes, ns.seal),
    "open.mbPerSecond": mbPerSecond(bytes, ns.open),
    "open.allData.mbPerSecond": mbPerSecond(bytes, ns.openAllData),
    "encode.objects": OBJECTS,
    "encode.objectBytes": SIZE,
    "encode.k": K,
    "encode.n": N,
    "machine.cores": cpus().length,
    "machine.load1.start": load1,
  };
}

async function main(): Promise<void> {
  const codec = await measureCodec();
  const networkLoad = round(loadavg()[0], 2);
  console.log(`load average at the network part's start: ${networkLoad}`);
  const network = await measureNetwork({ quick: QUICK });
  const results = {
    ...codec,
    ...network.results,
    "machine.load1.network": networkLoad,
    "machine.load1.end": round(loadavg()[0], 2),
  };
  if (QUICK) {
    console.table(results);
    for (const [key, note] of Object.entries(network.notes)) console.log(`${key}: ${note}`);
    return;
  }
  const json = join(ROOT, "bench", "storage.json");
  const doc = process.env.STORAGE_BENCH_DOC ?? join(ROOT, "docs", "storage.md");
  await writeBenchResults(json, doc, "storage-bench", results, TARGETS);
  // The methods as text beside the figures (the table shows numbers only).
  const written = { ...(JSON.parse(readFileSync(json, "utf8")) as Record<string, unknown>), ...network.notes };
  const sorted = Object.fromEntries(Object.entries(written).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(json, JSON.stringify(sorted, null, 2) + "\n");
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
