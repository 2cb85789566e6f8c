/**
 * Edge DNS against Knot DNS (issue 18, D57): the same zone, rendered to a master file for knotd and served from the
 * configuration by ours, queried with dig (Debian dnsutils) over UDP and TCP; rcode, the aa and tc flags, and the
 * answer and authority sections (normalised: lower-case, sorted) must match. The additional section is not
 * compared (servers may choose what they add).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

import { expect } from "chai";

import { type DnsServer, createDns } from "../../node/roles/stargate/dns";
import { type KnotServer, knotInstalled, startKnot } from "../../scripts/lib/knot";
import { catalogue, dnsConfig, dnsContext, networkConfig, ZONE } from "./dnsFixture";

const run = promisify(execFile);

interface Dig {
  status: string;
  flags: string[];
  answer: string[];
  authority: string[];
}

function section(lines: string[], title: string): string[] {
  const start = lines.indexOf(`;; ${title} SECTION:`);
  if (start < 0) return [];
  const out: string[] = [];
  for (let i = start + 1; i < lines.length && lines[i].trim() !== ""; i++) {
    out.push(lines[i].trim().toLowerCase().split(/\s+/).join(" "));
  }
  return out.sort();
}

async function dig(port: number, args: string[]): Promise<Dig> {
  const { stdout } = await run("dig", ["@127.0.0.1", "-p", String(port), "+norecurse", "+time=2", "+tries=1", ...args]);
  const lines = stdout.split("\n");
  const status = /status: (\w+)/.exec(stdout)?.[1] ?? "none";
  const flagLine = lines.find((l) => l.startsWith(";; flags:")) ?? "";
  const flags = flagLine
    .slice(";; flags:".length)
    .split(";")[0]
    .trim()
    .split(/\s+/)
    .filter((f) => f === "aa" || f === "tc")
    .sort();
  return { status, flags, answer: section(lines, "ANSWER"), authority: section(lines, "AUTHORITY") };
}

const QUERIES: string[][] = [
  ["www.example.com", "A"],
  ["WWW.Example.COM", "A"],
  ["www.example.com", "AAAA"],
  ["chain.example.com", "A"],
  ["alias.example.com", "CNAME"],
  ["dangling.example.com", "A"],
  ["out.example.com", "A"],
  ["long.example.com", "TXT", "+tcp"],
  ["long.example.com", "TXT", "+ignore", "+bufsize=512"],
  ["long.example.com", "TXT", "+ignore", "+noedns"],
  ["many.example.com", "A", "+ignore", "+noedns"],
  ["many.example.com", "A", "+bufsize=1232"],
  ["many.example.com", "A", "+tcp"],
  ["example.com", "TXT"],
  ["example.com", "MX"],
  ["example.com", "NS"],
  ["example.com", "NS", "+tcp"],
  ["example.com", "SOA"],
  ["sub.example.com", "A"],
  ["x.sub.example.com", "AAAA"],
  ["sub.example.com", "NS"],
  ["nothere.example.com", "A"],
  ["nothere.example.com", "A", "+tcp"],
  ["www.example.com", "MX"],
  ["b.example.com", "TXT"],
  ["a.b.example.com", "TXT"],
  ["mail.example.com", "A"],
  ["example.org", "A"],
  ["com", "SOA"],
];

describe("node/dns compared with Knot DNS (issue 18, D57)", function () {
  this.timeout(60_000);
  let knot: KnotServer;
  let ours: DnsServer;

  before(async function () {
    if (!knotInstalled()) {
      // CI installs knot (.ci/run); a machine without it skips rather than failing on a missing tool.
      this.skip();
    }
    knot = await startKnot({ zones: [{ zone: ZONE, serial: 7 }] });
    const config = networkConfig(7, { sites: [] });
    const cat = catalogue();
    ours = createDns(dnsContext(), dnsConfig(), {
      config: () => config,
      catalogue: () => cat,
      bill: () => {},
    })!;
    await ours.start();
  });

  after(async () => {
    await ours?.stop();
    await knot?.stop();
  });

  it("answers like knotd: rcode, aa/tc, answer and authority for every query of the set (UDP, TCP, truncation)", async () => {
    const differences: string[] = [];
    for (const args of QUERIES) {
      const [k, o] = [await dig(knot.port, args), await dig(ours.address()!.port, args)];
      if (JSON.stringify(k) !== JSON.stringify(o)) {
        differences.push(`${args.join(" ")}:\n  knot ${JSON.stringify(k)}\n  ours ${JSON.stringify(o)}`);
      }
    }
    expect(differences.join("\n")).to.equal("");
    // The set covers what it claims to.
    const tc = await dig(ours.address()!.port, ["many.example.com", "A", "+ignore", "+noedns"]);
    expect(tc.flags).to.deep.equal(["aa", "tc"]);
    const full = await dig(ours.address()!.port, ["long.example.com", "TXT", "+tcp"]);
    expect(full.answer).to.have.length(1);
    expect((await dig(ours.address()!.port, ["nothere.example.com", "A"])).status).to.equal("NXDOMAIN");
    expect((await dig(ours.address()!.port, ["example.org", "A"])).status).to.equal("REFUSED");
  });
});
