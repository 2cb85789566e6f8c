import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  MAX_SITES,
  MAX_SITES_FILE_BYTES,
  type Site,
  SiteFile,
  SiteIndex,
  normalizeHost,
  parseSites,
} from "../../node/roles/gateway/sites";
import { isEdgeError } from "../../offchain/common/errors";

const OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

const site = (over: Record<string, unknown> = {}) => ({
  id: "docs",
  hostname: "docs.example.test",
  owner: OWNER.toLowerCase(),
  origin: "http://127.0.0.1:9000/",
  ...over,
});

/** The problems parseSites names for a document, or [] when it accepts it. */
function problemsOf(json: unknown): string[] {
  try {
    parseSites(json);
    return [];
  } catch (error) {
    expect(isEdgeError(error) && error.code).to.equal("EDGE_NODE_SITES_INVALID");
    return (error as { details: { problems: string[] } }).details.problems;
  }
}

class Log {
  errors: { obj: object; msg: string }[] = [];
  infos: string[] = [];
  info = (_: object, msg: string) => void this.infos.push(msg);
  warn = () => undefined;
  error = (obj: object, msg: string) => void this.errors.push({ obj, msg });
}

describe("gateway sites", function () {
  describe("parseSites", function () {
    it("accepts a valid document: defaults filled, owner checksummed, origin without a trailing slash", function () {
      const sites = parseSites({
        sites: [site(), site({ id: "shop-2", hostname: "xn--shp-7ka.example", cache: { defaultTtlSeconds: 60 } })],
      });
      expect(sites[0]).to.deep.equal({
        id: "docs",
        hostname: "docs.example.test",
        owner: OWNER,
        origin: "http://127.0.0.1:9000",
        cache: { defaultTtlSeconds: 0, maxObjectBytes: 10 * 1024 * 1024 },
      });
      expect(sites[1].cache).to.deep.equal({ defaultTtlSeconds: 60, maxObjectBytes: 10 * 1024 * 1024 });
      expect(parseSites({ sites: [site({ origin: "https://Origin.example:8443/base/" })] })[0].origin).to.equal(
        "https://origin.example:8443/base",
      );
      expect(parseSites({ sites: [] })).to.deep.equal([]);
    });

    const cases: [string, unknown, RegExp][] = [
      ["a document that is not an object", [], /the document must be an object with a "sites" array/],
      ["a missing sites array", {}, /the document: must have required properties sites/],
      ["an unknown top-level property", { sites: [], extra: 1 }, /^extra: unknown property$/],
      ["an unknown site property", { sites: [site({ port: 80 })] }, /^sites\[0\] \("docs"\)\.port: unknown property$/],
      ["an upper-case id", { sites: [site({ id: "Docs" })] }, /sites\[0\]\.id must be 1 to 63 characters of a-z/],
      ["an id of 64 characters", { sites: [site({ id: "a".repeat(64) })] }, /sites\[0\]\.id must be 1 to 63/],
      ["an id starting with -", { sites: [site({ id: "-docs" })] }, /sites\[0\]\.id must be/],
      ["an upper-case hostname", { sites: [site({ hostname: "Docs.example.test" })] }, /must be lower-case/],
      ["a hostname with a port", { sites: [site({ hostname: "docs.example.test:80" })] }, /must not carry a port/],
      ["a hostname with a trailing dot", { sites: [site({ hostname: "docs.example." })] }, /must not end with a dot/],
      ["an IPv4 hostname", { sites: [site({ hostname: "10.0.0.1" })] }, /must be a DNS name, not an IP address/],
      ["an IPv6 hostname", { sites: [site({ hostname: "::1" })] }, /must be a DNS name, not an IP address/],
      ["a numeric top-level label", { sites: [site({ hostname: "a.123" })] }, /must not end in a numeric label/],
      ["a label of 64 characters", { sites: [site({ hostname: `${"a".repeat(64)}.test` })] }, /has an invalid label/],
      ["a label ending with -", { sites: [site({ hostname: "docs-.test" })] }, /has an invalid label "docs-"/],
      ["an empty label", { sites: [site({ hostname: "docs..test" })] }, /has an invalid label ""/],
      ["an underscore", { sites: [site({ hostname: "my_site.test" })] }, /has an invalid label "my_site"/],
      [
        "a hostname over 253",
        { sites: [site({ hostname: `${"a.".repeat(127)}ab` })] },
        /hostname: must not have more than 253 characters$/,
      ],
      ["an owner that is no address", { sites: [site({ owner: "0x1234" })] }, /owner must be an address \(0x and 40/],
      ["an owner with a bad checksum", { sites: [site({ owner: OWNER.replace("C8", "c8") })] }, /bad EIP-55 checksum/],
      ["an ftp origin", { sites: [site({ origin: "ftp://origin.test" })] }, /origin must be an http or https URL/],
      ["a relative origin", { sites: [site({ origin: "/var/www" })] }, /origin must be an absolute http or https URL/],
      ["an origin with credentials", { sites: [site({ origin: "http://u:p@o.test" })] }, /must not carry credentials/],
      ["an origin with a query", { sites: [site({ origin: "http://o.test/?a=1" })] }, /must not have a query/],
      ["an origin with an empty query", { sites: [site({ origin: "http://o.test/?" })] }, /must not have a query/],
      ["an origin with a fragment", { sites: [site({ origin: "http://o.test/#top" })] }, /must not have a fragment/],
      [
        "a negative TTL",
        { sites: [site({ cache: { defaultTtlSeconds: -1 } })] },
        /cache\.defaultTtlSeconds: must be >= 0/,
      ],
      [
        "a fractional TTL",
        { sites: [site({ cache: { defaultTtlSeconds: 1.5 } })] },
        /defaultTtlSeconds: must be integer/,
      ],
      [
        "an object limit over 100 MiB",
        { sites: [site({ cache: { maxObjectBytes: 100 * 1024 * 1024 + 1 } })] },
        /cache\.maxObjectBytes: must be <= 104857600/,
      ],
      ["an unknown cache rule", { sites: [site({ cache: { vary: true } })] }, /cache\.vary: unknown property/],
      ["a missing owner", { sites: [{ id: "a", hostname: "a.test", origin: "http://o.test" }] }, /required.*owner/],
    ];
    for (const [what, json, message] of cases) {
      it(`refuses ${what}`, function () {
        const problems = problemsOf(json);
        expect(
          problems.some((p) => message.test(p)),
          problems.join(" | "),
        ).to.equal(true);
      });
    }

    it("refuses a duplicate id and a duplicate hostname, naming the first", function () {
      const problems = problemsOf({
        sites: [site(), site({ hostname: "other.test" }), site({ id: "other" })],
      });
      expect(problems).to.deep.equal([
        'sites[1] ("docs").id repeats the id of sites[0]',
        'sites[2] ("other").hostname repeats the hostname of sites[0]',
      ]);
    });

    it("names every problem at once, in one line, and at most 50", function () {
      let message = "";
      try {
        parseSites({ sites: [site({ id: "A", origin: "ftp://x" }), site({ id: "b", hostname: "B.test" })] });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).to.match(/^invalid sites: sites\[0\]\.id must be .*; sites\[0\]\.origin must be .*; /);
      expect(message).to.match(/sites\[1\] \("b"\)\.hostname "B.test" must be lower-case$/);
      expect(message).to.not.include("\n");
      const many = problemsOf({ sites: Array.from({ length: 80 }, (_, i) => site({ id: `s${i}`, origin: "x" })) });
      expect(many).to.have.length(51);
      expect(many[50]).to.match(/^and \d+ more problems$/);
    });

    it("refuses more than 10,000 sites", function () {
      const sites = Array.from({ length: MAX_SITES + 1 }, (_, i) => site({ id: `s${i}`, hostname: `s${i}.test` }));
      expect(problemsOf({ sites })).to.deep.equal(["sites: must not have more than 10000 items"]);
    });
  });

  describe("normalizeHost", function () {
    const cases: [string | undefined, string | undefined][] = [
      ["docs.example.test", "docs.example.test"],
      ["Docs.Example.TEST", "docs.example.test"],
      ["docs.example.test:8080", "docs.example.test"],
      ["docs.example.test.", "docs.example.test"],
      ["DOCS.example.test.:80", "docs.example.test"],
      ["docs.example.test..", undefined],
      ["docs.example.test:", undefined],
      ["docs.example.test:99999", undefined],
      ["docs.example.test:80:80", undefined],
      ["docs.example.test:http", undefined],
      ["[::1]:80", undefined],
      ["[::1]", undefined],
      ["::1", undefined],
      ["127.0.0.1:80", undefined],
      ["", undefined],
      [undefined, undefined],
      ["bad host.test", undefined],
      [`${"a".repeat(300)}.test`, undefined],
    ];
    for (const [input, output] of cases) {
      it(`${JSON.stringify(input)} -> ${JSON.stringify(output)}`, function () {
        expect(normalizeHost(input)).to.equal(output);
      });
    }
  });

  describe("SiteIndex", function () {
    it("looks a Host header up by its normalized name, and sites by id", function () {
      const index = new SiteIndex(parseSites({ sites: [site()] }), "v1");
      expect(index.lookup("docs.example.test")?.id).to.equal("docs");
      expect(index.lookup("DOCS.example.test.:8080")?.id).to.equal("docs");
      expect(index.lookup("other.test")).to.equal(undefined);
      expect(index.lookup(undefined)).to.equal(undefined);
      expect(index.get("docs")?.hostname).to.equal("docs.example.test");
      expect(Object.isFrozen(index.sites[0])).to.equal(true);
    });
  });

  describe("SiteFile", function () {
    let dir: string;
    let file: string;
    const write = (json: unknown) => writeFileSync(file, typeof json === "string" ? json : JSON.stringify(json));
    beforeEach(function () {
      dir = mkdtempSync(join(tmpdir(), "edge-sites-"));
      file = join(dir, "sites.json");
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("loads at construction; a missing or invalid file throws with the path and the problem", function () {
      write({ sites: [site()] });
      const sites = new SiteFile(file, new Log());
      expect(sites.lookup("docs.example.test")?.owner).to.equal(OWNER);
      expect(sites.version).to.match(/^[0-9a-f]{64}$/);
      expect(sites.lastError).to.equal(null);
      expect(() => new SiteFile(join(dir, "none.json"), new Log())).to.throw(
        /sites file .*none.json: cannot be read: ENOENT/,
      );
      write("{ not json");
      expect(() => new SiteFile(file, new Log())).to.throw(/sites file .*sites.json: not JSON/);
      write({ sites: [site({ id: "Docs" })] });
      expect(() => new SiteFile(file, new Log())).to.throw(/sites file .*: invalid sites: sites\[0\]\.id must be/);
    });

    it("reload() picks up a change atomically and tells the listeners; an unchanged file is no new version", function () {
      write({ sites: [site()] });
      const sites = new SiteFile(file, new Log());
      const seen: (readonly Site[])[] = [];
      sites.onChange((s) => seen.push(s));
      const before = sites.version;
      expect(sites.reload()).to.equal(false);
      write({ sites: [site({ id: "docs2", hostname: "docs2.example.test" })] });
      expect(sites.reload()).to.equal(true);
      expect(sites.version).to.not.equal(before);
      expect(sites.lookup("docs.example.test")).to.equal(undefined);
      expect(sites.lookup("docs2.example.test")?.id).to.equal("docs2");
      expect(seen.map((s) => s.map((x) => x.id))).to.deep.equal([["docs2"]]);
      expect(sites.all()).to.equal(seen[0]);
    });

    it("an invalid reload keeps the last good set, sets lastError and logs each distinct problem once", function () {
      write({ sites: [site()] });
      const log = new Log();
      const sites = new SiteFile(file, log);
      const version = sites.version;
      let calls = 0;
      sites.onChange(() => calls++);
      write({ sites: [site({ origin: "ftp://o.test" })] });
      expect(sites.reload()).to.equal(false);
      expect(sites.reload()).to.equal(false);
      expect(sites.lastError).to.match(/sites\.json: invalid sites: sites\[0\] \("docs"\)\.origin must be an http/);
      write({ sites: [site({ hostname: "Docs.test" })] });
      expect(sites.reload()).to.equal(false);
      expect(sites.lastError).to.match(/must be lower-case/);
      expect(log.errors.map((e) => e.msg)).to.deep.equal([
        "sites file refused: keeping the last good set",
        "sites file refused: keeping the last good set",
      ]);
      expect(sites.version).to.equal(version);
      expect(sites.lookup("docs.example.test")?.id).to.equal("docs");
      rmSync(file);
      expect(sites.reload()).to.equal(false);
      expect(sites.lastError).to.match(/cannot be read: ENOENT/);
      expect(sites.lookup("docs.example.test")?.id).to.equal("docs");
      write({ sites: [site()] }); // back to the accepted document: valid again, no new version
      expect(sites.reload()).to.equal(false);
      expect(sites.lastError).to.equal(null);
      expect(calls).to.equal(0);
    });

    it("refuses a file over 16 MiB before parsing it", function () {
      write({ sites: [site()] });
      const sites = new SiteFile(file, new Log());
      // Valid JSON (a document padded with spaces) that would parse: refused for its size alone.
      const padded = `${JSON.stringify({ sites: [site({ id: "big" })] })}${" ".repeat(MAX_SITES_FILE_BYTES)}`;
      write(padded);
      expect(sites.reload()).to.equal(false);
      expect(sites.lastError).to.match(/16777\d+ bytes, over the 16777216-byte limit/);
      expect(sites.get("big")).to.equal(undefined);
      expect(() => new SiteFile(file, new Log())).to.throw(/over the 16777216-byte limit/);
    });

    it("the poll reloads a changed file (start/stop, timer unref'd)", async function () {
      write({ sites: [site()] });
      const sites = new SiteFile(file, new Log(), { pollMs: 20 });
      const changed = new Promise<readonly Site[]>((resolve) => sites.onChange(resolve));
      sites.start();
      try {
        write({ sites: [site({ id: "polled" })] });
        expect((await changed).map((s) => s.id)).to.deep.equal(["polled"]);
      } finally {
        sites.stop();
      }
    });
  });
});
