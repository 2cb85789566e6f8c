import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import fc from "fast-check";

import { type ReportInput, type Score, ScoringInputError, scoreEpoch } from "../../../offchain/oracle/scoring";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";

const addr = (n: number) => `0x${n.toString(16).padStart(40, "0")}`;
const [G1, G2, G3] = [addr(0xa1), addr(0xa2), addr(0xa3)];
const [A, B, C, X] = [addr(1), addr(2), addr(3), addr(0xdead)];
const [S1, S2] = [addr(0x51), addr(0x52)];
const admitted = { hosts: [A, B, C], gateways: [G1, G2], stargates: [S1] };

type Attested = number | string | null | undefined;
/** Each entry's attested count defaults to its jobs (an honest host's tally); null leaves it out. */
const report = (
  gateway: string,
  entries: Array<[string, number | string] | [string, number | string, Attested]>,
  sequence = 1,
  epoch = 7,
): ReportInput => ({
  gateway,
  epoch,
  sequence,
  entries: entries.map(([host, jobs, attested]) =>
    attested === null ? { host, jobs } : { host, jobs, attested: attested === undefined ? jobs : attested },
  ),
});
const byDevice = (scores: Score[]) => Object.fromEntries(scores.map((s) => [`${s.role}:${s.device}`, s.score]));

/** The rules again, in the most literal BigInt form: the property tests hold the fast version to it. */
function reference(
  epoch: bigint,
  reports: ReportInput[],
  adm: typeof admitted,
  heartbeats: Array<{ stargate: string; epoch: number }> = [],
) {
  const hosts = new Set(adm.hosts.map((h) => h.toLowerCase()));
  const gateways = new Set(adm.gateways.map((g) => g.toLowerCase()));
  const best = new Map<string, ReportInput>();
  const key = (r: ReportInput) => {
    const m = new Map<string, [bigint, bigint]>();
    for (const e of r.entries) {
      const [j, a] = m.get(e.host.toLowerCase()) ?? [0n, -1n];
      const at = e.attested === undefined || e.attested === null ? -1n : BigInt(e.attested);
      m.set(e.host.toLowerCase(), [j + BigInt(e.jobs), at > a ? at : a]);
    }
    return [...m]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([h, [j, a]]) => `${h}:${j}:${a}`)
      .join(",");
  };
  for (const r of reports) {
    const g = r.gateway.toLowerCase();
    if (BigInt(r.epoch) !== epoch || !gateways.has(g)) continue;
    const cur = best.get(g);
    if (
      !cur ||
      BigInt(r.sequence) > BigInt(cur.sequence) ||
      (BigInt(r.sequence) === BigInt(cur.sequence) && key(r) > key(cur))
    )
      best.set(g, r);
  }
  const J = new Map<string, bigint>();
  const W = new Map<string, bigint>();
  for (const r of best.values()) {
    const sums = new Map<string, [bigint, bigint]>();
    for (const e of r.entries) {
      const h = e.host.toLowerCase();
      if (!hosts.has(h) || e.attested === undefined || e.attested === null) continue;
      const [j, a] = sums.get(h) ?? [0n, 0n];
      const at = BigInt(e.attested);
      sums.set(h, [j + BigInt(e.jobs), at > a ? at : a]);
    }
    // j(h,g) = min(jobs, attested)
    const m = new Map([...sums].map(([h, [j, a]]) => [h, j < a ? j : a] as const));
    const S = [...m.values()].reduce((a, b) => a + b, 0n);
    const P = BigInt(m.size);
    for (const [h, j] of m) {
      let s = S === 0n ? 0n : (10000n * j * P) / S;
      if (s > 20000n) s = 20000n;
      J.set(h, (J.get(h) ?? 0n) + j);
      W.set(h, (W.get(h) ?? 0n) + j * s);
    }
  }
  const out: Score[] = [];
  for (const [h, j] of J) out.push({ device: h, role: "host", score: j === 0n ? 0 : Number(W.get(h)! / j) });
  for (const g of best.keys()) out.push({ device: g, role: "gateway", score: 10000 });
  const beat = new Set(heartbeats.filter((h) => BigInt(h.epoch) === epoch).map((h) => h.stargate.toLowerCase()));
  for (const s of beat)
    if (adm.stargates.map((x) => x.toLowerCase()).includes(s)) out.push({ device: s, role: "stargate", score: 10000 });
  return out.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.role < b.role ? -1 : 1));
}

