/**
 * The host's side of Edge Storage fragments over its link (issue 21; the wire: ../fragmentWire.ts, docs/storage.md
 * "Fragments over the link"): jobs of kind `fragment` put, get, delete and list fragments in the host's
 * FragmentStore (fragments.ts), whose refusals become the statuses of their EdgeErrors (400 malformed, 409
 * conflict, 410 lost, 413 too large, 422 hash, 507 full, ...), answered by HostJobs with `x-edge-error`.
 *
 * Authorisation: none here, by design. Only the gateway opens streams on the link: the link is the host's own
 * outbound connection to its gateway, which the gateway accepted on the host's signed registration, and in which
 * the gateway is the HTTP/2 client (link.ts). So every request here comes from that gateway, and deciding which
 * owner may put, read or delete which object is the gateway's job (it authenticates owners). The store only keeps
 * anything from being replaced without an explicit delete, and hashes on write and read.
 *
 * Bounds: a put's declared content-length over the store's fragment limit is refused before any byte is read;
 * without one, the body is read until it passes the limit and refused there (HostJobs then closes the stream with
 * NO_ERROR, so the gateway stops sending: at most the limit plus one flow-control window is ever read). A put is
 * refused while the host is not serving; gets, deletes and lists still answer (fragments can be moved off). Lists
 * are bounded: an object has at most 256 indices, and the lost keys come LOST_PAGE at a time, oldest first.
 * Fragment jobs are not counted in the host's tally (storage is billed by bytes stored, not yet built).
 */
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

import { nodeError } from "../../errors";
import { FRAGMENT_SHA256_HEADER, LOST_PAGE, type FragmentRoute, parseFragmentRoute } from "../fragmentWire";
import { checkFragmentKey, type FragmentStore } from "./fragments";

export type FragmentStoreLike = Pick<FragmentStore, "put" | "get" | "delete" | "indices" | "lostKeys" | "stats">;

export class FragmentJobs {
  constructor(
    private readonly store: FragmentStoreLike,
    private readonly serving: () => boolean,
  ) {}

  async handle(request: Http2ServerRequest, response: Http2ServerResponse): Promise<void> {
    const route = parseFragmentRoute((request.url ?? "").split("?")[0]);
    if (!route) throw nodeError("EDGE_NODE_BAD_FRAGMENT", "no such fragment path (/fragments/<objectId>/<index>)");
    const method = request.method;
    if (route.what === "fragment") {
      checkFragmentKey(route.objectId, route.index);
      if (method === "PUT") return this.put(route, request, response);
      if (method === "GET") return this.get(route, response);
      if (method === "DELETE") {
        const deleted = await this.store.delete(route.objectId, route.index);
        return json(response, 200, { objectId: route.objectId, index: route.index, deleted });
      }
    } else if (method === "GET" && route.what === "object") {
      checkFragmentKey(route.objectId, 0);
      const prefix = `${route.objectId}/`;
      const lost = this.store
        .lostKeys()
        .filter((key) => key.startsWith(prefix))
        .map((key) => Number(key.slice(prefix.length)))
        .sort((a, b) => a - b);
      return json(response, 200, { objectId: route.objectId, indices: this.store.indices(route.objectId), lost });
    } else if (method === "GET" && route.what === "lost") {
      const keys = this.store.lostKeys();
      return json(response, 200, { lost: keys.slice(0, LOST_PAGE), total: keys.length });
    }
    throw nodeError("EDGE_NODE_BAD_FRAGMENT", `${String(method).slice(0, 16)} is not a fragment operation here`);
  }

  private async put(
    route: Extract<FragmentRoute, { what: "fragment" }>,
    request: Http2ServerRequest,
    response: Http2ServerResponse,
  ): Promise<void> {
    if (!this.serving()) throw nodeError("EDGE_NODE_NOT_SERVING", "this host is not serving: no puts");
    const sha256 = request.headers[FRAGMENT_SHA256_HEADER];
    if (typeof sha256 !== "string" || !/^0x[0-9a-f]{64}$/.test(sha256))
      throw nodeError("EDGE_NODE_BAD_FRAGMENT", `${FRAGMENT_SHA256_HEADER} is 0x and 64 lowercase hex digits`);
    const bytes = await readBounded(request, this.store.stats().maxFragmentBytes);
    const result = await this.store.put(route.objectId, route.index, sha256, bytes);
    json(response, result === "stored" ? 201 : 200, { objectId: route.objectId, index: route.index, result });
  }

  private async get(route: Extract<FragmentRoute, { what: "fragment" }>, response: Http2ServerResponse) {
    const fragment = await this.store.get(route.objectId, route.index);
    response.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": fragment.data.length,
      [FRAGMENT_SHA256_HEADER]: fragment.sha256,
    });
    await new Promise<void>((resolve) => response.end(fragment.data, resolve));
  }
}

function json(response: Http2ServerResponse, status: number, body: object): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

/**
 * The request's body, refused (413) as soon as it is known to pass `limit` bytes: declared, or read. Read with
 * events, not `for await`: leaving an async iterator early destroys the stream, and the gateway would see a cut
 * stream instead of the 413. Paused instead, so the rest is never read (HostJobs then closes the stream).
 */
function readBounded(request: Http2ServerRequest, limit: number): Promise<Buffer> {
  const tooLarge = (bytes: number) =>
    nodeError("EDGE_NODE_FRAGMENT_TOO_LARGE", `a fragment is at most ${limit} bytes`, {
      details: { bytes, maximum: limit },
    });
  const declared = request.headers["content-length"];
  if (declared !== undefined) {
    if (!/^\d{1,16}$/.test(declared)) throw nodeError("EDGE_NODE_BAD_FRAGMENT", "content-length is not a number");
    if (Number(declared) > limit) throw tooLarge(Number(declared));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (error?: Error) => {
      request.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
      if (error) {
        request.pause();
        reject(error);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) settle(tooLarge(size));
      else chunks.push(chunk);
    };
    const onEnd = () => settle();
    const onError = (error: Error) => settle(error);
    const onClose = () => settle(new Error("the fragment's stream closed before its end"));
    request.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}
