#!/usr/bin/env node
/**
 * `npm run build`: compiles the daemon, the services and the Console server to dist/ with tsc
 * (tsconfig.build.json), then makes each compiled CLI a command: a shebang and the execute bit, so package.json's
 * `bin` entries (edge-node, edge-oracle, edge-billing, edge-newton, edge-console) point straight at dist/.
 *
 * The Console bundles its page (console/web/*.ts) with esbuild when it starts, from `<its directory>/web`:
 * dist/console/web is a link to console/web, so the compiled Console serves the very bundle the ts-node one does.
 */
"use strict";
const { execFileSync } = require("node:child_process");
const { chmodSync, readFileSync, rmSync, symlinkSync, writeFileSync } = require("node:fs");
const { join } = require("node:path");

const ROOT = join(__dirname, "..");
const DIST = join(ROOT, "dist");
/** The compiled CLIs by command name, e.g. "edge-node": "dist/node/cli.js". */
const COMMANDS = require("../package.json").bin;
const SHEBANG = "#!/usr/bin/env node\n";

rmSync(DIST, { recursive: true, force: true });
try {
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.build.json")], {
    stdio: "inherit",
  });
} catch {
  // tsc printed its errors.
  process.exit(1);
}
for (const file of Object.values(COMMANDS)) {
  const path = join(ROOT, file);
  writeFileSync(path, SHEBANG + readFileSync(path, "utf8"));
  chmodSync(path, 0o755);
}
symlinkSync(join("..", "..", "console", "web"), join(DIST, "console", "web"), "dir");
// Last: the build test reuses dist/ while this is newer than every source.
writeFileSync(join(DIST, ".built"), new Date().toISOString() + "\n");
