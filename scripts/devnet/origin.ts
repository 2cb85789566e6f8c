/**
 * The devnet site's origin, its own process (`origin.log`): a plain node:http server, so its answers' timing is
 * not disturbed by the devnet runner's own work (signing the customers' jobs, the live view), and the latency of
 * its no-store path is what the hosts wait for.
 *
 *   GET|HEAD /static/<name>  one of OBJECTS: fixed bytes, Cache-Control public max-age=600, a strong ETag; a
 *                            matching If-None-Match answers 304. Hosts serve these from their caches.
 *   GET|HEAD /live/<any>     Cache-Control no-store, answered after LIVE_LATENCY_MS with LIVE_BYTES bytes naming
 *                            the path: every request is a job that holds one of a host's slots that long, so a
 *                            host's rate is its capacity / LIVE_LATENCY_MS.
 *                            A /live/traced... request's traceparent is logged (the devnet's trace, trace.ts).
 *   anything else            404.
 *
 * Run: node -r ts-node/register/transpile-only scripts/devnet/origin.ts <port>
 */
import { createHash } from "node:crypto";
import { type Server, createServer } from "node:http";

/** The cacheable objects, by name: a few sizes. */
export const OBJECTS: Record<string, number> = { "1k": 1024, "16k": 16 * 1024, "64k": 64 * 1024 };
/** How long the origin takes to answer a /live/ request. */
export const LIVE_LATENCY_MS = 300;
export const LIVE_BYTES = 2048;

const objects = new Map(
  Object.entries(OBJECTS).map(([name, size]) => {
    const body = Buffer.alloc(size, `edge devnet object ${name} `);
    return [name, { body, etag: `"${createHash("sha256").update(body).digest("hex").slice(0, 32)}"` }];
  }),
);

export function createOrigin(): Server {
  return createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    const head = request.method === "HEAD";
    if (request.method !== "GET" && !head) {
      response.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    const object = path.startsWith("/static/") ? objects.get(path.slice("/static/".length)) : undefined;
    if (object) {
      const headers = { "cache-control": "public, max-age=600", etag: object.etag };
      if (request.headers["if-none-match"] === object.etag) {
        response.writeHead(304, headers).end();
        return;
      }
      response.writeHead(200, {
        ...headers,
        "content-type": "application/octet-stream",
        "content-length": object.body.length,
      });
      response.end(head ? undefined : object.body);
      return;
    }
    if (path.startsWith("/live/")) {
      // The devnet's traced requests (trace.ts): the traceparent the host sent, for the printed path.
      if (path.startsWith("/live/traced"))
        console.log(`${path} traceparent ${request.headers.traceparent ?? "(none)"}`);
      const timer = setTimeout(() => {
        const body = Buffer.alloc(LIVE_BYTES, `live ${path} `);
        response.writeHead(200, {
          "cache-control": "no-store",
          "content-type": "text/plain",
          "content-length": body.length,
        });
        response.end(head ? undefined : body);
      }, LIVE_LATENCY_MS);
      response.on("close", () => clearTimeout(timer));
      return;
    }
    response.writeHead(404, { "content-type": "text/plain" }).end("no such object\n");
  });
}

if (require.main === module) {
  const port = Number(process.argv[2] ?? 0);
  const server = createOrigin();
  server.keepAliveTimeout = 65_000;
  server.listen(port, "127.0.0.1", () => {
    const { port: bound } = server.address() as { port: number };
    console.log(`origin listening on http://127.0.0.1:${bound}`);
  });
  process.once("SIGTERM", () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
