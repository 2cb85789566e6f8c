/**
 * Lint: the size limits of hand-written TypeScript (docs/decisions.md). A source file holds one idea: at most
 * 400 lines (test files 600), and no function, method or arrow function body over 120 lines. Generated code
 * (offchain/common/generated/, typechain/) and contracts are exempt.
 *
 *   npx ts-node scripts/ci/checkSizes.ts            # exit 1 and one line per breach
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const ROOT = join(__dirname, "..", "..");
const ROOTS = ["offchain", "node", "console", "scripts", "test", "hardhat.config.ts"];
const SKIP = [/^offchain\/common\/generated\//, /(^|\/)node_modules\//, /^typechain\//];
export const FILE_LIMIT = 400;
export const TEST_FILE_LIMIT = 600;
export const FUNCTION_LIMIT = 120;

export interface Breach {
  file: string;
  line: number;
  what: string;
}

function* sourceFiles(path: string): Generator<string> {
  if (statSync(path).isDirectory()) {
    for (const entry of readdirSync(path)) yield* sourceFiles(join(path, entry));
  } else if (path.endsWith(".ts") && !path.endsWith(".d.ts")) yield path;
}

const isTest = (file: string) => file.startsWith("test/");

/** The breaches of one file's text (exported for the test of this check). */
export function checkSource(file: string, text: string): Breach[] {
  const breaches: Breach[] = [];
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const lines = source.getLineAndCharacterOfPosition(source.getEnd()).line + 1;
  const fileLimit = isTest(file) ? TEST_FILE_LIMIT : FILE_LIMIT;
  if (lines > fileLimit) breaches.push({ file, line: 1, what: `${lines} lines (limit ${fileLimit})` });
  const lineOf = (position: number) => source.getLineAndCharacterOfPosition(position).line + 1;
  const visit = (node: ts.Node) => {
    // A test's describe/it callbacks are suites, not functions: only the file limit applies to them.
    const body = ts.isFunctionLike(node) ? (node as ts.FunctionLikeDeclaration).body : undefined;
    if (body) {
      const span = lineOf(body.getEnd()) - lineOf(body.getStart(source)) + 1;
      const name = (node as ts.FunctionLikeDeclaration).name?.getText(source) ?? "(anonymous)";
      if (span > FUNCTION_LIMIT && !(isTest(file) && isSuiteCallback(node))) {
        breaches.push({
          file,
          line: lineOf(node.getStart(source)),
          what: `function ${name}: ${span} lines (limit ${FUNCTION_LIMIT})`,
        });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return breaches;
}

/** `describe("…", function () { … })` or `it(…, async () => { … })`: mocha's callbacks. */
function isSuiteCallback(node: ts.Node): boolean {
  const call = node.parent;
  if (!call || !ts.isCallExpression(call)) return false;
  const callee = call.expression.getText();
  return /^(describe|it|context|before|after|beforeEach|afterEach)(\.(only|skip))?$/.test(callee);
}

function main(): number {
  const breaches: Breach[] = [];
  for (const root of ROOTS) {
    for (const path of sourceFiles(join(ROOT, root))) {
      const file = relative(ROOT, path);
      if (SKIP.some((pattern) => pattern.test(file))) continue;
      breaches.push(...checkSource(file, readFileSync(path, "utf8")));
    }
  }
  for (const b of breaches) process.stderr.write(`${b.file}:${b.line}: ${b.what}\n`);
  if (breaches.length > 0) process.stderr.write(`checkSizes: ${breaches.length} breach(es) of the size limits\n`);
  return breaches.length > 0 ? 1 : 0;
}

if (require.main === module) process.exitCode = main();
