/**
 * The in-process Hardhat network served over real HTTP JSON-RPC on a loopback port, so off-chain code under
 * test (viem clients, daemons) talks to the same chain the test drives with hre.ethers, and a TCP proxy in
 * front of it that can drop connections to simulate an RPC outage.
 */
import { type Server, type Socket, connect, createServer } from "node:net";
import hre from "hardhat";
import { JsonRpcServer } from "hardhat/internal/hardhat-network/jsonrpc/server";
import { http, createPublicClient } from "viem";

export interface RpcServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startRpcServer(): Promise<RpcServer> {
  const server = new JsonRpcServer({ hostname: "127.0.0.1", port: 0, provider: hre.network.provider });
  const { port } = await server.listen();
  return { url: `http://127.0.0.1:${port}`, port, close: () => server.close() };
}

export function publicClient(url: string) {
  // Retries are the chain view's job (with its own backoff and staleness accounting).
  return createPublicClient({ transport: http(url, { retryCount: 0, timeout: 5_000 }) });
}

export interface RpcProxy {
  url: string;
  /** Drops every open connection and refuses new ones. */
  down(): void;
  up(): void;
  close(): Promise<void>;
}

export async function startRpcProxy(targetPort: number): Promise<RpcProxy> {
  let isUp = true;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (!isUp) {
      client.destroy();
      return;
    }
    const target = connect(targetPort, "127.0.0.1");
    for (const s of [client, target]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    client.pipe(target).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    down() {
      isUp = false;
      for (const s of sockets) s.destroy();
    },
    up() {
      isUp = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
