import { expect } from "chai";
import fc from "fast-check";
import { BlockList } from "node:net";

import { EMPTY_BLOCKLIST, compileBlocklist, normalizePath } from "../../node/roles/gateway/blocklist";
import { FC_SEED, fcRuns } from "../shared/fastcheck";

const MAPPED = 0xffffn << 32n;

const v4Text = (v: bigint) => [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join(".");
const v6Text = (v: bigint) => {
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((v >> s) & 0xffffn).toString(16));
  return groups.join(":");
};
const masked = (v: bigint, prefix: number, bits: number) =>
  prefix === 0 ? 0n : v & (((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix));

interface RuleModel {
  text: string;
  family: 4 | 6;
  value: bigint;
  prefix: number;
}

/** The reference: an IPv4 client (or a mapped one) is covered by an IPv4 rule, or by an IPv6 rule as ::ffff:v. */
function covers(rule: RuleModel, client: { family: 4 | 6; value: bigint }): boolean {
  let { family, value } = client;
  if (family === 6 && value >> 32n === 0xffffn) {
    family = 4;
    value &= 0xffffffffn;
  }
  if (rule.family === 4) return family === 4 && masked(value, rule.prefix, 32) === masked(rule.value, rule.prefix, 32);
  const as6 = family === 4 ? MAPPED | value : value;
  return masked(as6, rule.prefix, 128) === masked(rule.value, rule.prefix, 128);
}

const v4 = fc.bigInt({ min: 0n, max: 0xffffffffn });
const v6 = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  v4.map((v) => MAPPED | v), // mapped IPv4
  fc.bigInt({ min: 0n, max: 0xffffn }).map((v) => (0x2001n << 112n) | v), // near one another
);
const ruleArb: fc.Arbitrary<RuleModel> = fc.oneof(
  fc.record({ value: v4, prefix: fc.integer({ min: 0, max: 32 }) }).map(({ value, prefix }) => ({
    family: 4 as const,
    value,
    prefix,
    text: prefix === 32 ? v4Text(value) : `${v4Text(value)}/${prefix}`,
  })),
  fc.record({ value: v6, prefix: fc.integer({ min: 0, max: 128 }) }).map(({ value, prefix }) => ({
    family: 6 as const,
    value,
    prefix,
    text: `${v6Text(value)}/${prefix}`,
  })),
);

