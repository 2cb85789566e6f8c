/**
 * Edge Storage on the devnet (issue 21, D75; docs/storage.md), once the epochs' checks are done: customer A puts an
 * object through the gateway with the most linked hosts with StorageClient (offchain/storage/client.ts: sealed,
 * signed and checked on the devnet's side, a fresh storage key file in the run directory), gets it back and lists
 * it; then one host holding a fragment of it is stopped (its process ends), and the gateway rebuilds that fragment
 * on its third host (storageRepair.ts, --storage-repair-grace-ms and --storage-repair-ms in daemons.ts) until its
 * list shows every fragment healthy again; the object is got back once more, and billing's usage of A from the
 * step's period on carries exactly the step's successful requests as `storage` `requests`, and `byteHours` between
 * what the object's stored bytes accrued from the put to the check and from the put's start to the last read.
 *
 * k = 1 of n = 2 is a devnet-scale choice: placement puts at most max(1, n - k - 2) fragments of an object on one
 * host, so the default k = 10 of 16 (covered by the tests) needs 4 hosts at one gateway and 5 to repair, and a
 * devnet gateway has 3 at most (6 hosts over 2 gateways). k = 1 of 2 is two copies of the ciphertext (the codec's
 * one parity fragment of one data fragment is equal to it): 2 hosts, and a third to repair on. Fragments are at most
 * 1 MiB (the hosts' limit), so with k = 1 the object is 1,000,000 bytes: 2,000,032 stored bytes accrue a byte-hour
 * every 1.8 ms, and the step's seconds bill thousands.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";

import { type ListedObject, StorageClient } from "../../offchain/storage/client";
import { generateKeyFile, readKeyFile } from "../../offchain/storage/keys";
import { gatewayOf } from "./cdn";
import { CHAIN_ID, DevnetError, type StepLog, waitFor } from "./common";
import { type Node, STORAGE_REPAIR } from "./daemons";
import { type ViewCustomer, billingSession, getJson } from "./observe";
import type { Processes } from "./processes";

/** The object: the largest round size whose one data fragment (size + 16, GCM's tag) is within a host's 1 MiB. */
export const STORAGE_OBJECT_BYTES = 1_000_000;
const SEAL = { k: 1, n: 2 };
const MS_PER_HOUR = 3_600_000;

export interface StorageShown {
  gateway: string;
  objectId: string;
  storedBytes: number;
  /** The host stopped, the host the fragment was rebuilt on. */
  stopped: string;
  rebuiltOn: string;
  requests: { put: number; get: number; list: number };
  billed: { requests: bigint; byteHours: bigint };
}

interface Step {
  log: StepLog;
  nodes: Node[];
  gateway: Node;
  client: StorageClient;
  objectId: string;
  /** The step's successful requests, by kind: exactly what billing must show. */
  requests: { put: number; get: number; list: number };
}

const short = (id: string) => `${id.slice(0, 10)}…`;
const status = (node: Node) => getJson(`${node.url}/status`);

