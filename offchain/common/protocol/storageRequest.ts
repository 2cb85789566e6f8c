/**
 * Edge Storage's API at a gateway (issue 21, D75, docs/storage.md "The API"): how an owner's requests are signed
 * and how objects travel.
 *
 * Every request carries the owner's EIP-712 `StorageRequest` signature (eip712.ts) over the owner, this gateway,
 * the action, the object id (zero for `list`), sha256 of the raw body (a `list`'s canonical query:
 * storageListBody), 32 random bytes and a timestamp (unix seconds), in four headers. The gateway checks it before reading anything else and keys its replay guard on the
 * signed digest, so a captured request cannot be sent again (to this gateway or, naming another, to any other).
 *
 * Objects travel framed, in both directions (no JSON around megabytes, no base64):
 * - upload (PUT body): u32 BE manifest length, the manifest's JSON, then all n fragments of `fragmentSize` bytes
 *   in index order;
 * - download (GET reply): u32 BE manifest length, the manifest's JSON (with its current placement), u8 count, then
 *   `count` times (u8 index, `fragmentSize` bytes).
 * The decoders bound everything by the manifest's own sizes and refuse trailing or missing bytes; they do not
 * verify the manifest's signature or the fragments' hashes (the gateway and the client do).
 */
import { createHash, randomBytes } from "node:crypto";

import { Type, type Static } from "@fastify/type-provider-typebox";
import { type Address, type Hex, type LocalAccount, getAddress } from "viem";

import { type SignatureCheck, checkSignature, signMessage } from "./eip712";
import { AddressSchema, SignatureSchema, unixSeconds } from "./primitives";
import { STORAGE_MAX_FRAGMENTS, type StorageManifest, storageManifestProblem } from "./storageManifest";

export const STORAGE_ACTIONS = ["put", "get", "list", "delete"] as const;
export type StorageAction = (typeof STORAGE_ACTIONS)[number];

/** The object id signed by requests about no one object (`list`). */
export const NO_OBJECT: Hex = `0x${"00".repeat(32)}`;
/** A manifest's JSON is at most this long in a frame (16 hashes and the rest take about 1.6 KiB). */
export const STORAGE_MAX_MANIFEST_BYTES = 16 * 1024;
/** The content type of framed objects. */
export const STORAGE_OBJECT_TYPE = "application/vnd.edge.storage-object";

export const StorageRequestHeadersSchema = Type.Object({
  "x-edge-owner": AddressSchema,
  "x-edge-timestamp": Type.String({ pattern: "^\\d{1,12}$" }),
  "x-edge-nonce": Type.String({ pattern: "^0x[0-9a-fA-F]{64}$" }),
  "x-edge-signature": SignatureSchema,
});
export type StorageRequestHeaders = Static<typeof StorageRequestHeadersSchema>;

/** sha256 of a request body, as signed (`0x` hex). */
export const storageBodyHash = (body: Uint8Array = new Uint8Array(0)): Hex =>
  `0x${createHash("sha256").update(body).digest("hex")}`;

/**
 * What a `list` request signs as its body (it sends none): its query, canonical (`after` lowercase, `limit` in
 * decimal, each empty when absent), so a captured listing cannot be replayed with another page or size.
 */
export const storageListBody = (after?: string, limit?: number): Buffer =>
  Buffer.from(`after=${after?.toLowerCase() ?? ""}&limit=${limit ?? ""}`, "utf8");

/** Signs one request: the headers to send with it. */
export async function signStorageRequest(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  chainId: number,
  request: { gateway: Address; action: StorageAction; objectId?: Hex; body?: Uint8Array },
  timestamp = unixSeconds(),
  nonce: Hex = `0x${randomBytes(32).toString("hex")}`,
): Promise<StorageRequestHeaders> {
  const signature = await signMessage(account, chainId, "StorageRequest", {
    owner: account.address,
    gateway: request.gateway,
    action: request.action,
    objectId: (request.objectId ?? NO_OBJECT).toLowerCase() as Hex,
    bodyHash: storageBodyHash(request.body),
    nonce: nonce.toLowerCase() as Hex,
    timestamp,
  });
  return {
    "x-edge-owner": account.address,
    "x-edge-timestamp": timestamp.toString(),
    "x-edge-nonce": nonce,
    "x-edge-signature": signature,
  };
}

/**
 * Whether the request is signed, canonically, by the owner its headers name for this gateway, action, object and
 * body: the signed digest (the replay key: a re-encoded signature or re-spelled header is the same request).
 * The headers must have passed StorageRequestHeadersSchema (an address, a decimal timestamp): others throw.
 */
export function checkStorageRequest(
  chainId: number,
  gateway: Address,
  headers: StorageRequestHeaders,
  request: { action: StorageAction; objectId?: Hex; body?: Uint8Array },
): Promise<SignatureCheck> {
  const owner = getAddress(headers["x-edge-owner"]);
  const message = {
    owner,
    gateway,
    action: request.action,
    objectId: (request.objectId ?? NO_OBJECT).toLowerCase() as Hex,
    bodyHash: storageBodyHash(request.body),
    nonce: headers["x-edge-nonce"].toLowerCase() as Hex,
    timestamp: BigInt(headers["x-edge-timestamp"]),
  };
  return checkSignature(chainId, "StorageRequest", message, headers["x-edge-signature"] as Hex, owner);
}

