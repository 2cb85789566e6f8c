/**
 * Edge Storage's network keys of issue 21 (`npm run bench:storage`, with scripts/bench/storage.ts), measured on a
 * real gateway role (createGateway, its HTTP API) and real hosts (fragment jobs over FragmentStores) linked over
 * HTTP/2 on loopback (scripts/lib/storageNetwork.ts). Everything runs in this one process on 127.0.0.1, the client,
 * the gateway and the hosts sharing one event loop, not the devnet's separate processes; stores do not fsync.
 *
 * - `put.2mb` / `get.2mb`: StorageClient's put and get of 2 MiB random objects against 6 hosts, the whole path
 *   (seal, sign, frame, HTTP, the gateway's checks and placement, 16 fragment puts over the links; and back: k
 *   fragment gets, the download frame, openObject). Each object is deleted after its get (not timed).
 * - `repair.seconds`: 100 objects on 6 hosts, one host's link leaves, and the time until the owner's listing
 *   shows every object with 16 fragments on linked hosts, the gateway routing 5 hosts and having rebuilt every
 *   fragment the evicted host held. It includes detection: the grace (`storageRepairGraceMs`) and up to one
 *   round interval (`storageRepairMs`) before the first round that sees the host gone.
 * - `durability`: 16 hosts, so each object's 16 fragments are on 16 distinct hosts (checked from the put's
 *   placement); per trial n - k = 6 of them are killed at random (seeded) and each object must open (openObject,
 *   the plaintext compared) from the fragments read out of the 10 surviving hosts' FragmentStores. A trial counts
 *   when every object opens. Then once for real: 6 hosts' links leave and every object is read through the
 *   gateway; and a control: with 7 killed no object may open (the check can fail).
 */
import { randomBytes } from "node:crypto";
import { privateKeyToAccount } from "viem/accounts";

import { openObject } from "../../offchain/storage/object";
import { StorageClient } from "../../offchain/storage/client";
import { type StorageNetwork, sealedUpload, startStorageNetwork, storageCall, storageKey } from "../lib/storageNetwork";
import { mulberry32 } from "./report";

const CHAIN = 31337;
const owner = privateKeyToAccount(`0x${"c5".repeat(32)}`);
const MiB = 1024 * 1024;

export interface NetworkOptions {
  quick: boolean;
}

export interface NetworkResults {
  results: Record<string, number>;
  /** Text kept beside the figures in the JSON (what was measured, how). */
  notes: Record<string, string>;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The nearest-rank percentile `p` (0..100) of `samples`. */
export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** `count` distinct items of `items`, chosen with `random` (a partial Fisher-Yates shuffle). */
function pick<T>(items: readonly T[], count: number, random: () => number): T[] {
  const copy = [...items];
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, count);
}

const clientOf = (net: StorageNetwork) =>
  new StorageClient({
    gatewayUrl: net.gateway.url,
    gateway: net.gateway.account.address,
    chainId: CHAIN,
    account: owner,
    key: storageKey,
  });

const msSince = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

/** put.2mb / get.2mb: the whole client path, one object at a time. */
async function measureLatency({ quick }: NetworkOptions): Promise<Record<string, number>> {
  const hosts = 6;
  const [warmup, iterations] = quick ? [2, 5] : [5, 30];
  const net = await startStorageNetwork(hosts, {}, 64 * MiB);
  const puts: number[] = [];
  const gets: number[] = [];
  try {
    const client = clientOf(net);
    for (let i = 0; i < warmup + iterations; i++) {
      const plaintext = randomBytes(2 * MiB);
      const putStart = process.hrtime.bigint();
      const { objectId } = await client.put(plaintext);
      const putMs = msSince(putStart);
      const getStart = process.hrtime.bigint();
      const back = await client.get(objectId);
      const getMs = msSince(getStart);
      if (!back.equals(plaintext)) throw new Error(`object ${objectId} did not come back intact`);
      await client.remove(objectId); // the hosts' stores stay small (not timed)
      if (i < warmup) continue;
      puts.push(putMs);
      gets.push(getMs);
    }
  } finally {
    await net.close();
  }
  return {
    "put.2mb.p50.ms": round(percentile(puts, 50)),
    "put.2mb.p99.ms": round(percentile(puts, 99)),
    "get.2mb.p50.ms": round(percentile(gets, 50)),
    "get.2mb.p99.ms": round(percentile(gets, 99)),
    "put.2mb.iterations": iterations,
    "put.2mb.warmup": warmup,
    "put.2mb.hosts": hosts,
  };
}