/** Runs the step (see the header); throws a DevnetError naming any broken promise. */
export async function showStorage(
  context: { dir: string; nodes: Node[]; billingUrl: string; customer: ViewCustomer; procs: Processes },
  log: StepLog,
): Promise<StorageShown> {
  const { dir, nodes, billingUrl, customer } = context;
  const gateway = await pickGateway(nodes);
  const keyFile = join(dir, "storage-customer-a.key");
  generateKeyFile(keyFile);
  const client = new StorageClient({
    gatewayUrl: gateway.node.url,
    gateway: gateway.node.address as `0x${string}`,
    chainId: CHAIN_ID,
    account: customer.account,
    key: readKeyFile(keyFile),
    seal: SEAL,
  });
  customer.session ??= await billingSession(billingUrl, customer.account);
  const base = `${billingUrl}/customers/${customer.account.address}`;
  const firstPeriod = Number((await getJson(`${base}/usage`, customer.session)).period);

  const bytes = randomBytes(STORAGE_OBJECT_BYTES);
  const putStart = Date.now();
  const put = await client.put(bytes).catch(failed(`customer A's put through ${gateway.node.name}`));
  const putEnd = Date.now();
  const step: Step = { log, nodes, gateway: gateway.node, client, objectId: put.objectId, requests: { put: 1, get: 0, list: 0 } }; // prettier-ignore
  const holders = put.placement.map((p) => nameOf(nodes, p.host));
  if (put.placement.length !== SEAL.n || new Set(holders).size !== SEAL.n)
    throw new DevnetError(`the object's ${SEAL.n} fragments were placed on ${holders.join(", ")}: not ${SEAL.n} hosts`);
  log.step(
    `Edge Storage: customer A put a ${STORAGE_OBJECT_BYTES}-byte object through ${gateway.node.name} ` +
      `(${gateway.hosts} linked hosts) as k = ${SEAL.k} of n = ${SEAL.n} (two copies of the ciphertext: a devnet-` +
      `scale choice, the tests cover k = 10 of 16) in ${putEnd - putStart} ms: ${short(put.objectId)} ` +
      `stored as ${put.storedBytes} bytes, fragment 0 on ${holders[0]}, fragment 1 on ${holders[1]}`,
  );
  await getBack(step, bytes, "got it back");
  const listed = await listObject(step);
  if (listed.healthy !== SEAL.n || listed.fragments !== SEAL.n || listed.size !== STORAGE_OBJECT_BYTES)
    throw new DevnetError(`the gateway listed the object as ${JSON.stringify(listed)}`);
  log.step(
    `Edge Storage: ${gateway.node.name} lists customer A's ${short(put.objectId)}: ${listed.size} bytes, ` +
      `${listed.storedBytes} stored, ${listed.healthy} of ${listed.fragments} fragments healthy`,
  );
  const rebuiltOn = await showRepair(step, holders, context.procs);
  await getBack(step, bytes, "got it back after the repair");
  const billed = await checkBilling(step, { billingUrl, customer, firstPeriod }, { putStart, putEnd, storedBytes: put.storedBytes }); // prettier-ignore
  return {
    gateway: gateway.node.name,
    objectId: put.objectId,
    storedBytes: put.storedBytes,
    stopped: holders[0],
    rebuiltOn,
    requests: step.requests,
    billed,
  };
}

/** A DevnetError for a request that failed, with the client's reason. */
const failed = (what: string) => (error: Error) => {
  throw new DevnetError(`Edge Storage: ${what} failed: ${error.message}`);
};

const nameOf = (nodes: Node[], address: string) =>
  nodes.find((n) => n.address.toLowerCase() === address.toLowerCase())?.name ?? address;

/** The gateway with the most linked hosts (its /status): it must have 3, two for the object and one to repair on. */
async function pickGateway(nodes: Node[]): Promise<{ node: Node; hosts: number }> {
  let best: { node: Node; hosts: number } | undefined;
  for (const node of nodes.filter((n) => n.role === "gateway")) {
    const hosts = (await status(node)).gateway.hosts as number;
    if (!best || hosts > best.hosts) best = { node, hosts };
  }
  if (!best || best.hosts < SEAL.n + 1)
    throw new DevnetError(
      `Edge Storage needs a gateway with ${SEAL.n + 1} linked hosts (${SEAL.n} for an object, one to repair on); ` +
        `the most any has is ${best?.hosts ?? 0} (run with --hosts 6 or more)`,
    );
  return best;
}

async function getBack(step: Step, bytes: Buffer, what: string): Promise<void> {
  const started = Date.now();
  const got = await step.client.get(step.objectId).catch(failed(`the get of ${short(step.objectId)}`));
  step.requests.get += 1;
  if (!got.equals(bytes))
    throw new DevnetError(`Edge Storage: the get of ${short(step.objectId)} returned other bytes (${got.length})`);
  step.log.step(
    `Edge Storage: ${what} from ${step.gateway.name} in ${Date.now() - started} ms: ${got.length} bytes, ` +
      "equal to those put (decrypted and checked against the owner-signed manifest on the devnet's side)",
  );
}

/** The object as the gateway's list shows it to its owner (each list a request, counted). */
async function listObject(step: Step): Promise<ListedObject> {
  const page = await step.client.list().catch(failed("customer A's list"));
  step.requests.list += 1;
  const listed = page.objects.find((o) => o.objectId === step.objectId);
  if (!listed || page.objects.length !== 1)
    throw new DevnetError(`customer A's list at ${step.gateway.name} shows ${page.objects.length} objects, not its 1`);
  return listed;
}

