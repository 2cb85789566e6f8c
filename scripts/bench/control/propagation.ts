/**
 * propagation.p99.ms@<n> (issue 17 benchmark, D53): the time from a change at the stargate to the ACK of each of
 * `nodes` subscribed nodes, as the stargate receives the ACKs.
 *
 * One process, everything real: the Hardhat network over JSON-RPC with ConfigRegistry, one stargate's
 * configuration plane (store, gRPC server, authority with the configuration key), and `nodes` ConfigSubscribers,
 * each with its own gRPC channel and device key (a signed hello over its own challenge), verifying every delta's
 * signature and signer role and every snapshot's hash against the chain before acknowledging it. The simulated
 * nodes share one ConfigAnchor (one process: their chain reads are cached once, as each node's own would be).
 *
 * - propagation.p99.ms@n: `trials` deltas (blocklist.add through `authority.append`), from the call to each node's
 *   ACK; p99 over every (trial, node).
 * - propagation.snapshot.p99.ms@n: one anchoring (the fold of the pending deltas into the next version, its
 *   transaction on the automining chain included), from the call to each node's ACK of the new version.
 *
 * Standalone: BENCH_NODES=50 npx hardhat run scripts/bench/control/propagation.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre from "hardhat";
import { JsonRpcServer } from "hardhat/internal/hardhat-network/jsonrpc/server";
import { Registry } from "prom-client";
import { type Address, createPublicClient, createWalletClient, http } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { hardhat } from "../../lib/hardhatChain";

import { ConfigSubscriber } from "../../../node/configSubscriber";
import type { StargateContext } from "../../../node/context";
import { createConfigPlane } from "../../../node/roles/stargate/configPlane";
import { ConfigAnchor, anchorVersion } from "../../../offchain/common/configAnchor";
import { documentHash, emptyConfig, encodeDocument } from "../../../offchain/common/protocol";

const CHAIN = 31337;
const silentLog = { info() {}, warn() {}, error() {}, debug() {}, child: () => silentLog } as never;

export async function measurePropagation({ nodes = 50, trials = 20 } = {}): Promise<Record<string, number>> {
  const closers: Array<() => Promise<unknown> | unknown> = [];
  try {
    const dir = mkdtempSync(join(tmpdir(), "bench-propagation-"));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const rpcServer = new JsonRpcServer({ hostname: "127.0.0.1", port: 0, provider: hre.network.provider });
    const { port } = await rpcServer.listen();
    closers.push(() => rpcServer.close());
    const rpc = `http://127.0.0.1:${port}`;
    const client = createPublicClient({ chain: hardhat, transport: http(rpc, { retryCount: 0 }) });
    const configKey = generatePrivateKey();
    const publisher = privateKeyToAccount(configKey);
    const [admin] = await hre.ethers.getSigners();
    const contract = await hre.ethers.deployContract("ConfigRegistry", [admin.address, 0n, publisher.address]);
    const registry = (await contract.getAddress()) as Address;
    await hre.network.provider.send("hardhat_setBalance", [publisher.address, "0xde0b6b3a7640000"]);

    const stargate = privateKeyToAccount(generatePrivateKey());
    const accounts = Array.from({ length: nodes }, () => privateKeyToAccount(generatePrivateKey()));
    const admitted = new Set<string>([stargate.address, ...accounts.map((a) => a.address)]);
    const ctx = {
      signer: { account: stargate, chainId: CHAIN },
      log: silentLog,
      metrics: { registry: new Registry() },
      chainAdmits: (device: string) => admitted.has(device),
      contracts: client,
      configRegistry: registry,
      rpc,
    } as unknown as StargateContext;
    const plane = createConfigPlane(
      ctx,
      {
        dataDir: dir,
        listenHost: "127.0.0.1",
        grpcPort: 0,
        configKey,
        anchorIntervalMs: 3_600_000, // anchored only when the benchmark says
        stargates: [],
        publicUrl: "http://127.0.0.1:1",
      },
      { maxSubscribers: nodes + 10, maxPendingHandshakes: nodes + 10 },
    );
    await plane.start();
    closers.push(() => plane.stop());

    // Version 1, anchored as config:publish does, stored as an upload would.
    const bytes = encodeDocument(emptyConfig(1));
    const hash = documentHash(bytes);
    const wallet = createWalletClient({ account: publisher, chain: hardhat, transport: http(rpc) });
    await anchorVersion(wallet, client, registry, 1, hash);
    await plane.authority!.adopt({ version: 1, hash, bytes, document: emptyConfig(1) });

    // ACK times per (version, seq): device -> ms.
    const acks = new Map<string, Map<string, number>>();
    plane.server.onAck((device, version, seq) => {
      const key = `${version}/${seq}`;
      if (!acks.has(key)) acks.set(key, new Map());
      acks.get(key)!.set(device, performance.now());
    });
    const anchor = new ConfigAnchor({ client, address: registry });
    const target = `127.0.0.1:${plane.server.boundPort}`;
    for (const account of accounts) {
      const subscriber = new ConfigSubscriber(
        { signer: { account, chainId: CHAIN }, log: silentLog },
        {
          role: "gateway",
          url: () => "http://127.0.0.1:9",
          stargates: [target],
          anchor,
          isStargate: (address) => address === stargate.address,
          apply() {},
        },
      );
      await subscriber.start();
      closers.push(() => subscriber.stop());
    }
    await allAcked(acks, "1/0", nodes);

    const deltaTimes: number[] = [];
    for (let i = 0; i < trials; i++) {
      const start = performance.now();
      const { base, seq } = await plane.authority!.append({ kind: "blocklist.add", ipRange: `198.51.100.${i + 1}` });
      const at = await allAcked(acks, `${base}/${seq}`, nodes);
      for (const t of at) deltaTimes.push(t - start);
    }
    const start = performance.now();
    await plane.authority!.fold();
    const snapshotTimes = (await allAcked(acks, "2/0", nodes)).map((t) => t - start);
    return {
      [`propagation.p99.ms@${nodes}`]: round(p99(deltaTimes)),
      [`propagation.snapshot.p99.ms@${nodes}`]: round(p99(snapshotTimes)),
    };
  } finally {
    for (const closer of closers.reverse()) await closer();
  }
}

/** Waits until `nodes` devices acknowledged `key`; their ACK times. */
async function allAcked(acks: Map<string, Map<string, number>>, key: string, nodes: number, timeoutMs = 60_000) {
  for (
    const end = Date.now() + timeoutMs;
    (acks.get(key)?.size ?? 0) < nodes;
    await new Promise((r) => setTimeout(r, 2))
  )
    if (Date.now() > end) throw new Error(`only ${acks.get(key)?.size ?? 0} of ${nodes} nodes acknowledged ${key}`);
  return [...acks.get(key)!.values()];
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)];
}

const round = (ms: number) => Math.round(ms * 10) / 10;

if (require.main === module) {
  measurePropagation({ nodes: Number(process.env.BENCH_NODES ?? 50), trials: Number(process.env.BENCH_TRIALS ?? 20) })
    .then((figures) => console.log(JSON.stringify(figures, null, 2)))
    .catch((error) => {
      console.error(error);
      process.exitCode = 1;
    });
}
