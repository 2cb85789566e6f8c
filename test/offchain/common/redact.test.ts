import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";

import { expect } from "chai";
import { type PublicClient, createPublicClient, http } from "viem";

import { ChainView } from "../../../offchain/common/chainView";
import { createTypedApp } from "../../../offchain/common/http";
import { redactUrls, serializeError } from "../../../offchain/common/redact";

const SECRET = "k3y5ecret0123456789";

/** An RPC that knows its chain id and fails everything else with HTTP 500, as a provider over quota does. */
async function failingRpc(): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const { id, method } = JSON.parse(body) as { id: number; method: string };
      if (method === "eth_chainId") {
        response.setHeader("content-type", "application/json");
        response.end(JSON.stringify({ jsonrpc: "2.0", id, result: "0x7a69" }));
        return;
      }
      response.statusCode = 500;
      response.end("over quota");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://user:${SECRET}@127.0.0.1:${port}/v3/${SECRET}?apikey=${SECRET}` };
}

describe("offchain/common/redact", function () {
  it("cuts credentials, path and query from every URL in a text, and nothing else", function () {
    expect(redactUrls(`URL: https://mainnet.example.io/v3/${SECRET}\nDetails: x`)).to.equal(
      "URL: https://mainnet.example.io/…\nDetails: x",
    );
    expect(redactUrls(`at http://u:${SECRET}@10.0.0.1:8545 and wss://ws.example/${SECRET}?a=1.`)).to.equal(
      "at http://10.0.0.1:8545 and wss://ws.example/…",
    );
    expect(redactUrls("http://127.0.0.1:8545/ is fine; plain text stays")).to.equal(
      "http://127.0.0.1:8545/ is fine; plain text stays",
    );
  });

  it("N2: a failed sync against an RPC URL with a key in it logs and reports no part of the key", async function () {
    const { server, url } = await failingRpc();
    try {
      const client = createPublicClient({ transport: http(url, { retryCount: 0 }) }) as PublicClient;
      expect(await client.getChainId()).to.equal(31337);
      let failure: Error | undefined;
      await client.getBlockNumber().catch((error: Error) => (failure = error));
      // viem's own error carries the key in its message and its `url` field: what used to reach the logs.
      expect(failure!.message).to.include(SECRET);
      expect(JSON.stringify(serializeError(failure))).not.to.include(SECRET);
      expect(serializeError(failure).message).to.match(/HTTP request failed/);

      // The loggers of the daemon and the services serialize errors through the redacting serializer.
      const lines: string[] = [];
      const stream = new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      });
      const app = createTypedApp({ logger: { level: "info", stream } });
      app.log.warn({ err: failure }, "chain view sync failed");
      await app.close();
      expect(lines.join("")).to.match(/HTTP request failed/);
      expect(lines.join("")).not.to.include(SECRET);

      // The chain view's last error (shown in /status) is redacted too.
      const view = new ChainView({
        client,
        stakeManager: "0x0000000000000000000000000000000000000001",
        fromBlock: 0n,
        logger: { info: () => {}, warn: (o: object) => lines.push(JSON.stringify(o)), debug: () => {} },
      });
      const stop = view.start();
      for (let i = 0; i < 50 && view.status().lastError === null; i++) await new Promise((r) => setTimeout(r, 20));
      await stop();
      expect(view.status().lastError).to.match(/HTTP request failed/);
      expect(JSON.stringify(view.status())).not.to.include(SECRET);
      expect(lines.join("")).not.to.include(SECRET);
    } finally {
      server.close();
    }
  });
});