/**
 * Stops the host holding fragment 0 and waits until the gateway unlinked it (its list shows 1 healthy fragment),
 * then until the gateway rebuilt the fragment on another of its hosts (the list shows both healthy again).
 * Returns the host it was rebuilt on.
 */
async function showRepair(step: Step, holders: string[], procs: Processes): Promise<string> {
  const { gateway, log } = step;
  const victim = holders[0];
  const linkedBefore = (await status(gateway)).gateway.hosts as number;
  const repairedBefore = (await status(gateway)).gateway.storage.repair.repaired as number;
  const stoppedAt = Date.now();
  await stopProcess(procs, victim);
  await waitFor(
    `${gateway.name} to unlink ${victim}`,
    async () => ((await status(gateway)).gateway.hosts as number) === linkedBefore - 1,
    30_000,
  );
  const unlinkedMs = Date.now() - stoppedAt;
  const during = await listObject(step);
  if (during.healthy !== SEAL.n - 1)
    throw new DevnetError(
      `with ${victim} unlinked (${unlinkedMs} ms after its stop) ${gateway.name}'s list shows ${during.healthy} of ` +
        `${SEAL.n} fragments healthy, not ${SEAL.n - 1} (repair waits ${STORAGE_REPAIR.graceMs} ms)`,
    );
  log.step(
    `Edge Storage repair: ${victim} (holding fragment 0) stopped; ${gateway.name} unlinked it after ${unlinkedMs} ms ` +
      `and its list showed ${during.healthy} of ${SEAL.n} fragments healthy`,
  );
  await waitFor(
    `${gateway.name} to rebuild fragment 0 of ${short(step.objectId)} (its list showing ${SEAL.n} healthy)`,
    async () => (await listObject(step)).healthy === SEAL.n,
    30_000 + STORAGE_REPAIR.graceMs,
  );
  const repairedMs = Date.now() - stoppedAt;
  const repaired = ((await status(gateway)).gateway.storage.repair.repaired as number) - repairedBefore;
  const peers = step.nodes.filter(
    (n) => n.role === "host" && !holders.includes(n.name) && gatewayOf(step.nodes, n.name) === gateway.name,
  );
  let rebuiltOn: { name: string; bytes: number } | undefined;
  for (const peer of peers) {
    const stored = (await status(peer)).host.storage as { fragments: number; bytes: number };
    if (stored.fragments > 0) rebuiltOn = { name: peer.name, bytes: stored.bytes };
  }
  if (repaired !== 1 || !rebuiltOn)
    throw new DevnetError(
      `${gateway.name} counts ${repaired} fragments repaired, and ${rebuiltOn?.name ?? "none"} of its other hosts ` +
        `(${peers.map((p) => p.name).join(", ")}) holds one: expected 1, on one of them`,
    );
  log.step(
    `Edge Storage repair: ${gateway.name} rebuilt fragment 0 on ${rebuiltOn.name} (now holding ${rebuiltOn.bytes} ` +
      `bytes) ${repairedMs} ms after the stop (grace ${STORAGE_REPAIR.graceMs} ms, a round every ` +
      `${STORAGE_REPAIR.roundMs} ms): its list shows ${SEAL.n} of ${SEAL.n} fragments healthy again`,
  );
  return rebuiltOn.name;
}