describe("oracle scoring", function () {
  describe("the rules, one case each", function () {
    it("scores hosts against their gateway's peer average", function () {
      const scores = byDevice(
        scoreEpoch(
          7,
          [
            report(G1, [
              [A, 10],
              [B, 30],
            ]),
          ],
          admitted,
        ),
      );
      expect(scores).to.deep.equal({ [`host:${A}`]: 5000, [`host:${B}`]: 15000, [`gateway:${G1}`]: 10000 });
    });

    it("caps a host's score at 20000 and gives 0 to a host with no jobs", function () {
      const scores = byDevice(
        scoreEpoch(
          7,
          [
            report(G1, [
              [A, 100],
              [B, 0],
              [C, 0],
            ]),
          ],
          admitted,
        ),
      );
      expect(scores[`host:${A}`]).to.equal(20000); // 10000 * 100 * 3 / 100 = 30000, capped
      expect(scores[`host:${B}`]).to.equal(0);
    });

    it("scores 0 for everyone when a gateway's hosts did nothing", function () {
      const scores = byDevice(
        scoreEpoch(
          7,
          [
            report(G1, [
              [A, 0],
              [B, 0],
            ]),
          ],
          admitted,
        ),
      );
      expect(scores).to.deep.equal({ [`host:${A}`]: 0, [`host:${B}`]: 0, [`gateway:${G1}`]: 10000 });
    });

    it("takes the report with the highest sequence", function () {
      const reports = [
        report(
          G1,
          [
            [A, 30],
            [B, 10],
          ],
          2,
        ),
        report(
          G1,
          [
            [A, 10],
            [B, 30],
          ],
          1,
        ),
      ];
      expect(byDevice(scoreEpoch(7, reports, admitted))[`host:${A}`]).to.equal(15000);
    });

    it("drops hosts not admitted at the epoch's end before computing the peer average", function () {
      // With X counted, A would score 10000 * 10 * 2 / 1010 = 198; without it, A is the whole peer set.
      expect(
        byDevice(
          scoreEpoch(
            7,
            [
              report(G1, [
                [A, 10],
                [X, 1000],
              ]),
            ],
            admitted,
          ),
        ),
      ).to.deep.equal({
        [`host:${A}`]: 10000,
        [`gateway:${G1}`]: 10000,
      });
    });

    it("weights a host's gateways by the jobs it returned through each", function () {
      const reports = [
        report(G1, [
          [A, 10],
          [B, 30],
        ]),
        report(G2, [
          [A, 30],
          [C, 10],
        ]),
      ];
      // G1: s(A) = 5000 on 10 jobs; G2: s(A) = 15000 on 30 jobs -> floor((50000 + 450000) / 40) = 12500.
      expect(byDevice(scoreEpoch(7, reports, admitted))[`host:${A}`]).to.equal(12500);
    });

    it("ignores other epochs and gateways not admitted; only reporting gateways score", function () {
      const reports = [
        report(G1, [[A, 1]], 1, 6),
        report(G3, [
          [A, 5],
          [B, 5],
        ]),
        report(G2, [
          [B, 2],
          [C, 2],
        ]),
      ];
      expect(byDevice(scoreEpoch(7, reports, admitted))).to.deep.equal({
        [`host:${B}`]: 10000,
        [`host:${C}`]: 10000,
        [`gateway:${G2}`]: 10000,
      });
    });

    it("gives admitted hosts nobody reported no entry", function () {
      const devices = scoreEpoch(7, [report(G1, [[A, 1]])], admitted).map((s) => s.device);
      expect(devices).to.not.include(B.toLowerCase());
    });

    it("scores a stargate with a heartbeat in the epoch and admitted at its end", function () {
      const heartbeats = [
        { stargate: S1, epoch: 7 },
        { stargate: S1, epoch: 7 },
        { stargate: S2, epoch: 7 }, // not admitted
        { stargate: S1, epoch: 6 },
      ];
      expect(scoreEpoch(7, [], admitted, heartbeats)).to.deep.equal([{ device: S1, role: "stargate", score: 10000 }]);
      expect(scoreEpoch(8, [], admitted, heartbeats)).to.deep.equal([]);
    });

    it("compares addresses case-insensitively and prints them lowercase, sorted", function () {
      const upper = (a: string) => `0x${a.slice(2).toUpperCase()}`;
      const mixed = scoreEpoch(
        7,
        [
          report(upper(G1), [
            [upper(B), 30],
            [A, 10],
          ]),
        ],
        {
          hosts: [upper(A), B, C],
          gateways: [G1],
          stargates: [],
        },
      );
      expect(mixed).to.deep.equal(
        scoreEpoch(
          7,
          [
            report(G1, [
              [A, 10],
              [B, 30],
            ]),
          ],
          admitted,
        ),
      );
      expect(mixed.map((s) => s.device)).to.deep.equal([A, B, G1].map((a) => a.toLowerCase()).sort());
    });

    it("sums a host listed twice in one report, and breaks sequence ties by content, whatever the order", function () {
      expect(
        byDevice(
          scoreEpoch(
            7,
            [
              report(G1, [
                [A, 5, 10],
                [B, 30],
                [A, 5, 10],
              ]),
            ],
            admitted,
          ),
        )[`host:${A}`],
      ).to.equal(5000);
      const one = report(
        G1,
        [
          [A, 10],
          [B, 30],
        ],
        3,
      );
      const two = report(
        G1,
        [
          [A, 30],
          [B, 10],
        ],
        3,
      );
      expect(scoreEpoch(7, [one, two], admitted)).to.deep.equal(scoreEpoch(7, [two, one], admitted));
    });

    it("is exact with job counts far beyond 2^53", function () {
      const big = "123456789012345678901234567890";
      const other = "987654321098765432109876543210";
      const scores = byDevice(
        scoreEpoch(
          7,
          [
            report(G1, [
              [A, big],
              [B, other],
            ]),
            report(G2, [
              [A, "7"],
              [C, "3"],
            ]),
          ],
          admitted,
        ),
      );
      const [a, b] = [BigInt(big), BigInt(other)];
      const sA1 = (10000n * a * 2n) / (a + b);
      const sB1 = (10000n * b * 2n) / (a + b);
      const sA2 = (10000n * 7n * 2n) / 10n; // 14000
      expect(scores[`host:${B}`]).to.equal(Number(sB1));
      expect(scores[`host:${A}`]).to.equal(Number((a * sA1 + 7n * sA2) / (a + 7n)));
      expect(scores[`host:${C}`]).to.equal(6000);
    });

    it("F11: a second gateway's huge counts no longer move an honest host, nor pay a host that did nothing", function () {
      // H1 (A) returned 10000 jobs through G1 and attested them; G2 claims A: 1e12 and C: 1e24, which neither
      // host attested at G2 (A's tally there says 0 jobs; C signed none).
      const honest = report(G1, [
        [A, 10000],
        [B, 10000],
      ]);
      const attack = report(G2, [
        [A, "1000000000000", 0],
        [C, "1000000000000000000000000", null],
      ]);
      const before = byDevice(scoreEpoch(7, [honest], admitted));
      const after = byDevice(scoreEpoch(7, [honest, attack], admitted));
      expect(before[`host:${A}`]).to.equal(10000);
      expect(after[`host:${A}`]).to.equal(10000);
      expect(after[`host:${B}`]).to.equal(10000);
      expect(after).to.not.have.property(`host:${C}`);
      // Even a tally C did sign elsewhere caps it: C attested 5 jobs at G2, so j = 5 whatever G2 claims.
      const capped = report(G2, [[C, "1000000000000000000000000", 5]]);
      expect(byDevice(scoreEpoch(7, [honest, capped], admitted))[`host:${A}`]).to.equal(10000);
    });

    it("drops entries without attested before anything else and scores min(jobs, attested)", function () {
      // B has no attested count: not a peer, so A alone is the peer set (not 2 hosts against B's 1000 jobs).
      const dropped = scoreEpoch(
        7,
        [
          report(G1, [
            [A, 10],
            [B, 1000, null],
          ]),
        ],
        admitted,
      );
      expect(byDevice(dropped)).to.deep.equal({ [`host:${A}`]: 10000, [`gateway:${G1}`]: 10000 });
      // A: min(10, 40) = 10; B: min(100, 30) = 30; S = 40, |P| = 2.
      const capped = byDevice(
        scoreEpoch(
          7,
          [
            report(G1, [
              [A, 10, 40],
              [B, 100, "30"],
            ]),
          ],
          admitted,
        ),
      );
      expect([capped[`host:${A}`], capped[`host:${B}`]]).to.deep.equal([5000, 15000]);
      // Listed twice: jobs summed, capped by the larger tally (the host's latest), never summed tallies.
      const twice = report(G1, [
        [A, 20, 25],
        [A, 20, 30],
        [B, 30],
      ]);
      expect(byDevice(scoreEpoch(7, [twice], admitted))[`host:${A}`]).to.equal(10000);
      expect(() => scoreEpoch(7, [report(G1, [[A, 1, "x"]])], admitted)).to.throw(ScoringInputError, /attested/);
    });

    it("rejects malformed input with the field's name", function () {
      const bad: Array<[unknown, RegExp]> = [
        [-1, /reports\[0\]\.entries\[0\]: jobs/],
        [1.5, /not a safe non-negative integer/],
        [2 ** 60, /give large counts as decimal strings/],
        ["12a", /decimal string/],
      ];
      for (const [jobs, message] of bad) {
        expect(() =>
          scoreEpoch(
            7,
            [{ gateway: G1, epoch: 7, sequence: 1, entries: [{ host: A, jobs: jobs as number }] }],
            admitted,
          ),
        ).to.throw(ScoringInputError, message);
      }
      expect(() => scoreEpoch(7, [{ gateway: G1 } as ReportInput], admitted)).to.throw(
        ScoringInputError,
        /reports\[0\]/,
      );
    });
  });

  describe("properties", function () {
    const hostArb = fc.integer({ min: 1, max: 12 });
    const jobsArb = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.bigInt({ min: 0n, max: 10n ** 25n }).map(String));
    const reportArb = fc.record({
      gateway: fc.integer({ min: 1, max: 5 }),
      sequence: fc.integer({ min: 0, max: 3 }),
      epoch: fc.constantFrom(7, 7, 7, 8),
      entries: fc.array(fc.tuple(hostArb, jobsArb, fc.option(jobsArb, { nil: undefined, freq: 4 })), {
        maxLength: 8,
      }),
    });
    const caseArb = fc.array(fc.boolean(), { minLength: 40, maxLength: 40 });
    const flip = (address: string, upper: boolean) => (upper ? `0x${address.slice(2).toUpperCase()}` : address);

    it("matches a literal BigInt implementation, stays within 0..20000, ignores order and case", async function () {
      await fc.assert(
        fc.property(
          fc.array(reportArb, { maxLength: 10 }),
          fc.subarray([...Array(12).keys()].map((i) => i + 1)),
          fc.subarray([1, 2, 3, 4, 5]),
          caseArb,
          fc.integer(),
          (raw, adHosts, adGateways, cases, seed) => {
            const reports: ReportInput[] = raw.map((r) => ({
              gateway: addr(0xa0 + r.gateway),
              epoch: r.epoch,
              sequence: r.sequence,
              entries: r.entries.map(([h, jobs, attested]) =>
                attested === undefined ? { host: addr(h), jobs } : { host: addr(h), jobs, attested },
              ),
            }));
            const adm = { hosts: adHosts.map(addr), gateways: adGateways.map((g) => addr(0xa0 + g)), stargates: [] };
            const scores = scoreEpoch(7, reports, adm);
            expect(scores).to.deep.equal(reference(7n, reports, adm));
            for (const s of scores)
              expect(Number.isInteger(s.score) && s.score >= 0 && s.score <= 20000).to.equal(true);
            // Shuffle reports and entries, flip the case of addresses: same result.
            let k = seed;
            const shuffle = <T>(xs: T[]) =>
              xs
                .map((x) => [x, (k = (k * 48271 + 11) % 2147483647)] as const)
                .sort((a, b) => a[1] - b[1])
                .map(([x]) => x);
            let c = 0;
            const shuffled = shuffle(reports).map((r) => ({
              ...r,
              gateway: flip(r.gateway, cases[c++ % 40]),
              entries: shuffle(r.entries).map((e) => ({ ...e, host: flip(e.host, cases[c++ % 40]) })),
            }));
            expect(
              scoreEpoch(7, shuffled, { ...adm, hosts: adm.hosts.map((h) => flip(h, cases[c++ % 40])) }),
            ).to.deep.equal(scores);
          },
        ),
        { seed: FC_SEED, numRuns: fcRuns(300) },
      );
    });
  });

  describe("CLI", function () {
    let dir: string;
    before(() => (dir = mkdtempSync(join(tmpdir(), "oracle-cli-"))));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const run = promisify(execFile);
    const cli = (args: string[]) =>
      run("npm", ["run", "-s", "oracle", "--", ...args], { cwd: join(__dirname, "..", "..", "..") }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );

    it("prints exactly the documented JSON and nothing else", async function () {
      this.timeout(60_000);
      const files = {
        reports: join(dir, "r.json"),
        admitted: join(dir, "a.json"),
        heartbeats: join(dir, "h.json"),
      };
      writeFileSync(
        files.reports,
        JSON.stringify([
          report(G1, [
            [A, 10],
            [B, "30"],
          ]),
        ]),
      );
      writeFileSync(files.admitted, JSON.stringify(admitted));
      writeFileSync(files.heartbeats, JSON.stringify([{ stargate: S1, epoch: 7 }]));
      const out = await cli([
        "score",
        "--reports",
        files.reports,
        "--admitted",
        files.admitted,
        "--epoch",
        "7",
        "--heartbeats",
        files.heartbeats,
      ]);
      expect(out.code).to.equal(0);
      expect(out.stdout).to.equal(
        JSON.stringify({
          epoch: 7,
          scores: [
            { device: A, role: "host", score: 5000 },
            { device: B, role: "host", score: 15000 },
            { device: S1, role: "stargate", score: 10000 },
            { device: G1, role: "gateway", score: 10000 },
          ].sort((x, y) => (x.device < y.device ? -1 : 1)),
        }) + "\n",
      );
      const bad = await cli([
        "score",
        "--reports",
        files.reports,
        "--admitted",
        join(dir, "none.json"),
        "--epoch",
        "7",
      ]);
      expect(bad.code).to.equal(2);
      expect(bad.stdout).to.equal("");
      expect(bad.stderr).to.match(/cannot read the admitted set/);
      const usage = await cli(["score", "--reports", files.reports]);
      expect(usage.code).to.equal(2);
      expect(usage.stderr).to.match(/usage: score --reports/);
    });

    it("takes attested counts: absent (dropped), smaller, larger, decimal strings beyond 2^53", async function () {
      this.timeout(60_000);
      const [reports, adm] = [join(dir, "r2.json"), join(dir, "a2.json")];
      const big = "90071992547409930"; // 10 * 2^53 and a bit
      writeFileSync(
        reports,
        JSON.stringify([
          {
            gateway: G1.toUpperCase().replace("0X", "0x"),
            epoch: 7,
            sequence: "2",
            entries: [
              { host: A, jobs: 10, attested: 40 }, // larger: j = 10
              { host: B, jobs: "100", attested: "30" }, // smaller: j = 30
              { host: C, jobs: 5000 }, // absent: dropped, not a peer
            ],
          },
          {
            gateway: G2,
            epoch: 7,
            sequence: 1,
            entries: [
              { host: A, jobs: big, attested: "180143985094819860" }, // j = big
              { host: C, jobs: "180143985094819860", attested: big }, // j = big
            ],
          },
        ]),
      );
      writeFileSync(adm, JSON.stringify(admitted));
      const out = await cli(["score", "--reports", reports, "--admitted", adm, "--epoch", "7"]);
      expect(out.code, out.stderr).to.equal(0);
      // G1: A 10, B 30 -> s = 5000, 15000. G2: A and C big each -> 10000. A: (10 * 5000 + big * 10000) / (10 + big).
      const b = BigInt(big);
      const scoreA = Number((10n * 5000n + b * 10000n) / (10n + b));
      expect(JSON.parse(out.stdout)).to.deep.equal({
        epoch: 7,
        scores: [
          { device: A, role: "host", score: scoreA },
          { device: B, role: "host", score: 15000 },
          { device: C, role: "host", score: 10000 },
          { device: G1, role: "gateway", score: 10000 },
          { device: G2, role: "gateway", score: 10000 },
        ],
      });
    });
  });
});
