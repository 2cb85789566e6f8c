/**
 * The CDN benchmark's origin, in its own process: GET /<anything>?size=<bytes>&delay=<ms> answers `size` bytes
 * (1,024 unless given) after `delay` ms (0: at once), cacheable by shared caches for an hour, with an ETag and a
 * Content-Length. Bodies are built once per size. Prints {"url": ...} on its first line, then serves until killed.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const bodies = new Map<number, Buffer>();
const MAX_SIZE = 16 * 1024 * 1024;

const server = createServer((request, response) => {
  request.resume();
  const url = new URL(request.url ?? "/", "http://origin");
  const size = Math.min(MAX_SIZE, Math.max(0, Number(url.searchParams.get("size") ?? 1024) | 0));
  const delay = Math.max(0, Number(url.searchParams.get("delay") ?? 0) | 0);
  let body = bodies.get(size);
  if (!body) bodies.set(size, (body = Buffer.alloc(size, "edge-cdn-bench ")));
  const answer = () => {
    response.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": body.length,
      "cache-control": "public, max-age=3600",
      etag: `"${size}${url.pathname.replace(/[^A-Za-z0-9]/g, "-")}"`,
    });
    response.end(request.method === "HEAD" ? undefined : body);
  };
  if (delay === 0) answer();
  else setTimeout(answer, delay);
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
});
process.on("SIGTERM", () => process.exit(0));
