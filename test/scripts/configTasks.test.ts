import { expect } from "chai";
import { execFile } from "node:child_process";
import { type IncomingMessage, type Server, createServer } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre, { ethers } from "hardhat";

import { deployProtocol } from "../../scripts/deploy/deployProtocol";
import { canonicalBytes, documentHash, emptyConfig } from "../../offchain/common/protocol/netConfig";
import type { ConfigRegistry } from "../../typechain";

const ROOT = join(__dirname, "..", "..");

/** Runs a task in-process and returns what it printed. */
async function runTask(name: string, args: Record<string, unknown>): Promise<string> {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...parts: unknown[]) => lines.push(parts.map(String).join(" "));
  try {
    await hre.run(name, args);
  } finally {
    console.log = original;
  }
  return lines.join("\n");
}

async function expectTaskFails(name: string, args: Record<string, unknown>, message: string | RegExp) {
  let error: Error | undefined;
  await runTask(name, args).catch((e: Error) => (error = e));
  expect(error, `${name} should fail`).to.not.equal(undefined);
  if (typeof message === "string") expect(error!.message).to.include(message);
  else expect(error!.message).to.match(message);
}

interface Upload {
  url: string | undefined;
  contentType: string | undefined;
  body: Buffer;
}

/** A stargate's two configuration routes as the tasks see them over HTTP: it records uploads and serves a view. */
async function startStargate(view: object, answer: { status: number; body: object } = { status: 200, body: {} }) {
  const uploads: Upload[] = [];
  const read = (request: IncomingMessage) =>
    new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      request.on("data", (c: Buffer) => chunks.push(c));
      request.on("end", () => resolve(Buffer.concat(chunks)));
    });
  const server: Server = createServer(async (request, response) => {
    const body = await read(request);
    response.setHeader("content-type", "application/json");
    if (request.method === "POST" && request.url?.split("?")[0] === "/config/versions") {
      uploads.push({ url: request.url, contentType: request.headers["content-type"], body });
      const version = (JSON.parse(body.toString()) as { version: number }).version;
      response.statusCode = answer.status;
      response.end(JSON.stringify(answer.status === 200 ? { version, hash: documentHash(body) } : answer.body));
    } else if (request.method === "GET" && request.url === "/config/view") {
      response.end(JSON.stringify(view));
    } else {
      response.statusCode = 404;
      response.end("{}");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { url, uploads, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** A URL nothing listens on. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe("ConfigRegistry deployment and the config:* tasks", function () {
  this.timeout(120_000);
  let dir: string;
  let addresses: string;
  let registry: ConfigRegistry;

  /** Writes a document of `version` as a person would (indented, keys in any order) and returns its path. */
  function documentFile(version: number, name = `v${version}.json`): { path: string; canonical: Buffer } {
    const doc = { ...emptyConfig(version), blocklist: { paths: [], ipRanges: ["203.0.113.0/24"] } };
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(doc, null, 2));
    return { path, canonical: canonicalBytes(doc) };
  }

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "edge-config-tasks-"));
    const [deployer, , , signer] = await ethers.getSigners();
    const { file, book } = await deployProtocol(hre, {
      parameters: {
        ignition: { ConfigRegistry: { publisher: deployer.address } },
        roles: { ConfigRegistry: { DELTA_SIGNER_ROLE: [signer.address] } },
      },
      addressesDir: dir,
    });
    addresses = file;
    registry = (await ethers.getContractAt(
      "ConfigRegistry",
      book.contracts.ConfigRegistry!.address,
    )) as unknown as ConfigRegistry;
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  describe("deployProtocol", function () {
    it("deploys ConfigRegistry into the address book with the publisher's and the listed roles", async function () {
      const [deployer, , , signer] = await ethers.getSigners();
      expect(await registry.defaultAdmin()).to.equal(deployer.address);
      expect(await registry.hasRole(await registry.PUBLISHER_ROLE(), deployer.address)).to.equal(true);
      expect(await registry.isDeltaSigner(deployer.address)).to.equal(true);
      expect(await registry.isDeltaSigner(signer.address)).to.equal(true);
      expect(await registry.latest()).to.deep.equal([0n, ethers.ZeroHash]);
    });

    it("makes the timelock its admin and grants the listed roles through it in a governed deployment", async function () {
      const [deployer, , , signer] = await ethers.getSigners();
      const otherDir = mkdtempSync(join(tmpdir(), "edge-config-timelock-"));
      try {
        const { book } = await deployProtocol(hre, {
          parameters: {
            ignition: {},
            roles: { ConfigRegistry: { PUBLISHER_ROLE: [signer.address] } },
            timelock: { minDelay: 60n, proposers: [deployer.address], executors: [deployer.address] },
          },
          addressesDir: otherDir,
          deploymentId: "config-timelock",
        });
        const governed = (await ethers.getContractAt(
          "ConfigRegistry",
          book.contracts.ConfigRegistry!.address,
        )) as unknown as ConfigRegistry;
        expect(await governed.defaultAdmin()).to.equal(book.contracts.TimelockController!.address);
        expect(await governed.hasRole(await governed.PUBLISHER_ROLE(), signer.address)).to.equal(true);
        expect(await governed.hasRole(await governed.PUBLISHER_ROLE(), deployer.address)).to.equal(false);
      } finally {
        rmSync(otherDir, { recursive: true, force: true });
        rmSync(join(hre.config.paths.ignition, "deployments", "config-timelock"), { recursive: true, force: true });
      }
    });
  });

  describe("config:publish", function () {
    it("anchors the canonical document's hash and uploads the canonical bytes to every stargate", async function () {
      const a = await startStargate({});
      const b = await startStargate({});
      try {
        const { path, canonical } = documentFile(1);
        const output = await runTask("config:publish", { file: path, stargates: `${a.url},${b.url}/`, addresses });
        expect(await registry.latest()).to.deep.equal([1n, documentHash(canonical)]);
        expect(output).to.include(`anchored version 1 (${documentHash(canonical)})`);
        for (const stargate of [a, b]) {
          expect(stargate.uploads).to.have.length(1);
          expect(stargate.uploads[0].contentType).to.equal("application/json");
          expect(stargate.uploads[0].url).to.equal("/config/versions?version=1"); // R17-3: checked before the body
          expect(stargate.uploads[0].body.equals(canonical)).to.equal(true);
          expect(output).to.match(new RegExp(`${stargate.url}\\s+accepted\\s+accepted version 1`));
        }
      } finally {
        await a.close();
        await b.close();
      }
    });

    it("refuses a version that is not the chain's latest + 1, and another document for the latest", async function () {
      const latest = await registry.latest();
      const next = Number(latest[0]) + 1;
      await expectTaskFails(
        "config:publish",
        { file: documentFile(next + 1).path, addresses },
        `the document's version is ${next + 1}, but the chain's latest is ${next - 1}: the next version must be ${next}`,
      );
      const other = join(dir, "other.json");
      writeFileSync(other, JSON.stringify({ ...emptyConfig(next - 1), revoked: [], prices: { egressBytes: "1" } }));
      await expectTaskFails("config:publish", { file: other, addresses }, /already anchored with another document/);
      expect(await registry.latest()).to.deep.equal(latest);
    });

    it("refuses a file that is missing, not JSON or not a document, before touching the chain", async function () {
      const notJson = join(dir, "not.json");
      writeFileSync(notJson, "{ version: 2");
      const notDoc = join(dir, "notdoc.json");
      writeFileSync(notDoc, JSON.stringify({ version: 2, sites: "none" }));
      await expectTaskFails("config:publish", { file: join(dir, "missing.json"), addresses }, "cannot read");
      await expectTaskFails("config:publish", { file: notJson, addresses }, `${notJson} is not JSON`);
      await expectTaskFails(
        "config:publish",
        { file: notDoc, addresses },
        `${notDoc} is not a NetworkConfig document: the document does not match its schema`,
      );
      await expectTaskFails(
        "config:publish",
        { file: documentFile(2).path, stargates: "ftp://x", addresses },
        `--stargates: "ftp://x" is not an http(s) URL`,
      );
    });

    it("refuses a sender without PUBLISHER_ROLE with its address", async function () {
      const [deployer] = await ethers.getSigners();
      const role = await registry.PUBLISHER_ROLE();
      await registry.revokeRole(role, deployer.address);
      try {
        const next = Number((await registry.latest())[0]) + 1;
        await expectTaskFails(
          "config:publish",
          { file: documentFile(next).path, addresses },
          `${deployer.address} does not hold PUBLISHER_ROLE`,
        );
      } finally {
        await registry.grantRole(role, deployer.address);
      }
    });

    it("reports an unreachable or refusing stargate, keeps the anchoring, and retries only the uploads", async function () {
      const up = await startStargate({});
      const refusing = await startStargate({}, { status: 400, body: { code: "EDGE_NODE_CONFIG_INVALID", message: "no" } }); // prettier-ignore
      const dead = await deadUrl();
      try {
        const next = Number((await registry.latest())[0]) + 1;
        const { path, canonical } = documentFile(next);
        await expectTaskFails(
          "config:publish",
          { file: path, stargates: [up.url, dead, refusing.url].join(","), addresses },
          `version ${next} is anchored, but 2 of 3 stargate(s) did not take it (${dead}, ${refusing.url})`,
        );
        expect(await registry.latest()).to.deep.equal([BigInt(next), documentHash(canonical)]);
        expect(up.uploads).to.have.length(1);
        // The same command again: nothing anchored twice, the uploads retried.
        const output = await runTask("config:publish", { file: path, stargates: up.url, addresses });
        expect(output).to.include(`version ${next} is already anchored with this document`);
        expect(up.uploads).to.have.length(2);
        expect(await registry.latest()).to.deep.equal([BigInt(next), documentHash(canonical)]);
      } finally {
        await up.close();
        await refusing.close();
      }
    });

    it("counts a stargate that already holds the version as done", async function () {
      const held = await startStargate({}, { status: 409, body: { code: "EDGE_NODE_CONFIG_STALE", message: "not newer" } }); // prettier-ignore
      try {
        const next = Number((await registry.latest())[0]) + 1;
        const output = await runTask("config:publish", { file: documentFile(next).path, stargates: held.url, addresses }); // prettier-ignore
        expect(output).to.match(/held\s+already held: not newer/);
      } finally {
        await held.close();
      }
    });
  });

  describe("gov:roles", function () {
    it("grants and revokes ConfigRegistry's roles and lists their holders", async function () {
      const [, , , , newcomer] = await ethers.getSigners();
      const role = await registry.DELTA_SIGNER_ROLE();
      const args = { contract: "ConfigRegistry", account: newcomer.address, addresses, json: false };
      await runTask("gov:roles", { ...args, grant: "DELTA_SIGNER_ROLE" });
      expect(await registry.hasRole(role, newcomer.address)).to.equal(true);
      const listed = await runTask("gov:roles", { contract: "ConfigRegistry", addresses, json: false });
      expect(listed).to.include("DELTA_SIGNER_ROLE");
      expect(listed).to.include(newcomer.address);
      await runTask("gov:roles", { ...args, revoke: "DELTA_SIGNER_ROLE" });
      expect(await registry.isDeltaSigner(newcomer.address)).to.equal(false);
    });
  });

  describe("config:status", function () {
    it("prints the chain's latest version and each stargate's view, and an unreachable one", async function () {
      const [version, hash] = await registry.latest();
      const v = Number(version);
      const device = "0x00000000000000000000000000000000000000a1";
      const view = {
        version: v,
        hash,
        seq: 3,
        subscribers: [
          { device, role: "gateway", url: "http://g", version: v, seq: 3, connected: true, lastAckAt: 1 },
          { device: "0x00000000000000000000000000000000000000b2", role: "host", url: "http://h", version: v - 1, seq: 0, connected: false, lastAckAt: null, lastNack: { version: v, seq: 0, reason: "bad sites", at: 2 } }, // prettier-ignore
        ],
      };
      const stargate = await startStargate(view);
      const dead = await deadUrl();
      try {
        const output = await runTask("config:status", { stargates: `${stargate.url},${dead}`, addresses });
        expect(output).to.include(`chain: version ${v} ${hash}`);
        expect(output).to.match(new RegExp(`${stargate.url}\\s+${v}\\s+3\\s+2\\s+1\\s+1\\s+1`));
        expect(output).to.match(new RegExp(`${dead}\\s+-.*unreachable: ECONNREFUSED`));
        expect(output).to.match(new RegExp(`${device}\\s+gateway\\s+${v}\\s+3\\s+yes`));
        expect(output).to.include(`v${v}: bad sites`);
        const json = JSON.parse(await runTask("config:status", { stargates: stargate.url, addresses, json: true }));
        expect(json.chain).to.deep.equal({ version: v, hash });
        expect(json.stargates[0].subscribers).to.have.length(2);
      } finally {
        await stargate.close();
      }
    });

    it("R17-10: strips control characters (terminal escapes) from the Nack reasons and fields it prints", async function () {
      const v = Number((await registry.latest())[0]);
      const reason = "bad\u001b]0;pwned\u0007 \u001b[2Jsites\r\nforged row\u009b31m";
      const view = {
        version: v,
        hash: null,
        seq: 0,
        subscribers: [
          { device: "0x00000000000000000000000000000000000000c3", role: "gate\u001b[1mway", url: "http://g", version: v, seq: 0, connected: true, lastAckAt: null, lastNack: { version: v, seq: 0, reason, at: 2 } }, // prettier-ignore
        ],
      };
      const stargate = await startStargate(view);
      try {
        const output = await runTask("config:status", { stargates: stargate.url, addresses });
        expect(output).to.not.match(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
        expect(output).to.include(`v${v}: bad]0;pwned [2Jsitesforged row31m`);
        expect(output).to.include("gate[1mway");
      } finally {
        await stargate.close();
      }
    });
  });

  it("exits non-zero with the message on the command line", async function () {
    const notJson = join(dir, "cli.json");
    writeFileSync(notJson, "nope");
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(
        join(ROOT, "node_modules", ".bin", "hardhat"),
        ["config:publish", "--file", notJson, "--addresses", addresses],
        { cwd: ROOT, env: { ...process.env, CI: "true" } },
        (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, output: `${stdout}${stderr}` }),
      );
    });
    expect(code, output).to.equal(1);
    expect(output).to.include(`${notJson} is not JSON`);
  });
});
