/**
 * nginx for the CDN benchmark (Debian's package): an unprivileged foreground process (`daemon off`) with its own
 * prefix directory holding the configuration, pid, error log, temporary files and `proxy_cache` directory, in front
 * of the benchmark's origin for the same site name.
 *
 * worker_processes auto (2 on the 2-core benchmark machine): nginx's own recommendation, one worker per core, and
 * the same number of serving processes as our side (a gateway and a host), so nginx is not handicapped. Access
 * logging is off (the gateway logs nothing per request either); keepalive_requests is raised so nginx, like Node's
 * servers, never closes a client's keep-alive connection after a number of requests; the upstream keeps up to 32
 * idle connections to the origin, as the host's origin fetcher keeps 32 per origin. `tcp_nopush` (Debian's
 * nginx.conf sets it) is left off: with it, misses of 100 KB stalled about 40 ms each (p50 43 ms against 1.7 ms
 * without, at 200 requests/s).
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

import { BENCH_HOSTNAME, startGroup } from "./common";

export const NGINX = process.env.EDGE_NGINX ?? "/usr/sbin/nginx";

/** The configuration for prefix `dir`, listening on `port`, caching `origin` (http://host:port). */
export function nginxConfig(dir: string, port: number, origin: string): string {
  const upstream = new URL(origin).host;
  // As root, nginx's workers would switch to `nobody`, which cannot write the cache in a private temporary
  // directory; unprivileged, the directive is ignored.
  const user = process.getuid?.() === 0 ? "user root;\n" : "";
  return `${user}worker_processes auto;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/client_temp;
  proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp;
  uwsgi_temp_path ${dir}/uwsgi_temp;
  scgi_temp_path ${dir}/scgi_temp;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=bench:16m max_size=1g inactive=1h use_temp_path=off;
  upstream origin {
    server ${upstream};
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    server_name ${BENCH_HOSTNAME};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_cache bench;
      proxy_cache_valid 200 1h;
      add_header X-Cache $upstream_cache_status;
    }
  }
}
`;
}

/** A free loopback port (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Writes the configuration into `dir` and returns nginx's arguments for it. */
export function prepareNginx(dir: string, port: number, origin: string): string[] {
  mkdirSync(join(dir, "cache"), { recursive: true });
  const conf = join(dir, "nginx.conf");
  writeFileSync(conf, nginxConfig(dir, port, origin));
  return ["-p", dir, "-c", conf, "-e", join(dir, "error.log")];
}

/** Starts nginx in `dir` in front of `origin`; resolves with its URL once it answers. */
export async function startNginx(dir: string, origin: string, children: ChildProcess[]): Promise<string> {
  const port = await freePort();
  const child = startGroup(NGINX, prepareNginx(dir, port, origin), children);
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): see ${dir}/error.log`);
    try {
      await fetch(`${url}/`, { signal: AbortSignal.timeout(1_000) });
      return url;
    } catch (error) {
      if (Date.now() > until) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
