/**
 * The gateway's side of Edge Storage fragments over a host's link (issue 21; the wire: ../fragmentWire.ts,
 * docs/storage.md "Fragments over the link"): put, get, delete and list fragments on one given host, one HTTP/2
 * stream each on its HostLink, as dispatch.ts opens a job's stream. Results are typed; every failure is an EdgeError.
 *
 * - Bounded: every operation has a timeout (EDGE_NODE_HOST_TIMEOUT), and what a host sends back is read up to a
 *   cap (the fragment limit for a get, LIST_ANSWER_MAX_BYTES for JSON): past it the stream is cancelled and the
 *   operation fails (EDGE_NODE_HOST_FAILED). A put refuses bytes over the limit before opening a stream.
 * - Never trusts a host's bytes: a get names the sha256 it expects (the owner-signed manifest's), and an answer
 *   whose header or bytes hash otherwise is EDGE_NODE_FRAGMENT_MISMATCH; the bytes are dropped, never returned.
 * - A host's refusal comes back as the store's code (409 conflict, 410 lost, 413, 422 hash, 507 full, ...) when
 *   it is one a fragment job may raise and its status is that code's; anything else is EDGE_NODE_HOST_FAILED.
 *   The message is the gateway's own: a host's words are never passed on.
 *
 * Not through the job queue (queue.ts): the queue hands fungible jobs to whichever host has a free slot first,
 * while a fragment operation is for one host that placement chose. Its stream is not counted in the link's
 * `inflight`; the host's HTTP/2 concurrent-stream limit still bounds what runs there (Node holds a stream past
 * the limit until one closes, within the operation's timeout).
 */
import { createHash } from "node:crypto";
import type http2 from "node:http2";

import { isEdgeError } from "../../../offchain/common/errors";
import { NODE_ERRORS, type NodeErrorCode, nodeError } from "../../errors";
import {
  FRAGMENT_KIND,
  FRAGMENT_SHA256_HEADER,
  FRAGMENT_WIRE_MAX_BYTES,
  LIST_ANSWER_MAX_BYTES,
  fragmentPath,
} from "../fragmentWire";
import type { HostLink } from "./links";

export interface FragmentCallOptions {
  timeoutMs: number;
}

export interface FragmentListing {
  /** Indices the host holds, ascending. */
  indices: number[];
  /** Indices the host found corrupt and dropped (410 until put again or deleted), ascending. */
  lost: number[];
}

/** Codes a host's fragment job may answer with, passed on as they are. */
const FRAGMENT_CODES: readonly NodeErrorCode[] = [
  "EDGE_NODE_BAD_FRAGMENT",
  "EDGE_NODE_FRAGMENT_TOO_LARGE",
  "EDGE_NODE_FRAGMENT_HASH",
  "EDGE_NODE_FRAGMENT_CONFLICT",
  "EDGE_NODE_FRAGMENT_NOT_FOUND",
  "EDGE_NODE_FRAGMENT_LOST",
  "EDGE_NODE_STORAGE_FULL",
  "EDGE_NODE_STORAGE_UNAVAILABLE",
  "EDGE_NODE_NOT_SERVING",
];
const HEX32 = /^0x[0-9a-f]{64}$/;

/** Stores `data` as fragment (objectId, index) on the link's host: "stored", or "exists" (the same bytes were). */
export async function putFragment(
  link: HostLink,
  fragment: { objectId: string; index: number; sha256: string; data: Uint8Array },
  options: FragmentCallOptions,
): Promise<"stored" | "exists"> {
  const { objectId, index, sha256, data } = fragment;
  checkKey(objectId, index);
  if (!HEX32.test(sha256)) throw nodeError("EDGE_NODE_BAD_FRAGMENT", "a fragment's sha256 is 0x and 64 hex digits");
  if (data.length === 0 || data.length > FRAGMENT_WIRE_MAX_BYTES)
    throw nodeError("EDGE_NODE_FRAGMENT_TOO_LARGE", `a fragment is 1 to ${FRAGMENT_WIRE_MAX_BYTES} bytes`, {
      details: { bytes: data.length },
    });
  const headers = {
    ...request("PUT", fragmentPath(objectId, index)),
    "content-type": "application/octet-stream",
    "content-length": data.length,
    [FRAGMENT_SHA256_HEADER]: sha256,
  };
  const answer = await exchange(link, headers, Buffer.from(data.buffer, data.byteOffset, data.length), {
    ...options,
    maxBytes: LIST_ANSWER_MAX_BYTES,
  });
  const reply = parsed(link, answer, [200, 201]) as { result?: unknown };
  if (answer.status === 201 && reply.result === "stored") return "stored";
  if (answer.status === 200 && reply.result === "exists") return "exists";
  throw badAnswer(link, "a put's answer names no result");
}