/** A framed object: its manifest (not yet verified) and fragments by index. */
export interface FramedObject {
  manifest: StorageManifest;
  fragments: Map<number, Buffer>;
}

/** Thrown by the decoders: the frame is malformed (the caller answers 400). */
export class StorageFrameError extends Error {}

function frameManifest(manifest: StorageManifest): Buffer {
  const json = Buffer.from(JSON.stringify(manifest), "utf8");
  if (json.length > STORAGE_MAX_MANIFEST_BYTES) throw new StorageFrameError("the manifest is too long to frame");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(json.length);
  return Buffer.concat([head, json]);
}

/** Reads the leading manifest of a frame: the manifest and where its fragments start. */
function readManifest(frame: Buffer): { manifest: StorageManifest; offset: number } {
  if (frame.length < 4) throw new StorageFrameError("the frame is shorter than its length prefix");
  const length = frame.readUInt32BE(0);
  if (length > STORAGE_MAX_MANIFEST_BYTES)
    throw new StorageFrameError(`the manifest's length ${length} is over ${STORAGE_MAX_MANIFEST_BYTES} bytes`);
  if (frame.length < 4 + length) throw new StorageFrameError("the frame ends inside the manifest");
  let manifest: unknown;
  try {
    manifest = JSON.parse(frame.subarray(4, 4 + length).toString("utf8"));
  } catch {
    throw new StorageFrameError("the manifest is not JSON");
  }
  const problem = storageManifestProblem(manifest);
  if (problem !== undefined) throw new StorageFrameError(`the manifest is malformed: ${problem}`);
  return { manifest: manifest as StorageManifest, offset: 4 + length };
}

/** The upload frame: the manifest and all n fragments (each `fragmentSize` bytes, index order). */
export function encodeObjectUpload(manifest: StorageManifest, fragments: readonly Uint8Array[]): Buffer {
  if (fragments.length !== manifest.n)
    throw new StorageFrameError(`${fragments.length} fragments, not n = ${manifest.n}`);
  for (const f of fragments)
    if (f.length !== manifest.fragmentSize) throw new StorageFrameError("a fragment is not fragmentSize bytes");
  return Buffer.concat([frameManifest(manifest), ...fragments]);
}

/** Parses an upload frame: exactly n fragments of the manifest's size follow it, nothing more. */
export function decodeObjectUpload(frame: Buffer): FramedObject {
  const { manifest, offset } = readManifest(frame);
  const expected = offset + manifest.n * manifest.fragmentSize;
  if (frame.length !== expected)
    throw new StorageFrameError(`the upload is ${frame.length} bytes; its manifest makes it ${expected}`);
  const fragments = new Map<number, Buffer>();
  for (let i = 0; i < manifest.n; i++)
    fragments.set(i, frame.subarray(offset + i * manifest.fragmentSize, offset + (i + 1) * manifest.fragmentSize));
  return { manifest, fragments };
}

/** The download frame: the manifest and the fragments given (any subset, each once). */
export function encodeObjectDownload(manifest: StorageManifest, fragments: ReadonlyMap<number, Uint8Array>): Buffer {
  const parts: Uint8Array[] = [frameManifest(manifest), Buffer.from([fragments.size])];
  for (const [index, bytes] of [...fragments].sort((a, b) => a[0] - b[0])) {
    if (index < 0 || index >= manifest.n || bytes.length !== manifest.fragmentSize)
      throw new StorageFrameError(`fragment ${index} does not fit the manifest`);
    parts.push(Buffer.from([index]), bytes);
  }
  return Buffer.concat(parts);
}

/** Parses a download frame: each index below n at most once, every fragment `fragmentSize` bytes, nothing after. */
export function decodeObjectDownload(frame: Buffer): FramedObject {
  const { manifest, offset } = readManifest(frame);
  if (frame.length < offset + 1) throw new StorageFrameError("the frame ends before its fragment count");
  const count = frame[offset];
  if (count > Math.min(manifest.n, STORAGE_MAX_FRAGMENTS))
    throw new StorageFrameError(`${count} fragments, more than n = ${manifest.n}`);
  const expected = offset + 1 + count * (1 + manifest.fragmentSize);
  if (frame.length !== expected)
    throw new StorageFrameError(`the download is ${frame.length} bytes; its count and manifest make it ${expected}`);
  const fragments = new Map<number, Buffer>();
  for (let i = 0, at = offset + 1; i < count; i++, at += 1 + manifest.fragmentSize) {
    const index = frame[at];
    if (index >= manifest.n || fragments.has(index))
      throw new StorageFrameError(`fragment index ${index} is out of range or repeated`);
    fragments.set(index, frame.subarray(at + 1, at + 1 + manifest.fragmentSize));
  }
  return { manifest, fragments };
}
