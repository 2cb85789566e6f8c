/** Summaries of V8 CPU profiles (`--cpu-prof`): the functions with the most self time, per profile. */
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/** The `top` functions by self time in the profile `file`, as [name, share of samples]. */
export function topSelf(file: string, top = 25): Array<[string, number]> {
  const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: ProfileNode[] };
  const root = join(__dirname, "..", "..", "..");
  const self = new Map<string, number>();
  const parents = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node);
  const label = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.startsWith("file://") ? relative(root, url.slice(7)) : url;
    return `${functionName || "(anonymous)"} ${where}${where ? `:${lineNumber + 1}` : ""}`;
  };
  let total = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    total += hits;
    // Named with its caller: node internals are told apart by who calls them.
    const parent = parents.get(node.id);
    const name = `${label(node)}  <- ${parent ? label(parent) : "-"}`;
    self.set(name, (self.get(name) ?? 0) + hits);
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, hits]) => [name, hits / Math.max(1, total)]);
}

/** Prints each profile's top self-time functions. */
export function printProfiles(dir: string): void {
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
    console.log(`\n${file}`);
    for (const [name, share] of topSelf(join(dir, file)))
      console.log(`${(share * 100).toFixed(1).padStart(6)}%  ${name}`);
  }
}