/** Ends one child process on purpose: it no longer fails the devnet when it exits. */
async function stopProcess(procs: Processes, name: string): Promise<void> {
  const entry = procs.children.find((c) => c.name === name);
  if (!entry) throw new DevnetError(`no process ${name} to stop`);
  const { child } = entry;
  child.removeAllListeners("exit"); // Processes' own: an exit is a failure
  if (child.exitCode !== null || child.signalCode !== null) throw new DevnetError(`${name} had already exited`);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

interface Line {
  service: string;
  metric: string;
  quantity: string;
  amount: string;
}

interface Billed {
  requests: bigint;
  byteHours: bigint;
  amount: bigint;
  periods: number[];
}

/**
 * Customer A's `storage` lines from `firstPeriod` to the current one: the bills of the periods closed since (a
 * closed period without A's bill counts zero) and the current period's usage so far. A period that ended but is
 * not closed yet throws (not yet: its usage is in neither).
 */
async function billedStorage(base: string, billingUrl: string, session: Record<string, string>, firstPeriod: number) {
  const draft = await getJson(`${base}/usage`, session);
  const current = Number(draft.period);
  const billed: Billed = { requests: 0n, byteHours: 0n, amount: 0n, periods: [] };
  const add = (lines: Line[]) => {
    for (const line of lines.filter((l) => l.service === "storage")) {
      if (line.metric === "requests") billed.requests += BigInt(line.quantity);
      if (line.metric === "byteHours") billed.byteHours += BigInt(line.quantity);
      billed.amount += BigInt(line.amount);
    }
  };
  for (let period = firstPeriod; period < current; period++) {
    await getJson(`${billingUrl}/periods/${period}`); // throws until it is closed
    billed.periods.push(period);
    const response = await fetch(`${base}/bills/${period}`, { headers: session, signal: AbortSignal.timeout(5_000) });
    if (response.status === 404) continue;
    if (!response.ok) throw new Error(`bill ${period}: ${response.status}`);
    add(((await response.json()) as { bill: { lines: Line[] } }).bill.lines);
  }
  billed.periods.push(current);
  add(draft.draft.lines as Line[]);
  return billed;
}

/**
 * Billing carries exactly the step's successful storage requests, and byte-hours of the object's stored bytes
 * at least from the put's end to the check's start (accrued on the gateway's usage loop: waited for) and at most
 * from the put's start to the last read.
 */
async function checkBilling(
  step: Step,
  billing: { billingUrl: string; customer: ViewCustomer; firstPeriod: number },
  object: { putStart: number; putEnd: number; storedBytes: number },
): Promise<{ requests: bigint; byteHours: bigint }> {
  const { billingUrl, customer, firstPeriod } = billing;
  const base = `${billingUrl}/customers/${customer.account.address}`;
  const { put, get, list } = step.requests;
  const requests = BigInt(put + get + list);
  const checkFrom = Date.now();
  const atLeast = BigInt(Math.floor((object.storedBytes * (checkFrom - object.putEnd)) / MS_PER_HOUR));
  const billed = await waitFor(
    `billing to hold customer A's ${requests} storage requests and at least ${atLeast} byte-hours`,
    async () => {
      const now = await billedStorage(base, billingUrl, customer.session!, firstPeriod);
      return now.requests >= requests && now.byteHours >= atLeast && now;
    },
    60_000,
  );
  const readAt = Date.now();
  const atMost = BigInt(Math.floor((object.storedBytes * (readAt - object.putStart)) / MS_PER_HOUR));
  if (billed.requests !== requests)
    throw new DevnetError(
      `billing holds ${billed.requests} storage requests of customer A, but the step's successful requests were ` +
        `${requests} (${put} put, ${get} gets, ${list} lists)`,
    );
  if (billed.byteHours > atMost)
    throw new DevnetError(
      `billing holds ${billed.byteHours} storage byte-hours of customer A, more than ${object.storedBytes} bytes ` +
        `for the ${readAt - object.putStart} ms since the put started (${atMost})`,
    );
  const open = billed.periods.at(-1)!;
  const periods =
    billed.periods.length === 1
      ? `period ${open} (still open)`
      : `periods ${billed.periods.slice(0, -1).join(", ")} (closed since) and ${open} (open)`;
  step.log.step(
    `Edge Storage billing: customer A's storage lines in billing ${periods}: requests ` +
      `${billed.requests}, exactly the step's successful requests (${put} put, ${get} gets, ${list} lists); ` +
      `byteHours ${billed.byteHours} (${object.storedBytes} bytes stored: at least ${atLeast}, ` +
      `${((checkFrom - object.putEnd) / 1000).toFixed(1)} s from the put to the check, at most ${atMost}); ` +
      `${(Number(billed.amount) / 1e18).toFixed(6)} tokens`,
  );
  return { requests: billed.requests, byteHours: billed.byteHours };
}
