import { expect } from "chai";
import * as packet from "dns-packet";

import type { Zone } from "../../offchain/common/protocol/zones";
import { type DnsIndex, RCODE, answer } from "../../node/roles/stargate/dnsAnswer";
import { DnsIndexer, servingGateways, siteNames, urlAddress } from "../../node/roles/stargate/dnsIndex";
import { indexZones, renderZoneFile, zoneProblems } from "../../node/roles/stargate/dnsZones";
import { type ResponseCache, respond } from "../../node/roles/stargate/dnsWire";
import {
  OWNER,
  SITE,
  SITE_IN_ZONE,
  ZONE,
  catalogue,
  datas,
  decode,
  edns,
  gateway,
  networkConfig,
  query,
} from "./dnsFixture";

const warnings: unknown[] = [];
const log = { warn: (...args: unknown[]) => warnings.push(args) };

function index(over: Parameters<typeof networkConfig>[1] = {}, endpoints?: ReturnType<typeof gateway>[]): DnsIndex {
  return new DnsIndexer({ siteTtl: 5, nameserver: "ns.edge.test", log }).current(
    networkConfig(7, over),
    catalogue(endpoints),
  )!;
}

const ask = (name: string, type: string, idx = index(), rotation = 0) => answer(idx, name, type, rotation);

