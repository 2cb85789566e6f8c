import { expect } from "chai";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { keccak256, stringToHex } from "viem";

import {
  BillingInputError,
  type HashedBill,
  billHash,
  billRecords,
  makeBills,
  parsePriceList,
} from "../../../offchain/billing/bills";
import { FC_SEED, fcRuns } from "../../shared/fastcheck";

const A = "0x" + "aa".repeat(20);
const B = "0x" + "bb".repeat(20);
const G = "0x" + "99".repeat(20);
const ROOT = join(__dirname, "..", "..", "..");
const NOV = Date.UTC(2026, 10, 15);

const prices = (freeBuffer: string, table: Record<string, Record<string, [string, string]>>) =>
  parsePriceList({
    freeBuffer,
    prices: Object.fromEntries(
      Object.entries(table).map(([s, metrics]) => [
        s,
        Object.fromEntries(Object.entries(metrics).map(([m, [unitSize, unitPrice]]) => [m, { unitSize, unitPrice }])),
      ]),
    ),
  });

const rec = (id: string, customer: string, service: string, metric: string, quantity: string | number, time = NOV) => ({
  id,
  gateway: G,
  customer,
  service,
  metric,
  quantity,
  time,
});

const inNovember = (t: number) => t >= Date.UTC(2026, 10, 1) && t < Date.UTC(2026, 11, 1);

