/**
 * Edge Storage on a real gateway role (scripts/lib/gatewayRole.ts: createGateway, its HTTP API, real host links)
 * with hosts that run the real fragment jobs over real FragmentStores (node/roles/host), and an owner that signs
 * requests as the protocol says (offchain/common/protocol/storageRequest.ts). For the gateway storage tests and
 * the storage benchmark (scripts/bench/storage.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Counter } from "prom-client";
import type { LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import type { GatewayConfig } from "../../node/context";
import { FragmentJobs } from "../../node/roles/host/fragmentJobs";
import { FragmentStore } from "../../node/roles/host/fragments";
import { HostJobs } from "../../node/roles/host/jobs";
import type { GatewayLink, JobHandler } from "../../node/roles/host/link";
import { WorkTracker } from "../../node/workTracker";
import {
  NO_OBJECT,
  STORAGE_OBJECT_TYPE,
  type StorageAction,
  encodeObjectUpload,
  signStorageRequest,
  storageListBody,
} from "../../offchain/common/protocol";
import { initTracing } from "../../offchain/common/tracing";
import { StorageKey } from "../../offchain/storage/keys";
import { type SealOptions, sealObject } from "../../offchain/storage/object";
import { type GatewayRole, startGatewayRole } from "./gatewayRole";

const CHAIN = 31337;
const silentLog = { info() {}, warn() {}, error() {}, debug() {}, child: () => silentLog } as never;
/** Host n's account (n: 1..255): its key is the byte n repeated. */
export const hostAccount = (n: number) => privateKeyToAccount(`0x${n.toString(16).padStart(2, "0").repeat(32)}`);

export interface StorageHost {
  account: LocalAccount;
  store: FragmentStore;
  link: GatewayLink;
}

export interface StorageNetwork {
  gateway: GatewayRole;
  hosts: StorageHost[];
  /** Links one more host (address from `n`) holding fragments in its own store. */
  addHost(n: number): Promise<StorageHost>;
  close(): Promise<void>;
}

export const storageKey = new StorageKey(Buffer.alloc(32, 7), "key-file");

/** A gateway role and `count` linked hosts (accounts 0x41, 0x42, ...), each with an 8 MiB fragment store. */
export async function startStorageNetwork(
  count: number,
  config: Partial<GatewayConfig> = {},
  budgetBytes = 8 << 20,
): Promise<StorageNetwork> {
  const gateway = await startGatewayRole({ key: `0x${"6a".repeat(32)}`, config });
  const root = mkdtempSync(join(tmpdir(), "storage-network-"));
  const hosts: StorageHost[] = [];
  const addHost = async (n: number) => {
    const account = hostAccount(n);
    const store = new FragmentStore({
      dir: join(root, `host-${n}`),
      budgetBytes,
      fsync: false,
      log: silentLog,
    });
    const link = await gateway.connectHost(account, fragmentHost(account, store), 16);
    const host = { account, store, link };
    hosts.push(host);
    return host;
  };
  for (let i = 0; i < count; i++) await addHost(0x41 + i);
  return {
    gateway,
    hosts,
    addHost,
    async close() {
      await gateway.close();
      await Promise.all(hosts.map((h) => h.store.close()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A host's job handler that runs only the real fragment jobs over `store` (no content delivery). */
export function fragmentHost(account: LocalAccount, store: FragmentStore): JobHandler {
  const jobs = new HostJobs(
    {
      signer: { account, chainId: CHAIN },
      log: silentLog,
      work: new WorkTracker(),
      serving: () => true,
      tracing: initTracing({ serviceName: "edge-host", env: {} }),
      metrics: { jobs: new Counter({ name: "j", help: "j", labelNames: ["outcome"] as const, registers: [] }) },
    },
    {
      ...{ cache: { serve: () => Promise.reject(new Error("no cdn here")) }, memoryBytes: 1 << 20, tallies: null },
      ...{ gateway: () => null, maxJobRounds: 1_000, fragments: new FragmentJobs(store, () => true) },
    },
  );
  return (req, res) => jobs.handle(req, res);
}

/** A signed request to the gateway's storage API: the fetch Response. */
export async function storageCall(
  gateway: GatewayRole,
  owner: LocalAccount,
  action: StorageAction,
  request: { objectId?: string; body?: Buffer; query?: string; timestamp?: bigint; headers?: Record<string, string> },
): Promise<Response> {
  const objectId = (request.objectId ?? NO_OBJECT) as `0x${string}`;
  const signed = await signStorageRequest(
    owner,
    CHAIN,
    { gateway: gateway.account.address, action, objectId, body: request.body ?? listBody(action, request.query) },
    request.timestamp,
  );
  const path = action === "list" ? `/storage/v1/objects${request.query ?? ""}` : `/storage/v1/objects/${objectId}`;
  const method = { put: "PUT", get: "GET", list: "GET", delete: "DELETE" }[action];
  return fetch(`${gateway.url}${path}`, {
    method,
    headers: {
      ...signed,
      ...(request.body ? { "content-type": STORAGE_OBJECT_TYPE } : {}),
      ...request.headers,
    },
    body: request.body,
  });
}

/** What a list request signs: its query's canonical form (storageListBody). */
function listBody(action: StorageAction, query = ""): Buffer | undefined {
  if (action !== "list") return undefined;
  const params = new URLSearchParams(query.replace(/^\?/, ""));
  const limit = params.get("limit");
  return storageListBody(params.get("after") ?? undefined, limit === null ? undefined : Number(limit));
}

/** An object sealed by `owner` and its upload frame. */
export async function sealedUpload(owner: LocalAccount, plaintext: Buffer, options: SealOptions = {}) {
  const sealed = await sealObject(storageKey, owner, CHAIN, plaintext, options);
  return { ...sealed, body: encodeObjectUpload(sealed.manifest, sealed.fragments) };
}