/** The fragment's bytes from the link's host, checked against `sha256`, the hash the owner's manifest gives. */
export async function getFragment(
  link: HostLink,
  fragment: { objectId: string; index: number; sha256: string },
  options: FragmentCallOptions,
): Promise<Buffer> {
  const { objectId, index, sha256 } = fragment;
  checkKey(objectId, index);
  if (!HEX32.test(sha256)) throw nodeError("EDGE_NODE_BAD_FRAGMENT", "a fragment's sha256 is 0x and 64 hex digits");
  const answer = await exchange(link, request("GET", fragmentPath(objectId, index)), null, {
    ...options,
    maxBytes: FRAGMENT_WIRE_MAX_BYTES,
  });
  if (answer.status !== 200) throw refusal(link, answer);
  const declared = answer.headers[FRAGMENT_SHA256_HEADER];
  const actual = `0x${createHash("sha256").update(answer.body).digest("hex")}`;
  if (declared !== sha256 || actual !== sha256) {
    throw nodeError("EDGE_NODE_FRAGMENT_MISMATCH", `host ${link.host} answered other bytes than the fragment's`, {
      details: { host: link.host, objectId, index, expected: sha256, declared: String(declared).slice(0, 80), actual },
    });
  }
  return answer.body;
}

/** Deletes the fragment on the link's host; false when the host did not hold it. */
export async function deleteFragment(
  link: HostLink,
  fragment: { objectId: string; index: number },
  options: FragmentCallOptions,
): Promise<boolean> {
  checkKey(fragment.objectId, fragment.index);
  const path = fragmentPath(fragment.objectId, fragment.index);
  const answer = await exchange(link, request("DELETE", path), null, { ...options, maxBytes: LIST_ANSWER_MAX_BYTES });
  const reply = parsed(link, answer, [200]) as { deleted?: unknown };
  if (typeof reply.deleted !== "boolean") throw badAnswer(link, "a delete's answer names no result");
  return reply.deleted;
}

/** Which fragments of `objectId` the link's host holds, and which it lost. */
export async function listFragments(
  link: HostLink,
  objectId: string,
  options: FragmentCallOptions,
): Promise<FragmentListing> {
  checkKey(objectId, 0);
  const answer = await exchange(link, request("GET", fragmentPath(objectId)), null, {
    ...options,
    maxBytes: LIST_ANSWER_MAX_BYTES,
  });
  const reply = parsed(link, answer, [200]) as { indices?: unknown; lost?: unknown };
  const indices = (value: unknown) =>
    Array.isArray(value) && value.length <= 256 && value.every((i) => Number.isInteger(i) && i >= 0 && i <= 255);
  if (!indices(reply.indices) || !indices(reply.lost)) throw badAnswer(link, "a list's answer is not index lists");
  return { indices: reply.indices as number[], lost: reply.lost as number[] };
}

/** The oldest keys the link's host lost (at most a page), and how many it holds in all. */
export async function listLostFragments(
  link: HostLink,
  options: FragmentCallOptions,
): Promise<{ lost: Array<{ objectId: string; index: number }>; total: number }> {
  const answer = await exchange(link, request("GET", "/fragments/lost"), null, {
    ...options,
    maxBytes: LIST_ANSWER_MAX_BYTES,
  });
  const reply = parsed(link, answer, [200]) as { lost?: unknown; total?: unknown };
  if (!Array.isArray(reply.lost) || !Number.isSafeInteger(reply.total))
    throw badAnswer(link, "a lost list's answer is not a list");
  const lost = reply.lost.map((key: unknown) => {
    const [objectId, index] = typeof key === "string" ? key.split("/") : [];
    if (!HEX32.test(objectId ?? "") || !/^(0|[1-9][0-9]{0,2})$/.test(index ?? "") || Number(index) > 255)
      throw badAnswer(link, "a lost list's answer holds a malformed key");
    return { objectId, index: Number(index) };
  });
  return { lost, total: reply.total as number };
}

