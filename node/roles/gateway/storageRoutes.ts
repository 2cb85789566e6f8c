/**
 * Edge Storage's API on the gateway's API port (D75, docs/storage.md "The API"): thin handlers over storage.ts.
 *
 *   PUT    /storage/v1/objects/:objectId   an upload frame -> 201 (200: already stored) { objectId, storedBytes, placement }
 *   GET    /storage/v1/objects/:objectId   -> 200 a download frame (application/vnd.edge.storage-object)
 *   GET    /storage/v1/objects?after=&limit=   -> 200 { objects, next? }
 *   DELETE /storage/v1/objects/:objectId   -> 200 { objectId, deleted: true }
 *
 * Before an upload's body is read (preParsing): the four signature headers are there and the timestamp is fresh,
 * the declared length is at most MAX_UPLOAD_BYTES, and at most MAX_UPLOADS bodies are being read at once (503).
 * A body not in within UPLOAD_BODY_MS is cut (its connection closed) and frees its slot: nothing is verifiable
 * before the body (the signature covers it), so without a deadline 16 stalled uploads from anyone, unsigned, would
 * hold every slot for the server's whole request timeout (R21-8).
 */
import { Type } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";

import type { TypedApp } from "../../../offchain/common/http";
import {
  STORAGE_MAX_MANIFEST_BYTES,
  STORAGE_OBJECT_TYPE,
  type StorageRequestHeaders,
  StorageRequestHeadersSchema,
  unixSeconds,
} from "../../../offchain/common/protocol";
import { nodeError } from "../../errors";
import { SIGNATURE_WINDOW_SECONDS } from "./customers";
import type { GatewayStorage } from "./storage";

/**
 * The largest upload frame: the manifest and n fragments. The most fragment bytes an object within the limits
 * takes is k = 3 of n = 9 (2 MiB + 16 in fragments of 699,056 bytes: 6,291,504); fewer data fragments would be
 * over the hosts' 1 MiB fragment limit.
 */
export const MAX_UPLOAD_BYTES = 4 + STORAGE_MAX_MANIFEST_BYTES + 9 * 699_056;
/** Upload bodies read at once. */
export const MAX_UPLOADS = 16;
/** The longest an upload's body may take to arrive (6 MiB at 100 kB/s). */
export const UPLOAD_BODY_MS = 60_000;

const ObjectParams = Type.Object({ objectId: Type.String({ pattern: "^0x[0-9a-fA-F]{64}$" }) });
const ListQuery = Type.Object(
  {
    after: Type.Optional(Type.String({ pattern: "^0x[0-9a-fA-F]{64}$" })),
    limit: Type.Optional(Type.String({ pattern: "^[1-9][0-9]{0,3}$" })), // 1..9999, at most 1,000 listed
  },
  { additionalProperties: false },
);

export function registerStorageRoutes(
  app: TypedApp,
  storage: Pick<GatewayStorage, "get" | "list" | "remove" | "put">,
  options: { bodyTimeoutMs: number } = { bodyTimeoutMs: UPLOAD_BODY_MS },
): void {
  const schema = { headers: StorageRequestHeadersSchema, params: ObjectParams };
  app.get("/storage/v1/objects/:objectId", { schema }, async (request, reply) => {
    const frame = await storage.get(request.headers, request.params.objectId);
    return reply.type(STORAGE_OBJECT_TYPE).send(frame);
  });
  app.get(
    "/storage/v1/objects",
    { schema: { headers: StorageRequestHeadersSchema, querystring: ListQuery } },
    (request) =>
      storage.list(
        request.headers,
        request.query.after,
        request.query.limit === undefined ? undefined : Number(request.query.limit),
      ),
  );
  app.delete("/storage/v1/objects/:objectId", { schema }, (request) =>
    storage.remove(request.headers, request.params.objectId),
  );
  void app.register(async (scope: FastifyInstance) => {
    let reading = 0;
    const counted = new WeakMap<FastifyRequest, NodeJS.Timeout>();
    const done = (request: FastifyRequest) => {
      const deadline = counted.get(request);
      if (counted.delete(request)) {
        reading -= 1;
        clearTimeout(deadline);
      }
    };
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: MAX_UPLOAD_BYTES }, (_request, body, next) =>
      next(null, body),
    );
    scope.addHook("preParsing", async (request) => {
      precheck(request);
      if (reading >= MAX_UPLOADS) throw nodeError("EDGE_NODE_STORAGE_BUSY", "too many uploads at once: retry shortly");
      reading += 1;
      const cut = () => {
        done(request);
        request.raw.destroy(); // the body is too slow: the connection goes, the slot is free for others
      };
      counted.set(request, setTimeout(cut, options.bodyTimeoutMs).unref());
    });
    scope.addHook("preHandler", async (request) => done(request)); // the body is in: the slot is free
    scope.addHook("onResponse", async (request) => done(request));
    scope.addHook("onRequestAbort", async (request) => done(request));
    scope.put("/storage/v1/objects/:objectId", { bodyLimit: MAX_UPLOAD_BYTES, schema }, async (request, reply) => {
      const body = request.body;
      if (!Buffer.isBuffer(body)) throw nodeError("EDGE_NODE_STORAGE_BAD_OBJECT", "the body must be an upload frame");
      const { status, reply: answer } = await storage.put(
        request.headers as StorageRequestHeaders,
        (request.params as { objectId: string }).objectId,
        body,
      );
      return reply.code(status).send(answer);
    });
  });
}

/** What can be refused before an upload is read: missing or stale signature headers, a length over the limit. */
function precheck(request: FastifyRequest): void {
  const headers = request.headers;
  for (const name of ["x-edge-owner", "x-edge-timestamp", "x-edge-nonce", "x-edge-signature"])
    if (typeof headers[name] !== "string")
      throw nodeError("EDGE_NODE_BAD_SIGNATURE", `the request has no ${name} header`);
  const timestamp = /^\d{1,12}$/.test(headers["x-edge-timestamp"] as string)
    ? BigInt(headers["x-edge-timestamp"] as string)
    : -1n;
  const now = unixSeconds();
  if (timestamp > now + SIGNATURE_WINDOW_SECONDS || timestamp < now - SIGNATURE_WINDOW_SECONDS)
    throw nodeError("EDGE_NODE_SIGNATURE_EXPIRED", "the request's timestamp is too far from now");
  const length = Number(headers["content-length"]);
  if (!Number.isSafeInteger(length) || length > MAX_UPLOAD_BYTES)
    throw nodeError("EDGE_NODE_STORAGE_TOO_LARGE", `an upload declares its length, at most ${MAX_UPLOAD_BYTES} bytes`, {
      details: { limit: MAX_UPLOAD_BYTES },
    });
}