/** RFC 8785 for what bills hold (objects, arrays, strings), written out here independently of the package. */
function jcs(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(jcs).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

describe("billing bills", function () {
  describe("the rules, one case each", function () {
    it("sums quantities per (service, metric) before flooring each line", function () {
      const list = prices("0", { compute: { rounds: ["1000", "3"] } });
      // 600 + 600 rounds at 3 per 1,000: floor(1200 * 3 / 1000) = 3, not floor(1.8) + floor(1.8) = 2.
      const [bill] = billRecords(
        "2026-11",
        [rec("1", A, "compute", "rounds", 600), rec("2", A, "compute", "rounds", "600")],
        list,
        inNovember,
      );
      expect(bill.lines).to.deep.equal([
        { service: "compute", metric: "rounds", quantity: "1200", unitSize: "1000", unitPrice: "3", amount: "3" },
      ]);
      expect([bill.subtotal, bill.freeBuffer, bill.total]).to.deep.equal(["3", "0", "3"]);
    });

    it("applies the free buffer up to the subtotal, and produces zero bills", function () {
      const list = prices("10", { compute: { jobs: ["1", "4"] } });
      const bills = billRecords(
        "2026-11",
        [rec("1", A, "compute", "jobs", 2), rec("2", B, "compute", "jobs", 5)],
        list,
        inNovember,
      );
      expect(bills.map((b) => [b.customer, b.subtotal, b.freeBuffer, b.total])).to.deep.equal([
        [A, "8", "8", "0"],
        [B, "20", "10", "10"],
      ]);
    });

    it("sorts lines by service then metric, customers by address, addresses lowercase", function () {
      const list = prices("0", { storage: { bytes: ["1", "1"] }, compute: { rounds: ["1", "1"], jobs: ["1", "1"] } });
      const upper = "0x" + "AB".repeat(20);
      const bills = billRecords(
        "2026-11",
        [
          rec("1", upper, "storage", "bytes", 1),
          rec("2", upper, "compute", "rounds", 1),
          rec("3", upper, "compute", "jobs", 1),
          rec("4", A, "compute", "jobs", 1),
        ],
        list,
        inNovember,
      );
      expect(bills.map((b) => b.customer)).to.deep.equal([A, upper.toLowerCase()]);
      expect(bills[1].lines.map((l) => `${l.service}/${l.metric}`)).to.deep.equal([
        "compute/jobs",
        "compute/rounds",
        "storage/bytes",
      ]);
    });

    it("is exact far beyond 2^53 and 2^64", function () {
      const list = prices("1", { compute: { jobs: ["7", "123456789012345678901234567890"] } });
      const quantity = "98765432109876543210987654321";
      const [bill] = billRecords("2026-11", [rec("1", A, "compute", "jobs", quantity)], list, inNovember);
      const amount = (BigInt(quantity) * 123456789012345678901234567890n) / 7n;
      expect(bill.lines[0].amount).to.equal(amount.toString());
      expect(bill.total).to.equal((amount - 1n).toString());
    });

    it("counts a record id once, rejects the same id with other content, ignores other periods", function () {
      const list = prices("0", { compute: { jobs: ["1", "1"] } });
      const once = billRecords(
        "2026-11",
        [rec("1", A, "compute", "jobs", 5), rec("1", A, "compute", "jobs", 5)],
        list,
        inNovember,
      );
      expect(once[0].total).to.equal("5");
      expect(() =>
        billRecords(
          "2026-11",
          [rec("1", A, "compute", "jobs", 5), rec("1", A, "compute", "jobs", 6)],
          list,
          inNovember,
        ),
      ).to.throw(BillingInputError, /record id "1" repeats with other content/);
      const october = rec("2", A, "compute", "jobs", 9, Date.UTC(2026, 9, 31, 23, 59, 59, 999));
      const december = rec("3", A, "compute", "jobs", 9, Date.UTC(2026, 11, 1));
      expect(
        billRecords("2026-11", [october, december, rec("4", B, "compute", "jobs", 1)], list, inNovember),
      ).to.have.length(1);
    });

    it("refuses usage without a price, naming it, and malformed price lists and records", function () {
      const list = prices("0", { compute: { jobs: ["1", "1"] } });
      expect(() => billRecords("2026-11", [rec("1", A, "compute", "gpu", 1)], list, inNovember)).to.throw(
        BillingInputError,
        /usage\[0\]: no price for service "compute", metric "gpu"/,
      );
      expect(() =>
        parsePriceList({ freeBuffer: "0", prices: { compute: { jobs: { unitSize: "0", unitPrice: "1" } } } }),
      ).to.throw(/prices.compute.jobs.unitSize must be at least 1/);
      expect(() => parsePriceList({ freeBuffer: "-1", prices: {} })).to.throw(
        /freeBuffer must be a non-negative integer/,
      );
      expect(() => parsePriceList({ freeBuffer: "0", prices: {}, extra: 1 })).to.throw(/unknown field "extra"/);
      expect(() => parsePriceList({ freeBuffer: "0", prices: { compute: { jobs: { unitSize: "1" } } } })).to.throw(
        /unitPrice must be a non-negative integer/,
      );
      for (const [bad, message] of [
        [{ ...rec("1", A, "compute", "jobs", 1), customer: "0x12" }, /usage\[0\].customer must be an address/],
        [{ ...rec("1", A, "compute", "jobs", 1), quantity: -1 }, /usage\[0\].quantity must be a non-negative integer/],
        [{ ...rec("1", A, "compute", "jobs", 1), quantity: 1.5 }, /quantity/],
        [{ ...rec("1", A, "compute", "jobs", 1), time: "now" }, /usage\[0\].time must be unix milliseconds/],
        [{ ...rec("1", A, "compute", "jobs", 1), id: "" }, /usage\[0\].id must be a string/],
        [{ ...rec("1", A, "compute", "jobs", 1), service: "has space" }, /usage\[0\].service must be/],
      ] as const) {
        expect(() => billRecords("2026-11", [bad], list, inNovember)).to.throw(BillingInputError, message);
      }
    });

    it("hashes the RFC 8785 form of exactly the bill object", function () {
      const list = prices("5", { compute: { jobs: ["1", "2"] } });
      const [bill] = billRecords("2026-11", [rec("1", A, "compute", "jobs", 4)], list, inNovember);
      const { billHash: hash, ...object } = bill;
      expect(Object.keys(object)).to.deep.equal(["customer", "period", "lines", "subtotal", "freeBuffer", "total"]);
      expect(jcs(object)).to.equal(
        `{"customer":"${A}","freeBuffer":"5","lines":[{"amount":"8","metric":"jobs","quantity":"4","service":"compute",` +
          `"unitPrice":"2","unitSize":"1"}],"period":"2026-11","subtotal":"8","total":"3"}`,
      );
      expect(hash).to.equal(keccak256(stringToHex(jcs(object))));
      expect(billHash(bill)).to.equal(hash);
      expect(billHash({ ...bill, total: "4" })).to.not.equal(hash);
    });
  });

  describe("properties", function () {
    const customer = fc.constantFrom(A, B, "0x" + "cc".repeat(20), "0x" + "CC".repeat(20));
    const metric = fc.constantFrom(["compute", "jobs"], ["compute", "rounds"], ["storage", "bytes"]);
    const quantity = fc.oneof(fc.bigInt({ min: 0n, max: 1n << 80n }), fc.bigInt({ min: 0n, max: 5000n }));
    const records = fc
      .array(fc.tuple(customer, metric, quantity, fc.boolean()), { maxLength: 60 })
      .map((rows) =>
        rows.map(([c, [s, m], q, inside], i) =>
          rec(`r${i}`, c, s, m, q.toString(), inside ? NOV + i : Date.UTC(2026, 11, 2) + i),
        ),
      );
    const priceTable = fc
      .tuple(
        fc.bigInt({ min: 1n, max: 10n ** 6n }),
        fc.bigInt({ min: 0n, max: 10n ** 20n }),
        fc.bigInt({ min: 1n, max: 1000n }),
        fc.bigInt({ min: 0n, max: 10n ** 20n }),
        fc.bigInt({ min: 0n, max: 10n ** 24n }),
      )
      .map(([size1, price1, size2, price2, buffer]) =>
        prices(buffer.toString(), {
          compute: { jobs: [size1.toString(), price1.toString()], rounds: [size2.toString(), price2.toString()] },
          storage: { bytes: ["1", "1"] },
        }),
      );

    /** The rules as literally as they read, with BigInt. */
    function literal(rows: ReturnType<typeof rec>[], list: ReturnType<typeof prices>) {
      const out: Record<string, { subtotal: bigint; total: bigint; lines: Record<string, bigint> }> = {};
      const customers = [...new Set(rows.filter((r) => inNovember(r.time)).map((r) => r.customer.toLowerCase()))];
      for (const c of customers) {
        const lines: Record<string, bigint> = {};
        for (const r of rows) {
          if (!inNovember(r.time) || r.customer.toLowerCase() !== c) continue;
          lines[`${r.service}/${r.metric}`] = (lines[`${r.service}/${r.metric}`] ?? 0n) + BigInt(r.quantity);
        }
        let subtotal = 0n;
        for (const [key, q] of Object.entries(lines)) {
          const [s, m] = key.split("/");
          const price = list.prices.get(s)!.get(m)!;
          subtotal += (q * price.unitPrice) / price.unitSize;
        }
        const buffer = list.freeBuffer < subtotal ? list.freeBuffer : subtotal;
        out[c] = { subtotal, total: subtotal - buffer, lines };
      }
      return out;
    }

    it("match a literal computation and do not depend on record order", function () {
      fc.assert(
        fc.property(records, priceTable, fc.integer(), (rows, list, seed) => {
          const bills = billRecords("2026-11", rows, list, inNovember);
          const expected = literal(rows, list);
          expect(bills.map((b) => b.customer)).to.deep.equal(Object.keys(expected).sort());
          for (const bill of bills) {
            const want = expected[bill.customer];
            expect([bill.subtotal, bill.total]).to.deep.equal([want.subtotal.toString(), want.total.toString()]);
            for (const line of bill.lines) {
              expect(line.quantity).to.equal(want.lines[`${line.service}/${line.metric}`].toString());
            }
            expect(BigInt(bill.total)).to.be.at.least(0n);
          }
          const shuffled = fc.sample(fc.shuffledSubarray(rows, { minLength: rows.length }), { seed, numRuns: 1 })[0];
          expect(billRecords("2026-11", shuffled, list, inNovember)).to.deep.equal(bills);
        }),
        { seed: FC_SEED, numRuns: fcRuns(150) },
      );
    });

    it("make the same bills from per-customer totals as from raw records", function () {
      fc.assert(
        fc.property(records, priceTable, (rows, list) => {
          const inside = rows.filter((r) => inNovember(r.time));
          const totals = inside.map((r) => ({ ...r, quantity: BigInt(r.quantity) }));
          const fromTotals: HashedBill[] = makeBills("2026-11", totals, list);
          expect(fromTotals).to.deep.equal(billRecords("2026-11", rows, list, inNovember));
        }),
        { seed: FC_SEED, numRuns: fcRuns(80) },
      );
    });
  });

  describe("CLI", function () {
    let dir: string;
    before(() => (dir = mkdtempSync(join(tmpdir(), "edge-bill-cli-"))));
    after(() => rmSync(dir, { recursive: true, force: true }));

    const run = (args: string[]) =>
      spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "offchain/billing/cli.ts", ...args], {
        cwd: ROOT,
        encoding: "utf8",
      });

    it("prints exactly the documented JSON and nothing else; bad input exits 2 with a message", function () {
      this.timeout(60_000);
      const usage = join(dir, "U.json");
      const priceFile = join(dir, "P.json");
      const rows = [
        rec("1", B, "compute", "jobs", 3),
        rec("2", A, "compute", "jobs", "2"),
        rec("3", A, "compute", "jobs", 1, Date.UTC(2026, 9, 1)),
      ];
      writeFileSync(usage, JSON.stringify(rows));
      writeFileSync(
        priceFile,
        JSON.stringify({ freeBuffer: "1", prices: { compute: { jobs: { unitSize: "1", unitPrice: "10" } } } }),
      );
      const out = execFileSync(
        process.execPath,
        [
          "-r",
          "ts-node/register/transpile-only",
          "offchain/billing/cli.ts",
          "bill",
          "--usage",
          usage,
          "--prices",
          priceFile,
          "--period",
          "2026-11",
        ],
        { cwd: ROOT, encoding: "utf8" },
      );
      const parsed = JSON.parse(out);
      expect(out).to.equal(JSON.stringify(parsed) + "\n");
      expect(parsed.period).to.equal("2026-11");
      expect(parsed.bills).to.deep.equal(
        billRecords(
          "2026-11",
          rows,
          parsePriceList(
            JSON.parse(
              JSON.stringify({ freeBuffer: "1", prices: { compute: { jobs: { unitSize: "1", unitPrice: "10" } } } }),
            ),
          ),
          inNovember,
        ),
      );
      expect(parsed.bills.map((b: HashedBill) => [b.customer, b.total])).to.deep.equal([
        [A, "19"],
        [B, "29"],
      ]);

      // Fixed periods: 10-second periods from 0; period 1 is [10 s, 20 s).
      writeFileSync(
        usage,
        JSON.stringify([rec("1", A, "compute", "jobs", 1, 9_999), rec("2", A, "compute", "jobs", 2, 10_000)]),
      );
      const fixed = run(["bill", "--usage", usage, "--prices", priceFile, "--period", "1", "--period-seconds", "10"]);
      expect(JSON.parse(fixed.stdout).bills[0].lines[0].quantity).to.equal("2");

      for (const [args, message] of [
        [["bill", "--usage", usage, "--prices", priceFile], /usage: bill/],
        [["bill", "--usage", usage, "--prices", priceFile, "--period", "2026-13"], /neither a UTC month/],
        [["bill", "--usage", usage, "--prices", priceFile, "--period", "5"], /not a UTC month/],
        [
          ["bill", "--usage", join(dir, "missing.json"), "--prices", priceFile, "--period", "2026-11"],
          /cannot read usage records/,
        ],
        [["bill", "--usage", priceFile, "--prices", priceFile, "--period", "2026-11"], /expected an array/],
        [["bill", "--usage", usage, "--prices", usage, "--period", "2026-11"], /expected \{"freeBuffer"/],
        [["bill", "--bogus"], /Unknown option/],
      ] as const) {
        const result = run([...args]);
        expect(result.status, result.stderr).to.equal(2);
        expect(result.stdout).to.equal("");
        expect(result.stderr).to.match(message);
      }
    });
  });
});