describe("node/dns answers (issue 18, D57)", () => {
  it("answers A, AAAA, TXT, MX (with glue) and the apex's NS and SOA authoritatively, the SOA serial the version", () => {
    const www = ask("www.example.com", "A");
    expect(www.rcode).to.equal(RCODE.NOERROR);
    expect(www.aa).to.equal(true);
    expect(www.kind).to.equal("zone");
    expect(www.owner).to.equal(OWNER);
    expect(datas(www.answers)).to.deep.equal(['www.example.com A "192.0.2.2"', 'www.example.com A "192.0.2.3"']);
    expect(datas(ask("www.example.com", "AAAA").answers)).to.deep.equal(['www.example.com AAAA "2001:db8::2"']);
    expect(datas(ask("example.com", "TXT").answers)).to.deep.equal(['example.com TXT ["v=spf1 -all"]']);
    const mx = ask("example.com", "MX");
    expect(datas(mx.answers)).to.deep.equal(['example.com MX {"preference":10,"exchange":"mail.example.com"}']);
    expect(datas(mx.additionals)).to.deep.equal(['mail.example.com A "192.0.2.25"']);
    expect(mx.additionals[0]).to.include({ ttl: 120 });
    const ns = ask("example.com", "NS");
    expect(ns.aa).to.equal(true);
    expect(ns.answers).to.have.length(2);
    expect(ns.additionals).to.have.length(2);
    const soa = ask("example.com", "SOA");
    expect(soa.answers[0]).to.deep.include({ type: "SOA", ttl: 300 });
    expect((soa.answers[0] as { data: packet.SoaData }).data).to.include({ serial: 7, mname: "ns1.example.com" });
    // A long TXT goes out as 255-byte strings.
    expect((ask("long.example.com", "TXT").answers[0] as { data: string[] }).data.map((s) => s.length)).to.deep.equal([
      255, 255, 255, 255, 255, 225,
    ]);
  });

  it("follows CNAMEs inside the zone; a dangling one ends NXDOMAIN, one out of the zone ends there", () => {
    const chain = ask("chain.example.com", "A");
    expect(datas(chain.answers)).to.deep.equal([
      'chain.example.com CNAME "alias.example.com"',
      'alias.example.com CNAME "www.example.com"',
      'www.example.com A "192.0.2.2"',
      'www.example.com A "192.0.2.3"',
    ]);
    expect(datas(ask("alias.example.com", "CNAME").answers)).to.deep.equal([
      'alias.example.com CNAME "www.example.com"',
    ]);
    const dangling = ask("dangling.example.com", "A");
    expect(dangling.rcode).to.equal(RCODE.NXDOMAIN);
    expect(dangling.answers).to.have.length(1);
    expect(dangling.authorities[0].type).to.equal("SOA");
    const out = ask("out.example.com", "A");
    expect(out.rcode).to.equal(RCODE.NOERROR);
    expect(datas(out.answers)).to.deep.equal(['out.example.com CNAME "www.example.org"']);
    expect(out.authorities).to.deep.equal([]);
  });

  it("NXDOMAIN and NODATA carry the SOA with the negative TTL; an empty non-terminal is NODATA", () => {
    const nx = ask("nothere.example.com", "A");
    expect(nx.rcode).to.equal(RCODE.NXDOMAIN);
    expect(nx.aa).to.equal(true);
    expect(nx.authorities).to.have.length(1);
    expect(nx.authorities[0]).to.deep.include({ type: "SOA", ttl: 60, name: "example.com" });
    const nodata = ask("www.example.com", "MX");
    expect(nodata.rcode).to.equal(RCODE.NOERROR);
    expect(nodata.answers).to.deep.equal([]);
    expect(nodata.authorities[0].type).to.equal("SOA");
    expect(ask("b.example.com", "A").rcode).to.equal(RCODE.NOERROR);
    expect(ask("b.example.com", "A").authorities[0].type).to.equal("SOA");
  });

  it("a name at or below an NS cut is a referral: no aa, the NS in authority, the glue in additional", () => {
    for (const name of ["sub.example.com", "x.y.sub.example.com", "ns.sub.example.com"]) {
      const r = ask(name, "A");
      expect(r.rcode, name).to.equal(RCODE.NOERROR);
      expect(r.aa, name).to.equal(false);
      expect(r.answers, name).to.deep.equal([]);
      expect(datas(r.authorities), name).to.deep.equal(['sub.example.com NS "ns.sub.example.com"']);
      expect(datas(r.additionals), name).to.deep.equal(['ns.sub.example.com A "192.0.2.99"']);
    }
  });

  it("REFUSED outside our zones and site names, and not billed", () => {
    const r = ask("example.org", "A");
    expect(r).to.deep.include({ rcode: RCODE.REFUSED, aa: false, kind: "refused" });
    expect(r.owner).to.equal(undefined);
    expect(ask("com", "NS").rcode).to.equal(RCODE.REFUSED);
  });

  it("site names answer the healthy, not-draining gateways with the site TTL, rotated per query", () => {
    const idx = index();
    const first = ask(SITE, "A", idx, 0);
    expect(first).to.deep.include({ rcode: RCODE.NOERROR, aa: true, kind: "site" });
    expect(first.owner).to.equal(undefined);
    expect(datas(first.answers)).to.deep.equal([`${SITE} A "127.0.0.11"`, `${SITE} A "127.0.0.12"`]);
    expect(first.answers.every((a) => (a as { ttl: number }).ttl === 5)).to.equal(true);
    expect(datas(ask(SITE, "A", idx, 1).answers)).to.deep.equal([`${SITE} A "127.0.0.12"`, `${SITE} A "127.0.0.11"`]);
    // Draining (any case) takes a gateway out; a site inside a customer's zone answers the same.
    const drained = index({ draining: [gateway(1).device.toLowerCase() as `0x${string}`] });
    expect(datas(ask(SITE_IN_ZONE, "A", drained).answers)).to.deep.equal([`${SITE_IN_ZONE} A "127.0.0.12"`]);
    // No AAAA gateway: NODATA with the site's SOA; other types at a site outside zones: NODATA too.
    const aaaa = ask(SITE, "AAAA", idx);
    expect(aaaa.answers).to.deep.equal([]);
    expect(aaaa.authorities[0]).to.deep.include({ type: "SOA", name: SITE });
    expect(ask(SITE, "TXT", idx).authorities[0].type).to.equal("SOA");
    const soa = ask(SITE, "SOA", idx).answers[0] as { data: packet.SoaData };
    expect(soa.data).to.deep.include({
      mname: "ns.edge.test",
      rname: "hostmaster.ns.edge.test",
      serial: 7,
      minimum: 5,
    });
    expect(ask(`x.${SITE}`, "A", idx).rcode).to.equal(RCODE.NXDOMAIN);
    // A CNAME of a customer's zone into a site name is followed (billed to the zone's owner).
    const cdn = index({ zones: [{ ...ZONE, records: [{ name: "cdn", type: "CNAME", data: SITE }] }] });
    const viaCname = ask("cdn.example.com", "A", cdn);
    expect(viaCname.kind).to.equal("zone");
    expect(datas(viaCname.answers)).to.have.length(3);
  });

  it("R18-1: a site name in another owner's zone is no site: the zone's records answer there and below it", () => {
    const mallory = "0x000000000000000000000000000000000000bad0";
    const zone = { ...ZONE, records: [...ZONE.records, { name: "x", type: "A" as const, data: "192.0.2.99" }] };
    const sites = [
      { id: "apex", hostname: "example.com", owner: mallory },
      { id: "www", hostname: "WWW.example.com.", owner: mallory },
      { id: "x", hostname: "x.example.com", owner: mallory },
      { id: "shop", hostname: SITE_IN_ZONE, owner: OWNER.toUpperCase().replace("0X", "0x") },
    ];
    const idx = index({ zones: [zone], sites });
    expect([...idx.sites]).to.deep.equal([SITE_IN_ZONE]); // the zone owner's own site stays a site
    const apex = ask("example.com", "A", idx);
    expect(apex.kind).to.equal("zone");
    expect(datas(apex.answers)).to.deep.equal(
      datas(ask("example.com", "A", index({ zones: [zone], sites: [] })).answers),
    );
    const below = ask("y.x.example.com", "A", idx); // not hidden under a made-up SOA
    expect([below.kind, below.rcode, (below.authorities[0] as { name: string }).name]).to.deep.equal([
      "zone",
      RCODE.NXDOMAIN,
      "example.com",
    ]);
    expect(datas(ask("x.example.com", "A", idx).answers)).to.deep.equal(['x.example.com A "192.0.2.99"']);
    expect(ask(SITE_IN_ZONE, "A", idx).kind).to.equal("site");
  });

  it("no serving gateway: SERVFAIL at site names (a resolver tries another server)", () => {
    const none = index({}, [gateway(1, false)]);
    expect(ask(SITE, "A", none).rcode).to.equal(RCODE.SERVFAIL);
    // A gateway whose URL names a host, not an IP, is not answered.
    const named = { ...gateway(4), url: "https://gw.example.net" };
    expect(ask(SITE, "A", index({}, [named])).rcode).to.equal(RCODE.SERVFAIL);
    expect(urlAddress("http://[::1]:80")).to.deep.equal({ aaaa: "::1" });
    expect(servingGateways(catalogue([{ ...gateway(5), url: "http://[2001:db8::5]:80" }]), []).aaaa).to.deep.equal([
      "2001:db8::5",
    ]);
    expect([...siteNames([{ hostname: "A.Example.COM." }, null, { hostname: "bad host" }])]).to.deep.equal([
      "a.example.com",
    ]);
  });
});