function checkKey(objectId: string, index: number): void {
  if (!HEX32.test(objectId))
    throw nodeError("EDGE_NODE_BAD_FRAGMENT", "a fragment's object id is 0x and 64 lowercase hex digits");
  if (!Number.isInteger(index) || index < 0 || index > 255)
    throw nodeError("EDGE_NODE_BAD_FRAGMENT", "a fragment's index is an integer from 0 to 255");
}

function request(method: string, path: string): http2.OutgoingHttpHeaders {
  return { ":method": method, ":path": path, "x-edge-kind": FRAGMENT_KIND };
}

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** The JSON body of an answer whose status is one of `ok`; the host's refusal otherwise. */
function parsed(link: HostLink, answer: Answer, ok: number[]): Record<string, unknown> {
  if (!ok.includes(answer.status)) throw refusal(link, answer);
  try {
    const body: unknown = JSON.parse(answer.body.toString("utf8"));
    if (body !== null && typeof body === "object" && !Array.isArray(body)) return body as Record<string, unknown>;
  } catch {
    // not JSON: below
  }
  throw badAnswer(link, "its answer is not a JSON object");
}

/** A host's refusal as the gateway raises it: the store's code when it is one and its status matches. */
function refusal(link: HostLink, answer: Answer): Error {
  const code = answer.headers["x-edge-error"];
  const known = typeof code === "string" && (FRAGMENT_CODES as readonly string[]).includes(code);
  if (!known || NODE_ERRORS[code as NodeErrorCode] !== answer.status)
    return badAnswer(link, `it answered ${answer.status} ${typeof code === "string" ? code.slice(0, 64) : ""}`.trim());
  return nodeError(code as NodeErrorCode, `host ${link.host} refused the fragment operation (${code})`, {
    details: { host: link.host },
  });
}

function badAnswer(link: HostLink, why: string): Error {
  return nodeError("EDGE_NODE_HOST_FAILED", `host ${link.host} failed a fragment operation: ${why}`, {
    details: { host: link.host },
  });
}

/** One stream on `link`: the answer's status, headers and body (at most `maxBytes`), within `timeoutMs`. */
function exchange(
  link: HostLink,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer | null,
  options: FragmentCallOptions & { maxBytes: number },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = link.request(headers, body === null);
    } catch (error) {
      return reject(isEdgeError(error) ? error : badAnswer(link, "its link cannot take a stream"));
    }
    let answer: Omit<Answer, "body"> | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      if (!stream.destroyed) stream.close(0x8); // CANCEL
      reject(error);
    };
    stream.setTimeout(options.timeoutMs, () =>
      fail(nodeError("EDGE_NODE_HOST_TIMEOUT", `host ${link.host}: no answer within ${options.timeoutMs} ms`)),
    );
    stream.on("response", (h) => {
      answer = { status: Number(h[":status"]), headers: h };
      const declared = Number(h["content-length"] ?? 0);
      if (declared > options.maxBytes) fail(badAnswer(link, `its answer is over ${options.maxBytes} bytes`));
    });
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > options.maxBytes) fail(badAnswer(link, `its answer is over ${options.maxBytes} bytes`));
      else chunks.push(chunk);
    });
    stream.on("end", () => {
      if (settled) return;
      settled = true;
      // The answer is whole; a put the host refused early may still be sending: stop it.
      if (!stream.destroyed) stream.close(0x8);
      if (answer) resolve({ ...answer, body: Buffer.concat(chunks, size) });
      else reject(badAnswer(link, "its stream ended without an answer"));
    });
    stream.on("close", () => fail(badAnswer(link, "its link closed the stream")));
    stream.on("error", () => fail(badAnswer(link, "its stream failed")));
    if (body !== null) stream.end(body);
  });
}
