/** `promtool check metrics` (Debian's prometheus package) over an exposition text: "" when it finds nothing. */
import { spawnSync } from "node:child_process";

export function promtoolProblems(text: string): string {
  // promtool reads the exposition on stdin, prints problems and exits non-zero on any.
  const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  if (result.error) return `promtool could not run: ${result.error.message}`;
  return `${result.stdout}${result.stderr}`.trim();
}