describe("node/dns zones (issue 18, D57)", () => {
  const bad = (records: Zone["records"]): Zone => ({ ...ZONE, records });

  it("zoneProblems: bad addresses, a CNAME not alone or at the apex, data below a cut, TTLs differing, duplicates", () => {
    expect(zoneProblems(ZONE)).to.deep.equal([]);
    const problems = zoneProblems(
      bad([
        { name: "a", type: "A", data: "300.1.1.1" },
        { name: "b", type: "AAAA", data: "12:::::1" },
        { name: "c", type: "CNAME", data: "x.example.com" },
        { name: "c", type: "TXT", data: "y" },
        { name: "@", type: "CNAME", data: "x.example.com" },
        { name: "d", type: "NS", data: "ns.example.net" },
        { name: "e.d", type: "TXT", data: "hidden" },
        { name: "f", type: "A", ttl: 5, data: "192.0.2.1" },
        { name: "f", type: "A", ttl: 6, data: "192.0.2.2" },
        { name: "g", type: "TXT", data: "dup" },
        { name: "g", type: "TXT", data: "dup" },
        { name: "h", type: "TXT", data: "caf\u00e9" },
      ]),
    );
    expect(problems.join("\n")).to.match(/a A: 300.1.1.1/);
    expect(problems.join("\n")).to.match(/b AAAA/);
    expect(problems.join("\n")).to.match(/c CNAME: an alias must be alone/);
    expect(problems.join("\n")).to.match(/@ CNAME: the apex cannot be an alias/);
    expect(problems.join("\n")).to.match(/e.d: only glue/);
    expect(problems.join("\n")).to.match(/f A: the records' TTLs differ/);
    expect(problems.join("\n")).to.match(/g TXT: a duplicate/);
    expect(problems.join("\n")).to.match(/h TXT: only printable/);
  });

  it("an invalid zone is not served (REFUSED), is logged once per distinct problem set, and never throws", () => {
    warnings.length = 0;
    const indexer = new DnsIndexer({ siteTtl: 5, nameserver: "ns.edge.test", log });
    const broken = { ...ZONE, records: [{ name: "@", type: "CNAME" as const, data: "x.example.net" }] };
    const cat = catalogue();
    for (const version of [8, 9]) {
      const idx = indexer.current(networkConfig(version, { zones: [broken] }), cat)!;
      expect(idx.zones.zones.size).to.equal(0);
      expect(idx.zones.invalid.map((z) => z.name)).to.deep.equal(["example.com"]);
      expect(answer(idx, "example.com", "A", 0).rcode).to.equal(RCODE.REFUSED);
    }
    expect(warnings).to.have.length(1);
    // The same objects again: the index is not rebuilt.
    const config = networkConfig(10);
    expect(indexer.current(config, cat)).to.equal(indexer.current(config, cat));
    expect(indexZones([ZONE, ZONE], 1).invalid[0].problems).to.deep.equal(["a second zone of the same apex"]);
  });

  it("renderZoneFile: absolute names, the serial, quoted 255-byte TXT strings", () => {
    const text = renderZoneFile({ ...ZONE, records: [...ZONE.records.slice(0, 3), { name: "q", type: "TXT", data: 'a"b\\c' }] }, 42); // prettier-ignore
    expect(text).to.contain("example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 42 3600 600 86400 60");
    expect(text).to.contain("ns1.example.com. 300 IN A 192.0.2.53");
    expect(text).to.contain('q.example.com. 300 IN TXT "a\\"b\\\\c"');
  });
});

describe("node/dns wire (issue 18, D57)", () => {
  const lookup = (name: string, type: string) => answer(index(), name, type, 0);

  it("echoes the question as asked, EDNS with 1232, truncates past 512 or the EDNS size, and refuses AXFR", () => {
    const r = respond(query("WwW.Example.COM", "A"), false, lookup);
    const decoded = packet.decode(r.response!);
    expect(decoded.questions![0].name).to.equal("WwW.Example.COM");
    expect(decoded.answers![0].name).to.equal("WwW.Example.COM");
    expect(decoded.flag_aa).to.equal(true);
    expect(decoded.flag_rd).to.equal(true);
    const small = respond(query("many.example.com", "A"), false, lookup);
    expect(small.truncated).to.equal(true);
    expect(packet.decode(small.response!)).to.deep.include({ flag_tc: true, answers: [] });
    const big = respond(query("many.example.com", "A", edns(4096)), false, lookup);
    expect(big.truncated).to.equal(false);
    const opt = packet.decode(big.response!).additionals!.find((a) => a.type === "OPT") as packet.OptAnswer;
    expect(opt.udpPayloadSize).to.equal(1232);
    expect(respond(query("long.example.com", "TXT", edns(1232)), false, lookup).truncated).to.equal(true);
    expect(respond(query("long.example.com", "TXT"), true, lookup).truncated).to.equal(false);
    expect(respond(query("example.com", "AXFR"), true, lookup).rcode).to.equal(RCODE.REFUSED);
    expect(respond(query("example.com", "A", { ...edns(512) }), false, lookup).truncated).to.equal(false);
  });

  it("a kept response gets the new query's id, RD bit and spelling; rotated site answers are not kept", () => {
    const cache: ResponseCache = new Map();
    const first = respond(query("www.example.com", "A"), false, lookup, cache);
    expect(cache.size).to.equal(1);
    const again = query("WWW.example.COM", "A", { flags: 0 });
    const hit = decode(respond(again, false, () => expect.fail("answered from the cache"), cache).response!);
    expect(hit.id).to.equal(again.readUInt16BE(0));
    expect(hit.flag_rd).to.equal(false);
    expect(hit.questions![0].name).to.equal("WWW.example.COM");
    expect(hit.answers!.map((a) => a.name)).to.deep.equal(["WWW.example.COM", "WWW.example.COM"]);
    expect(datas(hit.answers)).to.have.length(2);
    expect(first.reply!.owner).to.equal(OWNER);
    // Another limit (EDNS) is another entry; site answers rotate and are never kept.
    respond(query("www.example.com", "A", edns(1232)), false, lookup, cache);
    respond(query(SITE, "A"), false, lookup, cache);
    expect(cache.size).to.equal(2);
  });

  it("malformed input: short or response packets dropped, garbage FORMERR, other opcodes NOTIMP, EDNS 1 BADVERS", () => {
    expect(respond(Buffer.from([1, 2, 3]), false, lookup).response).to.equal(undefined);
    const asResponse = query("example.com", "A");
    asResponse[2] |= 0x80;
    expect(respond(asResponse, false, lookup).response).to.equal(undefined);
    const garbage = Buffer.concat([query("example.com", "A").subarray(0, 12), Buffer.from([0xff, 0xff, 0xff])]);
    const formerr = respond(garbage, false, lookup);
    expect(formerr.rcode).to.equal(RCODE.FORMERR);
    expect(packet.decode(formerr.response!).id).to.equal(garbage.readUInt16BE(0));
    const notify = query("example.com", "SOA");
    notify[2] |= 4 << 3;
    expect(respond(notify, false, lookup).rcode).to.equal(RCODE.NOTIMP);
    const two = packet.encode({ type: "query", id: 1, questions: [{ name: "a.example.com", type: "A" }, { name: "b.example.com", type: "A" }] }); // prettier-ignore
    expect(respond(two, false, lookup).rcode).to.equal(RCODE.FORMERR);
    const v1 = edns(1232);
    (v1.additionals[0] as { ednsVersion: number }).ednsVersion = 1;
    expect(respond(query("example.com", "A", v1), false, lookup).rcode).to.equal(16);
    const chaos = packet.encode({ type: "query", id: 1, questions: [{ name: "version.bind", type: "TXT", class: "CH" }] }); // prettier-ignore
    expect(respond(chaos, false, lookup).rcode).to.equal(RCODE.REFUSED);
    // A name pointing at itself (a decompression loop) is FORMERR, not a hang.
    const loop = Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    expect(respond(loop, false, lookup).rcode).to.equal(RCODE.FORMERR);
    // Random bytes never throw.
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(Array.from({ length: 12 + (i % 60) }, () => Math.floor(Math.random() * 256)));
      expect(() => respond(bytes, i % 2 === 0, lookup)).not.to.throw();
    }
  });
});
