/**
 * Bundles the page with esbuild's JS API, in memory, once per process: console/web/main.ts (and viem, the
 * ABIs and the shared message formats it imports) into one script, styles.css into one stylesheet. Nothing is
 * fetched at run time: the page loads only these two files and /config.json from the Console server.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { build } from "esbuild";

export const WEB_DIR = join(__dirname, "web");

export interface ConsoleAssets {
  html: string;
  js: string;
  css: string;
}

let bundled: Promise<ConsoleAssets> | undefined;

/** The page's assets; the first call builds them (about a second), later calls share the result. */
export function consoleAssets(): Promise<ConsoleAssets> {
  bundled ??= buildAssets().catch((error) => {
    bundled = undefined;
    throw error;
  });
  return bundled;
}

async function buildAssets(): Promise<ConsoleAssets> {
  const result = await build({
    entryPoints: [join(WEB_DIR, "main.ts"), join(WEB_DIR, "styles.css")],
    bundle: true,
    write: false,
    outdir: "/console-assets",
    entryNames: "[name]",
    platform: "browser",
    format: "iife",
    target: ["es2022", "chrome111", "firefox115", "safari16"],
    minify: true,
    legalComments: "none",
    // platform "browser": a Node built-in reaching the page fails the build instead of breaking at run time.
    logLevel: "silent",
  });
  const output = (extension: string) => {
    const file = result.outputFiles.find((f) => f.path.endsWith(extension));
    if (!file) throw new Error(`esbuild produced no ${extension} file`);
    return file.text;
  };
  return { html: await readFile(join(WEB_DIR, "index.html"), "utf8"), js: output(".js"), css: output(".css") };
}
