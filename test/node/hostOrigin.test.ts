import { expect } from "chai";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";

import { isEdgeError } from "../../offchain/common/errors";
import { createOriginFetcher, endToEnd, isPrivateAddress, type OriginFetcher } from "../../node/roles/host/origin";

const read = async (body: Readable): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
};

describe("host origin fetch", function () {
  let server: Server;
  let base: string;
  let fetcher: OriginFetcher;
  const seen: { headers: IncomingMessage["headers"]; port: number; body: string }[] = [];

  before(async function () {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ headers: req.headers, port: req.socket.remotePort ?? 0, body: Buffer.concat(chunks).toString() });
        if (req.url === "/moved") return void res.writeHead(302, { location: "/elsewhere" }).end("moved");
        res.writeHead(200, {
          connection: "keep-alive, x-hop",
          "x-hop": "1",
          "keep-alive": "timeout=5",
          "proxy-authenticate": "Basic",
          trailer: "x-trailer",
          "x-end": "kept",
        });
        res.end(`${req.method} ${req.url}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    fetcher = createOriginFetcher({ connectionsPerOrigin: 1, allowPrivateOrigins: true });
  });

  after(async function () {
    await fetcher.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("strips hop-by-hop headers both ways and sends the origin's own Host", async function () {
    const res = await fetcher.fetch({
      method: "GET",
      url: `${base}/page?q=1`,
      headers: {
        host: "site.example",
        connection: "x-private",
        "x-private": "secret",
        "keep-alive": "timeout=1",
        te: "trailers",
        "proxy-authorization": "Basic abc",
        "x-end": "kept",
      },
    });
    expect(await read(res.body)).to.equal("GET /page?q=1");
    const sent = seen.at(-1)!.headers;
    expect(sent["x-end"]).to.equal("kept");
    expect(sent.host).to.equal(new URL(base).host);
    for (const name of ["x-private", "te", "proxy-authorization"]) expect(sent[name], name).to.equal(undefined);
    expect(res.headers["x-end"]).to.equal("kept");
    for (const name of ["connection", "x-hop", "keep-alive", "proxy-authenticate", "trailer", "transfer-encoding"])
      expect(res.headers[name], name).to.equal(undefined);
  });

  it("passes a redirect back as it is and reuses its keep-alive connection", async function () {
    const first = await fetcher.fetch({ method: "GET", url: `${base}/moved`, headers: {} });
    expect([first.status, first.headers.location, await read(first.body)]).to.deep.equal([302, "/elsewhere", "moved"]);
    const second = await fetcher.fetch({
      method: "POST",
      url: `${base}/form`,
      headers: { "content-type": "text/plain" },
      body: Readable.from([Buffer.from("a=1")]),
    });
    expect(await read(second.body)).to.equal("POST /form");
    expect(seen.at(-1)!.body).to.equal("a=1");
    expect(seen.at(-1)!.port, "same socket").to.equal(seen.at(-2)!.port);
  });

  it("raises EDGE_NODE_ORIGIN_UNREACHABLE for a refused connection or a URL that is not http(s)", async function () {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    for (const url of [`http://127.0.0.1:${port}/`, "ftp://example.test/file"]) {
      const error = await fetcher.fetch({ method: "GET", url, headers: {} }).catch((e: unknown) => e);
      expect(isEdgeError(error) && error.code, url).to.equal("EDGE_NODE_ORIGIN_UNREACHABLE");
    }
  });

  it("endToEnd drops the names a Connection header lists, whatever their case", function () {
    expect(endToEnd({ Connection: "X-A, close", "X-A": "1", "X-B": "2", Upgrade: "h2c" })).to.deep.equal({
      "x-b": "2",
    });
  });

  it("D48: refuses private, loopback and link-local origins unless allowed, by IP literal and by name", async function () {
    const strict = createOriginFetcher({ headersTimeoutMs: 2_000 });
    try {
      for (const url of [
        `${base}/x`,
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:80/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
      ]) {
        const error = await strict.fetch({ method: "GET", url, headers: {} }).then(
          () => undefined,
          (e: { code?: string }) => e,
        );
        expect(error?.code, url).to.equal("EDGE_NODE_ORIGIN_FORBIDDEN");
      }
      // A name that resolves to loopback only is refused at connect time, before any byte is sent.
      const before = seen.length;
      const byName = await strict
        .fetch({ method: "GET", url: base.replace("127.0.0.1", "localhost") + "/x", headers: {} })
        .then(
          () => undefined,
          (e: { code?: string }) => e,
        );
      expect(byName?.code).to.equal("EDGE_NODE_ORIGIN_FORBIDDEN");
      expect(seen.length).to.equal(before);
    } finally {
      await strict.close();
    }
    expect(isPrivateAddress("8.8.8.8")).to.equal(false);
    expect(isPrivateAddress("2606:4700::1111")).to.equal(false);
    expect(isPrivateAddress("172.31.255.255")).to.equal(true);
    expect(isPrivateAddress("fd00::1")).to.equal(true);
    // Allowed (tests, the devnet): the same origin answers.
    const response = await fetcher.fetch({ method: "GET", url: `${base}/x`, headers: {} });
    expect(response.status).to.be.below(500);
    response.body.resume();
  });

  it("R18: NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16) and IPv4-compatible (::/96) addresses are refused", async function () {
    const port = new URL(base).port;
    const embedded = [
      "::7f00:1",
      "::127.0.0.1",
      "64:ff9b::7f00:1",
      "64:ff9b::a9fe:a9fe",
      "64:ff9b:1::1",
      "2002:7f00:1::1",
    ];
    for (const address of embedded) expect(isPrivateAddress(address), address).to.equal(true);
    for (const address of ["64:ff9b:2::1", "2003::1", "2606:4700::1111"])
      expect(isPrivateAddress(address), address).to.equal(false);
    const strict = createOriginFetcher({ headersTimeoutMs: 2_000 });
    try {
      for (const address of embedded) {
        const url = `http://[${address}]:${port}/x`;
        const error = await strict.fetch({ method: "GET", url, headers: {} }).then(
          () => undefined,
          (e: { code?: string }) => e,
        );
        expect(error?.code, url).to.equal("EDGE_NODE_ORIGIN_FORBIDDEN");
      }
    } finally {
      await strict.close();
    }
  });
});