/** Polls `check` every `everyMs` until it holds; throws after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, everyMs: number, timeoutMs: number) {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(everyMs)) if (await check()) return;
  throw new Error(`timed out waiting for ${what}`);
}

interface RepairStatus {
  hosts: number;
  storage: { repair: { repaired: number; failed: number; unreadable: number } };
}

/** repair.seconds: one of 6 hosts evicted with 100 objects stored, until every object has 16 fragments again. */
async function measureRepair({ quick }: NetworkOptions): Promise<Record<string, number>> {
  const hosts = 6;
  const objects = quick ? 20 : 100;
  const size = 64 * 1024;
  const [graceMs, roundMs, pollMs] = [0, 100, 25];
  const net = await startStorageNetwork(hosts, { storageRepairGraceMs: graceMs, storageRepairMs: roundMs }, 64 * MiB);
  try {
    const client = clientOf(net);
    const stored = new Map<string, Buffer>();
    for (let i = 0; i < objects; i++) {
      const plaintext = randomBytes(size);
      stored.set((await client.put(plaintext)).objectId, plaintext);
    }
    const status = () => net.gateway.status() as unknown as RepairStatus;
    const victim = net.hosts[0];
    const held = victim.store.stats().fragments;
    const repairedBefore = status().storage.repair.repaired;
    const start = process.hrtime.bigint();
    await victim.link.leave();
    await until(
      "every object back to 16 fragments on linked hosts",
      async () => {
        if (status().hosts !== hosts - 1) return false; // the eviction not seen yet
        if (status().storage.repair.repaired - repairedBefore < held) return false;
        const { objects: listed } = await client.list(undefined, 1_000);
        return listed.length === objects && listed.every((o) => o.healthy === 16);
      },
      pollMs,
      120_000,
    );
    const seconds = msSince(start) / 1e3;
    let readable = 0;
    for (const [objectId, plaintext] of stored) if ((await client.get(objectId)).equals(plaintext)) readable++;
    const { repair } = status().storage;
    return {
      "repair.seconds": round(seconds, 2),
      "repair.objects": objects,
      "repair.objectBytes": size,
      "repair.hosts": hosts,
      "repair.graceMs": graceMs,
      "repair.roundMs": roundMs,
      "repair.pollMs": pollMs,
      "repair.fragmentsRebuilt": repair.repaired - repairedBefore,
      "repair.fragmentsOnEvictedHost": held,
      "repair.failedRepairs": repair.failed,
      "repair.readableAfter": readable / objects,
    };
  } finally {
    await net.close();
  }
}

interface DurableObject {
  objectId: string;
  plaintext: Buffer;
  manifest: Awaited<ReturnType<typeof sealedUpload>>["manifest"];
  /** Fragment index -> the host (lowercase address) the gateway placed it on. */
  placement: Map<number, string>;
}

/** Whether `object` opens to its plaintext from the fragments on hosts outside `killed`, read from their stores. */
async function opensWithout(net: StorageNetwork, object: DurableObject, killed: ReadonlySet<string>) {
  const stores = new Map(net.hosts.map((h) => [h.account.address.toLowerCase(), h.store]));
  const slots = await Promise.all(
    Array.from({ length: object.manifest.n }, async (_, index) => {
      const host = object.placement.get(index)!;
      if (killed.has(host)) return undefined;
      return (await stores.get(host)!.get(object.objectId, index)).data;
    }),
  );
  try {
    const opened = await openObject(storageKey, CHAIN, object.manifest, slots, { owner: owner.address });
    return opened.plaintext.equals(object.plaintext);
  } catch {
    return false;
  }
}

