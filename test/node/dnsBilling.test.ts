/**
 * Edge DNS billing's writes (issue 18 review, D61, R18-10): all zone owners' counts of a flush go to the journal in
 * one append, through the stargate's usage part over a real journal and outbox.
 */
import fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { expect } from "chai";
import type { Address } from "viem";

import type { NetworkConfig } from "../../offchain/common/protocol";
import { Outbox } from "../../node/outbox";
import { type DnsServer, createDns } from "../../node/roles/stargate/dns";
import { createStargateUsage } from "../../node/roles/stargate/usage";
import { OWNER, ZONE, catalogue, dnsConfig, dnsContext, networkConfig, query, udp } from "./dnsFixture";

const OTHER = "0x00000000000000000000000000000000000b0b00" as Address;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts appends to files named `usage.jsonl` while `run` runs. */
async function appends(run: () => Promise<void> | void): Promise<number> {
  const original = fs.appendFileSync;
  let n = 0;
  fs.appendFileSync = ((file: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    if (String(file).endsWith("usage.jsonl")) n++;
    return (original as (...a: unknown[]) => void)(file, ...rest);
  }) as typeof fs.appendFileSync;
  try {
    await run();
  } finally {
    fs.appendFileSync = original;
  }
  return n;
}

describe("node/dns billing's writes (issue 18 review, D61)", function () {
  this.timeout(30_000);

  it("R18-10: 1,000 owners' counts of one flush are one journal append, and each owner's count is kept", async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), "edge-dns-bill-"));
    const ctx = dnsContext();
    const outbox = new Outbox(join(dir, "outbox.jsonl"), ctx.log);
    const outgoing = { put: outbox.put.bind(outbox), flush: async () => 0, pending: () => outbox.items() };
    const usage = createStargateUsage({ ...ctx, outgoing } as never, {
      billing: "http://127.0.0.1:9",
      dataDir: dir,
      usageFlushMs: 60_000,
    });
    const owners = Array.from({ length: 1_000 }, (_, i) => `0x${(i + 1).toString(16).padStart(40, "0")}` as Address);
    const lines = owners.map((customer, i) => ({
      customer,
      service: "dns",
      metric: "queries",
      quantity: BigInt(i + 1),
    }));
    expect(await appends(() => usage.addMany(lines))).to.equal(1);
    expect(usage.status()).to.include({ pending: 1_000, added: ((1_000 * 1_001) / 2).toString() });
    const journalLines = fs.readFileSync(join(dir, fs.readdirSync(dir).find((d) => d.endsWith("-stargate"))!, "usage.jsonl"), "utf8").trim().split("\n"); // prettier-ignore
    expect(journalLines).to.have.length(1_001); // the header and one line per owner
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("R18-10: the DNS server hands every owner's count of a flush in one billMany call", async () => {
    const ctx = dnsContext();
    const config: NetworkConfig = networkConfig(7, { zones: [ZONE, { ...ZONE, name: "example.net", owner: OTHER }] });
    const single: unknown[] = [];
    const many: (readonly (readonly [Address, bigint])[])[] = [];
    const server: DnsServer = createDns(ctx, dnsConfig(), {
      config: () => config,
      catalogue: () => catalogue(),
      bill: (owner, n) => single.push([owner, n]),
      billMany: (counts) => many.push(counts),
    }, { billEveryMs: 200 })!; // prettier-ignore
    await server.start();
    const port = server.address()!.port;
    for (let i = 0; i < 3; i++) await udp(port, query("www.example.com", "A"));
    await udp(port, query("www.example.net", "A"));
    for (let i = 0; i < 20 && many.length === 0; i++) await sleep(50);
    await server.stop();
    expect(single).to.deep.equal([]);
    expect(many[0]).to.deep.equal([
      [OWNER.toLowerCase(), 3n],
      [OTHER.toLowerCase(), 1n],
    ]);
  });
});
