import { expect } from "chai";

import { FILE_LIMIT, FUNCTION_LIMIT, checkSource } from "../../scripts/ci/checkSizes";

const lines = (n: number, text: string) => Array.from({ length: n }, () => text).join("\n");

describe("lint: size limits (scripts/ci/checkSizes.ts)", function () {
  it("flags a source file over the limit and a function over the limit, naming them", function () {
    const longFile = lines(FILE_LIMIT + 1, "export const x = 1;");
    expect(checkSource("offchain/a.ts", longFile)).to.deep.equal([
      { file: "offchain/a.ts", line: 1, what: `${FILE_LIMIT + 1} lines (limit ${FILE_LIMIT})` },
    ]);
    const longFunction = `const a = 1;\nexport function work() {\n${lines(FUNCTION_LIMIT - 1, "  a;")}\n}\n`;
    const [breach] = checkSource("node/b.ts", longFunction);
    expect(breach).to.deep.equal({
      file: "node/b.ts",
      line: 2,
      what: `function work: ${FUNCTION_LIMIT + 1} lines (limit ${FUNCTION_LIMIT})`,
    });
    const arrow = `export const f = () => {\n${lines(FUNCTION_LIMIT, "  1;")}\n};\n`;
    expect(checkSource("node/c.ts", arrow)).to.have.length(1);
  });

  it("lets test files reach 600 lines and mocha's suite callbacks any length, but not other functions", function () {
    const suite = `describe("s", function () {\n${lines(FUNCTION_LIMIT + 50, "  it('x', () => 1);")}\n});\n`;
    expect(checkSource("test/a.test.ts", suite)).to.deep.equal([]);
    expect(checkSource("test/b.test.ts", lines(FILE_LIMIT + 100, "1;"))).to.deep.equal([]);
    const helper = `function helper() {\n${lines(FUNCTION_LIMIT, "  1;")}\n}\n`;
    expect(checkSource("test/c.test.ts", helper)).to.have.length(1);
    expect(checkSource("offchain/ok.ts", `export function small() {\n  return 1;\n}\n`)).to.deep.equal([]);
  });
});
