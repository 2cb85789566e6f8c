/**
 * Edge DNS index at scale (issue 18 review, D61): per-zone indexes reused across configurations and built off the
 * query path (R18-3).
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";

import { expect } from "chai";

import type { NetworkConfig } from "../../offchain/common/protocol";
import type { Zone } from "../../offchain/common/protocol/zones";
import { answer } from "../../node/roles/stargate/dnsAnswer";
import { DnsIndexer } from "../../node/roles/stargate/dnsIndex";
import { indexZones, zoneHash } from "../../node/roles/stargate/dnsZones";
import { OWNER, ZONE, catalogue, networkConfig } from "./dnsFixture";

const log = { warn: () => undefined };
const data = (records: { data?: unknown }[]) => records[0].data;

function zones(count: number, records: number): Zone[] {
  return Array.from({ length: count }, (_, z) => ({
    ...ZONE,
    name: `z${z}.example`,
    owner: OWNER,
    records: Array.from({ length: records }, (_, i) => ({
      name: `h${i}`,
      type: "A" as const,
      data: `192.0.${i % 250}.${(z + i) % 250}`,
    })),
  }));
}

describe("node/dns index at scale (issue 18 review, D61)", function () {
  this.timeout(120_000);

  it("R18-3: one zone changed of 1,000 x 200 records: one zone indexed again, off the query path; the others' indexes reused", async () => {
    const cat = catalogue();
    const first: NetworkConfig = { ...networkConfig(1), zones: zones(1_000, 200) };
    const indexer = new DnsIndexer({ siteTtl: 5, nameserver: "ns.edge.test", log, background: true });
    let t = performance.now();
    const old = indexer.current(first, cat)!;
    const initialMs = performance.now() - t;
    expect(old.zones.zones.size).to.equal(1_000);

    // What a delta does (applyDeltas clones the document): new objects, one zone changed.
    const second = structuredClone(first);
    second.version = 2;
    second.zones[500].records[0].data = "192.0.2.200";
    t = performance.now();
    indexZones(second.zones, 2); // the D57 indexer: every zone again, in the query that saw the change
    const beforeMs = performance.now() - t;

    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    t = performance.now();
    const during = indexer.current(second, cat)!;
    const inQueryMs = performance.now() - t;
    expect(data(answer(during, "h0.z500.example", "A", 0).answers as never)).to.equal("192.0.0.0"); // still the old one
    t = performance.now();
    await indexer.settled();
    const backgroundMs = performance.now() - t;
    delay.disable();
    const after = indexer.current(second, cat)!;
    expect(after).to.not.equal(during);
    expect(data(answer(after, "h0.z500.example", "A", 0).answers as never)).to.equal("192.0.2.200");
    expect(indexer.stats).to.deep.equal({ indexed: 1, reused: 999 });
    expect(after.zones.zones.get("z1.example")!.names).to.equal(old.zones.zones.get("z1.example")!.names);
    expect(data(answer(after, "z1.example", "SOA", 0).answers as never)).to.include({ serial: 2 });
    const longestBlockMs = delay.max / 1e6;
    console.log(
      `      R18-3 figures: first build ${initialMs.toFixed(0)} ms; a one-zone delta: D57 ${beforeMs.toFixed(0)} ms ` +
        `in the query, now ${inQueryMs.toFixed(1)} ms in the query + ${backgroundMs.toFixed(0)} ms in the ` +
        `background (longest event-loop block ${longestBlockMs.toFixed(0)} ms)`,
    );
    expect(inQueryMs).to.be.below(beforeMs / 10);
    expect(longestBlockMs).to.be.below(beforeMs / 4);
  });

  it("R18-3: a zone hashes the same whatever its keys' order or its owner's case, and differently when a record changes", () => {
    const shuffled = JSON.parse(JSON.stringify({ records: ZONE.records, soa: ZONE.soa, ttl: ZONE.ttl, owner: OWNER.toUpperCase().replace("0X", "0x"), name: ZONE.name })) as Zone; // prettier-ignore
    expect(zoneHash(shuffled)).to.equal(zoneHash(ZONE));
    const changed = structuredClone(ZONE);
    changed.records[0] = { ...changed.records[0], ttl: 10 };
    expect(zoneHash(changed)).to.not.equal(zoneHash(ZONE));
  });
});