/** Stores `count` objects through the gateway, each with its manifest and placement. */
async function storeDurable(net: StorageNetwork, count: number, size: number): Promise<DurableObject[]> {
  const stored: DurableObject[] = [];
  for (let i = 0; i < count; i++) {
    const plaintext = randomBytes(size);
    const { manifest, body } = await sealedUpload(owner, plaintext);
    const put = await storageCall(net.gateway, owner, "put", { objectId: manifest.objectId, body });
    if (put.status !== 201) throw new Error(`put answered ${put.status}: ${await put.text()}`);
    const reply = (await put.json()) as { placement: Array<{ fragment: number; host: string }> };
    const placement = new Map(reply.placement.map((p) => [p.fragment, p.host.toLowerCase()]));
    if (new Set(placement.values()).size !== manifest.n)
      throw new Error(`object ${manifest.objectId} is on ${new Set(placement.values()).size} hosts, not ${manifest.n}`);
    stored.push({ objectId: manifest.objectId, plaintext, manifest, placement });
  }
  return stored;
}

/** durability: 1,000 trials of n - k of each object's hosts killed, every object read from the rest. */
async function measureDurability({ quick }: NetworkOptions): Promise<Record<string, number>> {
  const hosts = 16;
  const [count, size, trials, seed] = [10, 64 * 1024, quick ? 50 : 1_000, 21];
  const net = await startStorageNetwork(hosts);
  try {
    const stored = await storeDurable(net, count, size);
    const { k, n } = stored[0].manifest;
    const random = mulberry32(seed);
    let survived = 0;
    for (let trial = 0; trial < trials; trial++) {
      let all = true;
      for (const object of stored) {
        const killed = new Set(pick([...new Set(object.placement.values())], n - k, random));
        if (!(await opensWithout(net, object, killed))) all = false;
      }
      if (all) survived++;
    }
    // The control: one more host of each object killed, none may open.
    let openedPastLimit = 0;
    for (const object of stored) {
      const killed = new Set(pick([...new Set(object.placement.values())], n - k + 1, random));
      if (await opensWithout(net, object, killed)) openedPastLimit++;
    }
    // Once for real: n - k hosts' links leave (repair's grace is 60 s: nothing is rebuilt meanwhile).
    const victims = pick(net.hosts, n - k, random);
    await Promise.all(victims.map((h) => h.link.leave()));
    await until("the gateway to unlink the killed hosts", async () => net.gateway.status().hosts === hosts - (n - k), 10, 10_000); // prettier-ignore
    const client = clientOf(net);
    let readable = 0;
    for (const object of stored) if ((await client.get(object.objectId)).equals(object.plaintext)) readable++;
    return {
      durability: survived / trials,
      "durability.trials": trials,
      "durability.seed": seed,
      "durability.objects": count,
      "durability.objectBytes": size,
      "durability.hosts": hosts,
      "durability.killedPerTrial": n - k,
      "durability.linksLeft.readable": readable / count,
      "durability.control.killed": n - k + 1,
      "durability.control.readable": openedPastLimit / count,
    };
  } finally {
    await net.close();
  }
}

const NOTES: Record<string, string> = {
  "put.2mb.measured":
    "StorageClient.put then get of 2 MiB random objects (seal, sign, frame, HTTP/1.1 to the gateway, its checks, " +
    "placement and 16 fragment puts over HTTP/2 host links; k fragment gets, the frame, openObject), one at a " +
    "time, against a real gateway role and 6 real hosts in this one process on 127.0.0.1 (one event loop for " +
    "client, gateway and hosts; stores without fsync), not the devnet's separate processes",
  "repair.method":
    "6 hosts, 100 objects put; t0 before hosts[0].link.leave(); done when the gateway routes 5 hosts, its repair " +
    "stats count every fragment the evicted host held as rebuilt, and the owner's list shows healthy = 16 for " +
    "every object (polled every pollMs); includes detection: graceMs and up to one repair round interval",
  "durability.method":
    "16 hosts: each object's 16 fragments on 16 distinct hosts (checked from the put's placement). Per trial and " +
    "object, n - k = 6 of its hosts chosen at random (mulberry32, seed); the object must open with openObject " +
    "(plaintext compared) from the fragments read from the 10 surviving hosts' FragmentStores; a trial counts when " +
    "every object opens. Then once with 6 hosts' links really closed, every object read through the gateway " +
    "(linksLeft.readable); control: 7 killed, no object may open (control.readable = 0)",
};

export async function measureNetwork(options: NetworkOptions): Promise<NetworkResults> {
  const results = {
    ...(await measureLatency(options)),
    ...(await measureRepair(options)),
    ...(await measureDurability(options)),
  };
  return { results, notes: NOTES };
}
