/**
 * Edge DNS tests' shared parts: a customer's zone exercising every record type, a configuration and catalogue
 * around it, a stargate-like context built from real parts (a prom-client registry, a Fastify logger), and
 * clients that query over UDP and TCP with dns-packet.
 */
import { createSocket } from "node:dgram";
import { connect } from "node:net";

import * as packet from "dns-packet";
import type { DecodedPacket, Packet } from "dns-packet";
import { Registry } from "prom-client";
import type { Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { createTypedApp } from "../../offchain/common/http";
import { type NetworkConfig, emptyConfig } from "../../offchain/common/protocol";
import type { Zone } from "../../offchain/common/protocol/zones";
import type { Catalogue, StargateConfig, StargateContext } from "../../node/context";

export const OWNER = "0x00000000000000000000000000000000000a11ce" as Address;
export const LONG_TEXT = "k=".padEnd(1500, "x");

export const ZONE: Zone = {
  name: "example.com",
  owner: OWNER,
  ttl: 300,
  soa: {
    mname: "ns1.example.com",
    rname: "hostmaster.example.com",
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minimum: 60,
  },
  records: [
    { name: "@", type: "NS", data: "ns1.example.com" },
    { name: "@", type: "NS", data: "ns2.example.com" },
    { name: "ns1", type: "A", data: "192.0.2.53" },
    { name: "ns2", type: "A", data: "192.0.2.54" },
    { name: "@", type: "A", data: "192.0.2.1" },
    { name: "www", type: "A", data: "192.0.2.2" },
    { name: "www", type: "A", data: "192.0.2.3" },
    { name: "www", type: "AAAA", data: "2001:db8::2" },
    { name: "alias", type: "CNAME", data: "www.example.com" },
    { name: "chain", type: "CNAME", data: "alias.example.com" },
    { name: "dangling", type: "CNAME", data: "nothere.example.com" },
    { name: "out", type: "CNAME", data: "www.example.org" },
    { name: "@", type: "MX", data: { preference: 10, exchange: "mail.example.com" } },
    { name: "mail", type: "A", ttl: 120, data: "192.0.2.25" },
    { name: "@", type: "TXT", data: "v=spf1 -all" },
    { name: "long", type: "TXT", data: LONG_TEXT },
    { name: "sub", type: "NS", data: "ns.sub.example.com" },
    { name: "ns.sub", type: "A", data: "192.0.2.99" },
    { name: "a.b", type: "TXT", data: "deep" },
    ...Array.from({ length: 40 }, (_, i) => ({ name: "many", type: "A" as const, data: `198.51.100.${i + 1}` })),
  ],
};

export const SITE = "cdn.edge.test";
export const SITE_IN_ZONE = "shop.example.com";

export const gateway = (n: number, healthy = true) => ({
  device: privateKeyToAccount(`0x${n.toString(16).padStart(64, "0")}`).address,
  role: "gateway" as const,
  url: `http://127.0.0.${10 + n}:8080`,
  healthy,
  version: 1,
});

export function networkConfig(version = 7, extra: Partial<NetworkConfig> = {}): NetworkConfig {
  return {
    ...emptyConfig(version),
    zones: [ZONE],
    sites: [
      { id: "cdn", hostname: SITE },
      { id: "shop", hostname: SITE_IN_ZONE, owner: OWNER }, // the zone's owner (R18-1)
      { id: "bad", hostname: 42 },
    ],
    ...extra,
  };
}

export const catalogue = (endpoints = [gateway(1), gateway(2), gateway(3, false)]): Catalogue => ({
  atMs: 1,
  endpoints,
});

export const dnsConfig = (over: Partial<StargateConfig> = {}): StargateConfig =>
  ({
    listenHost: "127.0.0.1",
    dnsPort: 0,
    dnsSiteTtl: 5,
    dnsNameserver: "ns.edge.test",
    ...over,
  }) as StargateConfig;

/** A stargate-like context from real parts: its own metrics registry and a Fastify (pino) logger. */
export function dnsContext(): StargateContext & { metrics: { registry: Registry } } {
  const registry = new Registry();
  const app = createTypedApp({ logger: { level: "error" } });
  const account = privateKeyToAccount(generatePrivateKey());
  return {
    signer: { account, chainId: 31337 },
    log: app.log,
    metrics: { registry, jobs: undefined as never },
    serving: () => true,
  } as unknown as StargateContext & { metrics: { registry: Registry } };
}

export const query = (name: string, type: packet.RecordType, extra: Partial<Packet> = {}): Buffer =>
  packet.encode({
    type: "query",
    id: Math.floor(Math.random() * 65535),
    flags: packet.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" }],
    ...extra,
  });

export const edns = (size: number) => ({
  additionals: [
    { name: ".", type: "OPT" as const, udpPayloadSize: size, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }, // prettier-ignore
  ],
});

/** Sends raw bytes over UDP; the response's bytes, or undefined after `timeoutMs`. */
export function udpRaw(port: number, msg: Buffer, timeoutMs = 1_000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    const done = (value: Buffer | undefined) => {
      clearTimeout(timer);
      socket.close();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on("message", (data) => done(data));
    socket.send(msg, port, "127.0.0.1");
  });
}

export async function udp(port: number, msg: Buffer): Promise<DecodedPacket & { rcode: string; size: number }> {
  const bytes = await udpRaw(port, msg);
  if (!bytes) throw new Error("no UDP answer");
  return Object.assign(packet.decode(bytes), { size: bytes.length }) as never;
}

/** Sends messages over one TCP connection and reads as many answers. */
export function tcp(port: number, msgs: Buffer[], timeoutMs = 2_000): Promise<(DecodedPacket & { rcode: string })[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let pending = Buffer.alloc(0);
    const out: (DecodedPacket & { rcode: string })[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TCP: ${out.length} of ${msgs.length} answers`));
    }, timeoutMs);
    socket.on("error", reject);
    socket.on("data", (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        out.push(packet.decode(pending.subarray(2, 2 + pending.readUInt16BE(0))) as never);
        pending = pending.subarray(2 + pending.readUInt16BE(0));
      }
      if (out.length === msgs.length) {
        clearTimeout(timer);
        socket.end();
        resolve(out);
      }
    });
    for (const msg of msgs) {
      const frame = Buffer.alloc(2 + msg.length);
      frame.writeUInt16BE(msg.length, 0);
      msg.copy(frame, 2);
      socket.write(frame);
    }
  });
}

/** The data of a section's records, for comparisons. */
export const datas = (records: packet.Answer[] | undefined) =>
  (records ?? []).map((r) => `${r.name} ${r.type} ${"data" in r ? JSON.stringify(r.data) : ""}`);

/** dns-packet's decode with the rcode it returns (its types omit it). */
export const decode = (bytes: Buffer) => packet.decode(bytes) as DecodedPacket & { rcode: string };
