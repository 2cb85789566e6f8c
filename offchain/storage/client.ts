/**
 * The owner's network client of Edge Storage (issue 21, docs/storage.md "The API"): puts, gets, lists and deletes
 * objects at one gateway, every request signed as a `StorageRequest` (offchain/common/protocol/storageRequest.ts)
 * by the owner's account for that gateway, action, object id and sha256 of the body, with a fresh nonce.
 *
 *   PUT    <gateway>/storage/v1/objects/<id>   body: the upload frame   201 (200: already stored) {objectId, storedBytes, placement}
 *   GET    <gateway>/storage/v1/objects/<id>                           200 the download frame (STORAGE_OBJECT_TYPE)
 *   GET    <gateway>/storage/v1/objects?after=<id>&limit=<n>          200 {objects: [...], next?}
 *   DELETE <gateway>/storage/v1/objects/<id>                           200 {objectId, deleted: true}
 *
 * Objects are sealed and opened here (object.ts): the gateway and hosts see ciphertext fragments only; the storage
 * key never leaves this process. A get trusts nothing the gateway says: the manifest must be the object asked, the
 * owner's, signed by the owner, and every fragment must match its signed sha256 (openObject).
 *
 * Every request has a timeout (the answer's body included) and every answer a size bound, refused as soon as it
 * is passed, without reading the rest. A gateway's refusal (4xx/5xx with {code, message} or {code, error}) is
 * thrown as an EdgeError with the gateway's status and code (STORAGE_GATEWAY_REFUSED without a usable code);
 * no answer is STORAGE_GATEWAY_UNREACHABLE, an answer outside this contract STORAGE_GATEWAY_FAILED.
 */
import { type Static, type TSchema, Type } from "@fastify/type-provider-typebox";
import { Value } from "typebox/value";
import { type Address, type Hex, type LocalAccount, isAddress } from "viem";

import { EdgeError, messageOf } from "../common/errors";
import { AddressSchema } from "../common/protocol/primitives";
import { STORAGE_MAX_FRAGMENTS, StoragePlacementSchema } from "../common/protocol/storageManifest";
import {
  NO_OBJECT,
  STORAGE_OBJECT_TYPE,
  type StorageAction,
  StorageFrameError,
  decodeObjectDownload,
  encodeObjectUpload,
  signStorageRequest,
  storageListBody,
} from "../common/protocol/storageRequest";
import { STORAGE_GATEWAY_REFUSED, storageError } from "./errors";
import type { StorageKey } from "./keys";
import { type SealOptions, openObject, sealObject } from "./object";

/** The largest download frame read (2 MiB objects give about 3.3 MiB with all 16 fragments). */
export const DEFAULT_MAX_REPLY_BYTES = 8 * 1024 * 1024;
/** The largest JSON answer read (a listing, an error). */
export const MAX_JSON_REPLY_BYTES = 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 30_000;
const OBJECT_ID = /^0x[0-9a-f]{64}$/;
const ERROR_CODE = /^[A-Z][A-Z0-9_]{1,63}$/;

const PlacementSchema = Type.Array(StoragePlacementSchema, { maxItems: STORAGE_MAX_FRAGMENTS });
const PutReplySchema = Type.Object({
  objectId: Type.String(),
  storedBytes: Type.Integer({ minimum: 0 }),
  placement: PlacementSchema,
});
const ListedObjectSchema = Type.Object({
  objectId: Type.String({ pattern: OBJECT_ID.source }),
  size: Type.Integer({ minimum: 0 }),
  storedBytes: Type.Integer({ minimum: 0 }),
  createdAt: Type.Integer({ minimum: 0, maximum: 8.64e15 }),
  fragments: Type.Integer({ minimum: 0 }),
  healthy: Type.Integer({ minimum: 0 }),
});
const ListReplySchema = Type.Object({
  objects: Type.Array(ListedObjectSchema),
  next: Type.Optional(Type.String({ pattern: OBJECT_ID.source })),
});
const DeleteReplySchema = Type.Object({ objectId: Type.String(), deleted: Type.Literal(true) });
const GatewayStatusSchema = Type.Object({
  device: AddressSchema,
  role: Type.String({ pattern: "^[a-z][a-z0-9-]{0,31}$" }),
  chainId: Type.Integer({ minimum: 1 }),
});

