/** What the Console's browser tests share: where Chromium is, where screenshots go, and the guard for a missing one. */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";

export const CHROMIUM = process.env.EDGE_CHROMIUM ?? "/usr/bin/chromium";
export const SHOTS = join(__dirname, "..", "..", "test-output", "console");

/** Skips the suite without Chromium, except in CI (which installs it: there a missing browser is a failure). */
export function requireChromium(suite: Mocha.Context): void {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium`);
    console.log(`    (skipped: no Chromium at ${CHROMIUM}; apt-get install chromium)`);
    suite.skip();
  }
  mkdirSync(SHOTS, { recursive: true });
}
