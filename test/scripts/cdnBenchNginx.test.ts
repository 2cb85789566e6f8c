/**
 * The CDN benchmark's nginx (scripts/bench/cdn/nginx.ts): the configuration it writes passes `nginx -t`, and nginx
 * run with it as the benchmark runs it caches the origin's response (the second request is a HIT) and stops with
 * its process group. Needs Debian's nginx (.ci/run installs it).
 */
import { expect } from "chai";
import { type ChildProcess, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";

import { stopAll } from "../../scripts/bench/cdn/common";
import { NGINX, freePort, prepareNginx, startNginx } from "../../scripts/bench/cdn/nginx";

describe("bench:cdn's nginx", function () {
  this.timeout(30_000);
  let dir: string;
  let origin: Server;
  let originUrl: string;
  let hits = 0;
  const children: ChildProcess[] = [];

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "cdn-nginx-"));
    origin = createServer((_request, response) => {
      hits += 1;
      response.writeHead(200, { "cache-control": "public, max-age=60", "content-type": "text/plain" });
      response.end("cached body");
    });
    await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  });

  after(async function () {
    await stopAll(children);
    await new Promise((resolve) => origin.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes a configuration nginx -t accepts", async function () {
    const args = prepareNginx(join(dir, "check"), await freePort(), originUrl);
    const check = spawnSync(NGINX, ["-t", ...args], { encoding: "utf8" });
    expect(check.status, check.stderr).to.equal(0);
    expect(check.stderr).to.include("test is successful");
  });

  it("serves the site from its proxy_cache after the first request, and stops with its process group", async function () {
    const url = await startNginx(join(dir, "run"), originUrl, children);
    const before = hits;
    const ask = async () => {
      const response = await request(`${url}/object`, { headers: { host: "bench.example.test" } });
      return [response.statusCode, await response.body.text(), response.headers["x-cache"]];
    };
    expect(await ask()).to.deep.equal([200, "cached body", "MISS"]);
    expect(await ask()).to.deep.equal([200, "cached body", "HIT"]);
    expect(hits - before).to.equal(1);
    await stopAll(children);
    expect(() => process.kill(-children[0].pid!, 0)).to.throw();
  });
});