export type PlacedFragment = Static<typeof PlacementSchema>[number];
export type ListedObject = Static<typeof ListedObjectSchema> & { objectId: Hex };
export interface ListPage {
  objects: ListedObject[];
  /** The `after` of the next page; absent on the last. */
  next?: Hex;
}
export interface PutResult {
  objectId: Hex;
  size: number;
  storedBytes: number;
  placement: PlacedFragment[];
}

export interface StorageClientOptions {
  /** The gateway's base URL (http or https). */
  gatewayUrl: string;
  /** The gateway's device address: requests are signed for it alone. */
  gateway: Address;
  chainId: number;
  /** The owner: signs requests and manifests. */
  account: Pick<LocalAccount, "address" | "signTypedData">;
  /** Encrypts and decrypts (put, get); never sent. Listing and deleting need none. */
  key?: StorageKey;
  fetch?: typeof fetch;
  /** Per request, the whole answer included (default 30 s). */
  timeoutMs?: number;
  /** The largest download frame accepted (default 8 MiB). */
  maxReplyBytes?: number;
  /** k and n of new objects (default 10 of 16). */
  seal?: Pick<SealOptions, "k" | "n">;
}

/** The base URL without a trailing slash; a TypeError for anything but http(s). */
export function gatewayBase(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`the gateway URL "${url}" is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new TypeError(`the gateway URL "${url}" is not http or https`);
  return parsed.href.replace(/\/+$/, "");
}

/** The object id in its one spelling (0x and 64 lowercase hex digits); a TypeError for anything else. */
export function objectIdOf(text: string): Hex {
  const id = text.toLowerCase();
  if (!OBJECT_ID.test(id) || !text.startsWith("0x"))
    throw new TypeError(`"${text}" is not an object id (0x and 64 hex digits)`);
  return id as Hex;
}

/** Text from the gateway made safe to print: no control characters, at most 300 characters. */
const printable = (text: string): string => {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ");
  return clean.length > 300 ? `${clean.slice(0, 300)}...` : clean;
};

interface Exchange {
  what: string;
  fetch: typeof fetch;
  timeoutMs: number;
}

/** Runs `run` (one fetch and the reading of its answer), turning no answer into STORAGE_GATEWAY_UNREACHABLE. */
async function exchange<T>(x: Exchange, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(x.timeoutMs);
  try {
    return await run(signal);
  } catch (error) {
    if (error instanceof EdgeError) throw error;
    const why = signal.aborted ? `no complete answer within ${x.timeoutMs} ms` : messageOf(error);
    const cause = (error as { cause?: unknown }).cause;
    const detail = !signal.aborted && cause instanceof Error ? ` (${cause.message})` : "";
    throw storageError("STORAGE_GATEWAY_UNREACHABLE", `${x.what}: ${printable(why + detail)}`, { cause: error });
  }
}

const failed = (what: string, why: string, cause?: unknown) =>
  storageError("STORAGE_GATEWAY_FAILED", `${what}: ${why}`, cause === undefined ? {} : { cause });

/** The answer's body, at most `limit` bytes: refused from its content-length, or as soon as it passes the limit. */
export async function readBounded(response: Response, limit: number, what: string): Promise<Buffer> {
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw failed(what, `the answer is ${declared} bytes, over the ${limit} accepted`);
  }
  if (response.body === null) return Buffer.alloc(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw failed(what, `the answer passed the ${limit} bytes accepted; the rest was not read`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

async function readJson(response: Response, what: string): Promise<unknown> {
  const bytes = await readBounded(response, MAX_JSON_REPLY_BYTES, what);
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw failed(what, `the answer (${response.status}) is not JSON`, error);
  }
}

/** The gateway's refusal as an EdgeError with its status, code and message. */
async function refusal(response: Response, what: string): Promise<EdgeError> {
  let body: { code?: unknown; message?: unknown; error?: unknown } = {};
  try {
    body = ((await readJson(response, what)) ?? {}) as typeof body;
  } catch {
    // No JSON: the status alone says it.
  }
  const code = typeof body.code === "string" && ERROR_CODE.test(body.code) ? body.code : STORAGE_GATEWAY_REFUSED;
  const text = typeof body.message === "string" ? body.message : typeof body.error === "string" ? body.error : "";
  const message = `${what}: the gateway answered ${response.status}${text ? `: ${printable(text)}` : ""}`;
  return new EdgeError(code, message, { status: response.status, details: { gatewayStatus: response.status } });
}

/** What the answer's JSON must be, checked against `schema`. */
async function expectJson<S extends TSchema>(
  response: Response,
  statuses: number[],
  schema: S,
  what: string,
): Promise<Static<S>> {
  if (response.status >= 400 && response.status <= 599) throw await refusal(response, what);
  if (!statuses.includes(response.status)) {
    await response.body?.cancel().catch(() => undefined);
    throw failed(what, `the gateway answered ${response.status}, not ${statuses.join(" or ")}`);
  }
  const body = await readJson(response, what);
  if (!Value.Check(schema, body)) throw failed(what, "the answer is not of the API's shape");
  return body as Static<S>;
}

/** A download's frame: a 200 of STORAGE_OBJECT_TYPE, at most `limit` bytes. */
async function readFrame(response: Response, limit: number, what: string): Promise<Buffer> {
  if (response.status >= 400 && response.status <= 599) throw await refusal(response, what);
  const type = response.headers.get("content-type") ?? "";
  const problem =
    response.status !== 200
      ? `the gateway answered ${response.status}, not 200`
      : type.split(";")[0].trim().toLowerCase() !== STORAGE_OBJECT_TYPE
        ? `the answer is ${printable(type) || "untyped"}, not ${STORAGE_OBJECT_TYPE}`
        : undefined;
  if (problem !== undefined) {
    await response.body?.cancel().catch(() => undefined);
    throw failed(what, problem);
  }
  return readBounded(response, limit, what);
}

/** The gateway's device address, role and chain from its `/status` (when the caller was not told the address). */
export async function fetchGatewayStatus(
  gatewayUrl: string,
  options: { fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<{ device: Address; role: string; chainId: number }> {
  const base = gatewayBase(gatewayUrl);
  const x = {
    what: `GET ${base}/status`,
    fetch: options.fetch ?? fetch,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  };
  const status = await exchange(x, async (signal) => {
    const response = await x.fetch(`${base}/status`, { signal, redirect: "manual" });
    return expectJson(response, [200], GatewayStatusSchema, x.what);
  });
  return { device: status.device as Address, role: status.role, chainId: status.chainId };
}

/** One owner's client of one gateway's storage API. */
export class StorageClient {
  readonly #key: StorageKey | undefined;
  readonly #fetch: typeof fetch;
  readonly #base: string;
  readonly gateway: Address;
  readonly chainId: number;
  readonly account: Pick<LocalAccount, "address" | "signTypedData">;
  readonly timeoutMs: number;
  readonly maxReplyBytes: number;
  readonly #seal: Pick<SealOptions, "k" | "n">;

  constructor(options: StorageClientOptions) {
    this.#base = `${gatewayBase(options.gatewayUrl)}/storage/v1/objects`;
    if (!isAddress(options.gateway, { strict: false })) throw new TypeError("the gateway's device address is not one");
    this.gateway = options.gateway;
    this.chainId = options.chainId;
    this.account = options.account;
    this.#key = options.key;
    this.#fetch = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
    this.#seal = options.seal ?? {};
  }

  get #storageKey(): StorageKey {
    if (this.#key === undefined) throw new TypeError("a storage key is needed to put or get objects");
    return this.#key;
  }

  /** One signed request; `read` reads its answer within the same timeout. */
  async #request<T>(
    action: StorageAction,
    request: { method: string; objectId?: Hex; query?: string; body?: Buffer; signedBody?: Buffer; accept?: string },
    read: (response: Response, what: string) => Promise<T>,
  ): Promise<T> {
    const path = request.objectId === undefined ? this.#base : `${this.#base}/${request.objectId}`;
    const url = `${path}${request.query ?? ""}`;
    const what = request.objectId === undefined ? action : `${action} ${request.objectId}`;
    const signed = await signStorageRequest(this.account, this.chainId, {
      gateway: this.gateway,
      action,
      objectId: request.objectId ?? NO_OBJECT,
      body: request.body ?? request.signedBody,
    });
    const headers: Record<string, string> = { ...signed };
    if (request.body !== undefined) headers["content-type"] = STORAGE_OBJECT_TYPE;
    headers.accept = request.accept ?? "application/json";
    return exchange({ what, fetch: this.#fetch, timeoutMs: this.timeoutMs }, async (signal) => {
      const response = await this.#fetch(url, {
        method: request.method,
        headers,
        body: request.body,
        signal,
        redirect: "manual",
      });
      return read(response, what);
    });
  }

  /** Seals `bytes` as a new object of the account and stores it through the gateway. */
  async put(bytes: Uint8Array): Promise<PutResult> {
    const { manifest, fragments } = await sealObject(this.#storageKey, this.account, this.chainId, bytes, this.#seal);
    const objectId = manifest.objectId as Hex;
    const body = encodeObjectUpload(manifest, fragments);
    const reply = await this.#request("put", { method: "PUT", objectId, body }, (response, what) =>
      expectJson(response, [200, 201], PutReplySchema, what),
    );
    if (reply.objectId.toLowerCase() !== objectId)
      throw failed(`put ${objectId}`, `the gateway answered for another object, ${printable(reply.objectId)}`);
    return { objectId, size: manifest.size, storedBytes: reply.storedBytes, placement: reply.placement };
  }

  /** The plaintext of the account's object `objectId`, rebuilt and checked here from the fragments the gateway sends. */
  async get(objectId: string): Promise<Buffer> {
    const id = objectIdOf(objectId);
    const frame = await this.#request(
      "get",
      { method: "GET", objectId: id, accept: STORAGE_OBJECT_TYPE },
      (response, what) => readFrame(response, this.maxReplyBytes, what),
    );
    let framed;
    try {
      framed = decodeObjectDownload(frame);
    } catch (error) {
      if (error instanceof StorageFrameError) throw failed(`get ${id}`, `malformed download: ${error.message}`, error);
      throw error;
    }
    const { manifest, fragments } = framed;
    if (manifest.objectId !== id)
      throw storageError(
        "STORAGE_MANIFEST_INVALID",
        `get ${id}: the gateway sent the manifest of object ${manifest.objectId}`,
      );
    if (manifest.owner.toLowerCase() !== this.account.address.toLowerCase())
      throw storageError(
        "STORAGE_MANIFEST_INVALID",
        `get ${id}: the object is ${manifest.owner}'s, not ${this.account.address}'s`,
      );
    const slots = Array.from({ length: manifest.n }, (_, i) => fragments.get(i));
    const { plaintext } = await openObject(this.#storageKey, this.chainId, manifest, slots, {
      owner: this.account.address,
    });
    return plaintext;
  }

  /** One page of the account's objects, by id, after `after` (exclusive). */
  async list(after?: string, limit?: number): Promise<ListPage> {
    const params = new URLSearchParams();
    if (after !== undefined) params.set("after", objectIdOf(after));
    if (limit !== undefined) {
      if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError(`limit ${limit} is not a positive integer`);
      params.set("limit", String(limit));
    }
    const query = params.toString() ? `?${params.toString()}` : "";
    const signedBody = storageListBody(params.get("after") ?? undefined, limit);
    const reply = await this.#request("list", { method: "GET", query, signedBody }, (response, what) =>
      expectJson(response, [200], ListReplySchema, what),
    );
    const objects = reply.objects as ListedObject[];
    return reply.next === undefined ? { objects } : { objects, next: reply.next as Hex };
  }

  /** Deletes the account's object `objectId`. */
  async remove(objectId: string): Promise<{ objectId: Hex; deleted: true }> {
    const id = objectIdOf(objectId);
    const reply = await this.#request("delete", { method: "DELETE", objectId: id }, (response, what) =>
      expectJson(response, [200], DeleteReplySchema, what),
    );
    if (reply.objectId.toLowerCase() !== id)
      throw failed(`delete ${id}`, `the gateway answered for another object, ${printable(reply.objectId)}`);
    return { objectId: id, deleted: true };
  }
}