describe("gateway blocklist (D54)", () => {
  describe("addresses", () => {
    it("refuses exactly the clients some rule covers (as net.BlockList does), names a rule covering them, whatever the address's form", () => {
      fc.assert(
        fc.property(
          fc.array(ruleArb, { minLength: 1, maxLength: 8 }),
          fc.array(
            fc.oneof(
              v4.map((value) => ({ family: 4 as const, value })),
              v6.map((value) => ({ family: 6 as const, value })),
            ),
            { maxLength: 8 },
          ),
          fc.nat(),
          (rules, clients, pick) => {
            // Half the time the client sits in one of the rules (random clients rarely do).
            const inside = rules[pick % rules.length];
            const bits = inside.family === 4 ? 32 : 128;
            const spread =
              masked(BigInt(pick) * 0x9e3779b97f4a7c15n, bits - inside.prefix, bits) >> BigInt(inside.prefix);
            clients.push({ family: inside.family, value: masked(inside.value, inside.prefix, bits) | spread });
            const list = compileBlocklist({ ipRanges: rules.map((r) => r.text), paths: [] });
            // Node's own BlockList (too slow per request at 100,000 rules, D54) is the second reference.
            const oracle = new BlockList();
            for (const r of rules)
              oracle.addSubnet(r.family === 4 ? v4Text(r.value) : v6Text(r.value), r.prefix, `ipv${r.family}`);
            for (const client of clients) {
              const texts = [client.family === 4 ? v4Text(client.value) : v6Text(client.value)];
              if (client.family === 4) texts.push(`::ffff:${v4Text(client.value)}`);
              if (client.family === 6 && client.value >> 32n === 0xffffn)
                texts.push(v4Text(client.value & 0xffffffffn));
              const expected = rules.some((r) => covers(r, client));
              for (const text of texts) {
                const match = list.address(text);
                expect(match !== undefined, `${text} against ${rules.map((r) => r.text).join(", ")}`).to.equal(
                  expected,
                );
                expect(oracle.check(text, text.includes(":") ? "ipv6" : "ipv4"), `BlockList: ${text}`).to.equal(
                  expected,
                );
                if (match) {
                  expect(match.kind).to.equal("ip");
                  const named = rules.find((r) => r.text === match.rule);
                  expect(named && covers(named, client), `${match.rule} covers ${text}`).to.equal(true);
                }
              }
            }
          },
        ),
        { seed: FC_SEED, numRuns: fcRuns(100) },
      );
    });

    it("a mapped rule covers IPv4 clients, a v4 rule covers mapped clients; nothing covers a non-address", () => {
      const list = compileBlocklist({ ipRanges: ["::ffff:198.51.100.0/120", "127.0.0.2", "2001:db8::/32"], paths: [] });
      expect(list.address("198.51.100.7")).to.deep.equal({ kind: "ip", rule: "::ffff:198.51.100.0/120" });
      expect(list.address("::ffff:127.0.0.2")).to.deep.equal({ kind: "ip", rule: "127.0.0.2" });
      expect(list.address("2001:db8:1::5")).to.deep.equal({ kind: "ip", rule: "2001:db8::/32" });
      expect(list.address("127.0.0.1")).to.equal(undefined);
      expect(list.address("2001:db9::1")).to.equal(undefined);
      expect(list.address(undefined)).to.equal(undefined);
      expect(list.address("not an address")).to.equal(undefined);
      expect(EMPTY_BLOCKLIST.address("127.0.0.1")).to.equal(undefined);
    });

    it("an invalid entry is refused with every problem named", () => {
      expect(() =>
        compileBlocklist({
          ipRanges: ["10.0.0.0/33", "1:2:3", "10.0.0.0/8", "::/129"],
          paths: [
            { hostname: "bad host", prefix: "/x" },
            { hostname: "10.0.0.1", prefix: "/y" },
          ],
        }),
      ).to.throw(
        /ipRanges\[0\].*prefix length past \/32.*ipRanges\[1\].*not an IPv4.*ipRanges\[3\].*paths\[0\]\.hostname.*paths\[1\]\.hostname/,
      );
    });
  });

  describe("paths", () => {
    const list = compileBlocklist({
      ipRanges: [],
      paths: [
        { hostname: "docs.example.test", prefix: "/private" },
        { hostname: "*", prefix: "/admin/" },
      ],
    });

    it("a rule refuses its prefix on its hostname only; a * rule on every site", () => {
      expect(list.path("docs.example.test", "/private/a.txt?x=1")).to.deep.equal({
        kind: "path",
        rule: "docs.example.test /private",
      });
      expect(list.path("docs.example.test", "/privateer")).to.not.equal(undefined);
      expect(list.path("docs.example.test", "/public/private")).to.equal(undefined);
      expect(list.path("other.example.test", "/private/a.txt")).to.equal(undefined);
      expect(list.path("other.example.test", "/admin/x")).to.deep.equal({ kind: "path", rule: "* /admin/" });
      expect(list.path("other.example.test", "/admin")).to.equal(undefined);
      expect(list.path("other.example.test", "/?/private")).to.equal(undefined);
    });

    it("normalises like an origin would, and further", () => {
      expect(normalizePath("/a/./b/../c//d\\e?q=/x#f")).to.equal("/a/c/d/e");
      expect(normalizePath("/%2e%2E/%70rivate")).to.equal("/private");
      expect(normalizePath("/public/%252e%252e/private")).to.equal("/private");
      expect(normalizePath("/caf%C3%A9")).to.equal("/café");
      expect(normalizePath("/a/..")).to.equal("/");
      expect(normalizePath("/a/")).to.equal("/a/");
      expect(normalizePath("/%25252525252570")).to.equal(undefined);
    });

    it("no encoding, dot segment, slash or backslash trick slips a blocked path past its rule", () => {
      const segment = fc.stringMatching(/^[a-zA-Z0-9_.~-]{1,8}$/).filter((s) => s !== "." && s !== "..");
      fc.assert(
        fc.property(
          fc.array(segment, { maxLength: 4 }),
          fc.array(fc.nat(), { minLength: 1, maxLength: 12 }),
          (rest, tricks) => {
            let path = ["/private", ...rest].join("/");
            for (const trick of tricks) path = obfuscate(path, trick);
            expect(list.path("docs.example.test", path), path).to.not.equal(undefined);
          },
        ),
        { seed: FC_SEED, numRuns: fcRuns(500) },
      );
    });

    it("R17-13: `;` path parameters of any segment do not slip a blocked path past its rule", () => {
      const folder = compileBlocklist({ ipRanges: [], paths: [{ hostname: "*", prefix: "/private/" }] });
      for (const path of ["/private;x/secret", "/private;/secret", "/private;a=b;c/secret", "/public/..;x/private/s"])
        expect(folder.path("a.example.test", path), path).to.deep.equal({ kind: "path", rule: "* /private/" });
      expect(folder.path("a.example.test", "/private%3Bx/secret")).to.not.equal(undefined);
      expect(normalizePath("/a;p/b;q=1/c")).to.equal("/a/b/c");
      expect(folder.path("a.example.test", "/public;private/x")).to.equal(undefined);
    });

    it("plain paths outside the prefix are served", () => {
      const segment = fc.stringMatching(/^[a-z0-9_~-]{1,8}$/);
      fc.assert(
        fc.property(fc.array(segment, { maxLength: 5 }), (rest) => {
          const path = ["/public", ...rest].join("/");
          expect(list.path("docs.example.test", path)).to.equal(undefined);
          expect(list.path("docs.example.test", `${path}?private`)).to.equal(undefined);
        }),
        { seed: FC_SEED, numRuns: fcRuns(200) },
      );
    });
  });
});

/** One attacker's rewrite of `path` that an origin resolves back to the same file. */
function obfuscate(path: string, trick: number): string {
  const at = (trick >> 3) % Math.max(1, path.length);
  const slashes = [...path.matchAll(/\//g)].map((m) => m.index!);
  const slash = slashes[(trick >> 3) % slashes.length];
  switch (trick % 7) {
    case 0: {
      // percent-encode one character (either hex case)
      const hex = path.charCodeAt(at).toString(16).padStart(2, "0");
      const code = trick & 4 ? hex.toUpperCase() : hex;
      return path.charCodeAt(at) < 0x80 ? `${path.slice(0, at)}%${code}${path.slice(at + 1)}` : path;
    }
    case 1: // encode an escape's "%" once more (a double encoding), at most twice over
      return (path.match(/%25/g) ?? []).length < 2 ? path.replace("%", "%25") : path;
    case 2: // a "." segment
      return `${path.slice(0, slash)}/.${path.slice(slash)}`;
    case 3: // a detour and back
      return `${path.slice(0, slash)}/x${trick % 97}/..${path.slice(slash)}`;
    case 4: // a doubled slash
      return `${path.slice(0, slash)}/${path.slice(slash)}`;
    case 5: // a backslash for a slash
      return `${path.slice(0, slash)}\\${path.slice(slash + 1)}`;
    default: // a query
      return path.includes("?") ? path : `${path}?${trick}`;
  }
}
