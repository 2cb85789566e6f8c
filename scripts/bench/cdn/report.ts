/** The CDN benchmark's table in docs/cdn.md, between the cdn-bench markers of its "Benchmark" section. */
import { readFileSync } from "node:fs";

import { replaceBetween, writeFormatted } from "../report";

type Results = Record<string, number>;

const fmt = (value: number | undefined) => (value === undefined ? "–" : value.toLocaleString("en-US"));

export async function writeCdnDoc(doc: string, r: Results, machine: { p99BoundMs: number; cpu: string }) {
  const rows: Array<[string, string, string, string]> = [
    [
      `\`cached1k.rps\` (p99 < ${machine.p99BoundMs} ms, all 200)`,
      ">= 5,000",
      fmt(r["cached1k.rps"]),
      fmt(r["cached1k.nginx.rps"]) + (r["cached1k.nginx.searchTopReached"] ? " (the search's top rate)" : ""),
    ],
    ["`cached1k.vsNginx.ratio`", ">= 0.3 (goal)", fmt(r["cached1k.vsNginx.ratio"]), ""],
    ["`cached1k.p50.ms` at 2,000/s", "", fmt(r["cached1k.p50.ms"]), fmt(r["cached1k.nginx.p50.ms"])],
    ["`cached1k.p99.ms` at 2,000/s", "", fmt(r["cached1k.p99.ms"]), fmt(r["cached1k.nginx.p99.ms"])],
    ["`miss100k.p50.ms` at 200/s", "", fmt(r["miss100k.p50.ms"]), fmt(r["miss100k.nginx.p50.ms"])],
    ["`miss100k.p99.ms` at 200/s", "", fmt(r["miss100k.p99.ms"]), fmt(r["miss100k.nginx.p99.ms"])],
    [
      "`scoreSpread.fastOverSlow` (jobs returned)",
      ">= 1.5",
      `${fmt(r["scoreSpread.fastOverSlow"])} (${fmt(r["scoreSpread.fast.jobs"])} / ${fmt(r["scoreSpread.slow.jobs"])})`,
      "",
    ],
    [
      `\`gatewayHop.overhead.p50.ms\` at ${fmt(r["gatewayHop.rps"])}/s`,
      "<= 1",
      `${fmt(r["gatewayHop.overhead.p50.ms"])} (${fmt(r["gatewayHop.viaGateway.p50.ms"])} − ${fmt(r["gatewayHop.direct.p50.ms"])})`,
      "",
    ],
  ];
  const lines = [
    "| figure | target | measured | nginx |",
    "| --- | --- | ---: | ---: |",
    ...rows.map((row) => `| ${row.join(" | ")} |`),
    "",
    `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${r["machine.cores"]} cores ` +
      `(${machine.cpu}); load average (1 min) ${fmt(round2(r["machine.load1.start"]))} at the start, ` +
      `${fmt(round2(r["machine.load1.end"]))} at the end (the machine is shared).`,
  ];
  await writeFormatted(doc, replaceBetween(readFileSync(doc, "utf8"), "cdn-bench", lines));
}

const round2 = (value: number | undefined) => (value === undefined ? undefined : Math.round(value * 100) / 100);
