/** .github/workflows/ci.yml runs .ci/run on GitHub's amd64 and arm64 runners; .ci/run stays valid bash. */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseDocument } from "yaml";

const ROOT = join(__dirname, "..", "..");

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  "runs-on": string;
  "timeout-minutes": number;
  strategy: { matrix: { os: string[] } };
  steps: Step[];
}

describe("CI: .github/workflows/ci.yml and .ci/run", function () {
  const document = parseDocument(readFileSync(join(ROOT, ".github", "workflows", "ci.yml"), "utf8"), {
    uniqueKeys: true,
  });
  const workflow = document.toJS() as { on: Record<string, unknown>; jobs: Record<string, Job> };

  it("is well-formed YAML", function () {
    expect(document.errors.map(String)).to.deep.equal([]);
    expect(document.warnings.map(String)).to.deep.equal([]);
  });

  it("runs on every push and pull request", function () {
    expect(workflow.on).to.have.all.keys("push", "pull_request");
  });

  it("has one job: .ci/run with Node 20 on ubuntu-24.04 and ubuntu-24.04-arm, 90 minutes at most", function () {
    const jobs = Object.values(workflow.jobs);
    expect(jobs).to.have.length(1);
    const [job] = jobs;
    expect(job.strategy.matrix.os).to.deep.equal(["ubuntu-24.04", "ubuntu-24.04-arm"]);
    expect(job["runs-on"]).to.equal("${{ matrix.os }}");
    expect(job["timeout-minutes"]).to.equal(90);
    const uses = job.steps.map((step) => step.uses?.split("@")[0]);
    expect(uses).to.include.members(["actions/checkout", "actions/setup-node"]);
    const setupNode = job.steps.find((step) => step.uses?.startsWith("actions/setup-node@"));
    expect(String(setupNode?.with?.["node-version"])).to.equal("20");
    const runs = job.steps.filter((step) => step.run).map((step) => step.run!.trim());
    expect(runs).to.deep.equal(["bash .ci/run"]);
    // .ci/run comes after the checkout and Node's setup.
    expect(job.steps.at(-1)?.run?.trim()).to.equal("bash .ci/run");
  });

  it(".ci/run parses as bash", function () {
    const result = spawnSync("bash", ["-n", join(ROOT, ".ci", "run")], { encoding: "utf8" });
    expect(result.stderr).to.equal("");
    expect(result.status).to.equal(0);
  });
});
