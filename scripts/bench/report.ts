/** Shared by the benchmarks: committed JSON results and tables between markers in the docs. */
import { readFileSync, writeFileSync } from "node:fs";
import * as prettier from "prettier";

/** `doc` with the lines between `<!-- marker:start -->` and `<!-- marker:end -->` replaced. */
export function replaceBetween(doc: string, marker: string, lines: string[]): string {
  const start = `<!-- ${marker}:start -->`;
  const end = `<!-- ${marker}:end -->`;
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  if (from < 0 || to < 0) throw new Error(`the document lacks the ${start} / ${end} markers`);
  return doc.slice(0, from + start.length) + "\n" + lines.join("\n") + "\n" + doc.slice(to);
}

/** Writes `text` formatted as `npm run lint` expects, so a benchmark run never leaves the tree failing it. */
export async function writeFormatted(file: string, text: string): Promise<void> {
  writeFileSync(file, await prettier.format(text, { ...(await prettier.resolveConfig(file)), filepath: file }));
}

/** The part of a result key before its first dot: the family of measures one benchmark owns ("ingest"). */
const family = (key: string) => key.split(".")[0];

/**
 * Writes `results` (keys sorted) to `jsonFile` and as a measure/value/target table at `marker` in `docFile`. Keys
 * of other families already in the file (another benchmark's, such as `credit.*` beside billing's) are kept in the
 * file, and left out of this table.
 */
export async function writeBenchResults(
  jsonFile: string,
  docFile: string,
  marker: string,
  results: Record<string, number>,
  targets: Record<string, string>,
): Promise<void> {
  const owned = new Set(Object.keys(results).map(family));
  let previous: Record<string, number> = {};
  try {
    previous = JSON.parse(readFileSync(jsonFile, "utf8")) as Record<string, number>;
  } catch {
    // no earlier results
  }
  const kept = Object.entries(previous).filter(([key]) => !owned.has(family(key)));
  const sorted = Object.fromEntries([...kept, ...Object.entries(results)].sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(jsonFile, JSON.stringify(sorted, null, 2) + "\n");
  console.table(sorted);
  const lines = ["| measure | value | target |", "| --- | ---: | --- |"];
  const own = Object.entries(sorted).filter(([key]) => owned.has(family(key)));
  for (const [key, value] of own) lines.push(`| \`${key}\` | ${value} | ${targets[key] ?? ""} |`);
  await writeFormatted(docFile, replaceBetween(readFileSync(docFile, "utf8"), marker, lines));
}

/** A seeded PRNG (mulberry32): floats in [0, 1); benchmarks that draw at random repeat exactly. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
